# Scan jobs (PUBSUB_TOPIC, published by scan) and scan results (RESULTS_TOPIC) reach their function
# through push subscriptions rather than Eventarc triggers: only a subscription of our own can carry
# a dead-letter policy, so a message that keeps failing is parked instead of retried forever.

resource "google_pubsub_topic" "function" {
  for_each = module.functions.topics

  name                       = "${var.name_prefix}-${each.value}"
  kms_key_name               = var.kms_key_name
  message_retention_duration = "86400s"
}

resource "google_pubsub_topic" "dead_letter" {
  name                       = "${var.name_prefix}-dead-letter"
  kms_key_name               = var.kms_key_name
  message_retention_duration = "604800s"
}

# Where an operator reads what could not be processed (gcloud pubsub subscriptions pull).
resource "google_pubsub_subscription" "dead_letter" {
  name                       = "${var.name_prefix}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "push" {
  for_each = local.pushed

  name  = "${var.name_prefix}-${each.key}"
  topic = google_pubsub_topic.function[each.value.push_topic].id

  # The push waits for the function's answer; 600 s is the ceiling Pub/Sub allows.
  ack_deadline_seconds       = min(600, each.value.sizing.timeout_seconds)
  message_retention_duration = "86400s"

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  push_config {
    # A CloudEvent function gets the standard push envelope, posted under the topic's name: the
    # framework reads the topic from the path when it turns the envelope into a CloudEvent. An HTTP
    # function gets the bare message body (no_wrapper) at its one route, e.g. a CallbackRequest
    # at /callback.
    push_endpoint = (each.value.signature_type == "cloudevent"
      ? "${google_cloudfunctions2_function.function[each.key].service_config[0].uri}/${google_pubsub_topic.function[each.value.push_topic].id}"
    : "${google_cloudfunctions2_function.function[each.key].service_config[0].uri}${each.value.push_path}")

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloudfunctions2_function.function[each.key].service_config[0].uri
    }

    dynamic "no_wrapper" {
      for_each = each.value.signature_type == "cloudevent" ? [] : [true]
      content {
        write_metadata = false
      }
    }
  }

  depends_on = [google_cloud_run_service_iam_member.push]
}

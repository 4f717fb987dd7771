# Every grant to a function's identity is on one resource (a secret, a topic, a service), never on
# the project: a function can read its secret and publish to its topic, and nothing else.

resource "google_secret_manager_secret_iam_member" "registry" {
  for_each = { for name, f in local.functions : name => f if f.registry_secret }

  project   = var.project_id
  secret_id = data.google_secret_manager_secret.registry.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function[each.key].email}"
}

resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = local.publishers

  topic  = google_pubsub_topic.function[each.value.setting].id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.function[each.value.function].email}"
}

# The broker client cannot attach Google identity tokens, so the functions it calls through the
# internal load balancer admit unauthenticated requests; the network decides who gets there.
resource "google_cloud_run_service_iam_member" "broker" {
  #checkov:skip=CKV_GCP_102:Ingress is ALLOW_INTERNAL_ONLY: only the VPC's internal load balancer reaches these services, and the broker client sends no Google credentials (infra/terraform/README.md, "Access").
  for_each = local.exposed

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# Pub/Sub push identity: may invoke exactly the functions a subscription pushes to.
resource "google_service_account" "push" {
  account_id   = "${var.name_prefix}-pubsub-push"
  display_name = "registry-agent Pub/Sub push"
}

resource "google_cloud_run_service_iam_member" "push" {
  for_each = local.pushed

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push.email}"
}

# Pub/Sub's service agent signs the push identity's OIDC tokens...
resource "google_service_account_iam_member" "push_token" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

# ...and moves undeliverable messages: it publishes to the dead-letter topic and acknowledges on
# the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter" {
  for_each = local.pushed

  subscription = google_pubsub_subscription.push[each.key].id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# The build identity: write build logs and the built image, read the sources.
resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer"])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

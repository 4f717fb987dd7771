# The functions, their sources and their identities.

resource "google_storage_bucket" "sources" {
  #checkov:skip=CKV_GCP_62:Holds only build inputs written by Terraform; reads and writes are audited with Cloud Audit Logs, and a log bucket would need its own log bucket.
  name                        = "${var.project_id}-${var.name_prefix}-fn-sources"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  # Objects are content-addressed (name carries the zip's checksum): old ones only serve rollbacks.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_object" "source" {
  for_each = local.functions

  # The checksum in the name makes a changed zip a new object, which redeploys that function only.
  name   = "${each.key}-${filemd5(local.zips[each.key])}.zip"
  bucket = google_storage_bucket.sources.name
  source = local.zips[each.key]
}

# One runtime identity per function: never the default compute service account.
resource "google_service_account" "function" {
  for_each = local.functions

  account_id   = each.value.service_account_id
  display_name = "registry-agent ${each.key} (runtime)"
  description  = "Runtime identity of the ${each.key} function; its roles are in iam.tf."
}

# Builds run as their own identity instead of the project's default Cloud Build account.
resource "google_service_account" "build" {
  account_id   = "${var.name_prefix}-fn-build"
  display_name = "registry-agent function builds"
}

resource "google_cloudfunctions2_function" "function" {
  for_each = local.functions

  name        = each.value.deploy_name
  location    = var.region
  description = "registry-agent ${each.key}: entry point ${each.value.entry_point} (functions/functions.json)"

  build_config {
    runtime         = var.runtime
    entry_point     = each.value.entry_point
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    # Reachable only from the VPC, the internal load balancer and Pub/Sub of this project.
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    service_account_email          = google_service_account.function[each.key].email
    all_traffic_on_latest_revision = true

    # All egress - the registry, the broker client, Google APIs - leaves through the VPC.
    vpc_connector                 = google_vpc_access_connector.functions.id
    vpc_connector_egress_settings = "ALL_TRAFFIC"

    available_memory                 = each.value.sizing.memory
    available_cpu                    = each.value.sizing.cpu
    timeout_seconds                  = each.value.sizing.timeout_seconds
    max_instance_count               = each.value.sizing.max_instances
    max_instance_request_concurrency = each.value.sizing.concurrency

    environment_variables = local.function_environment[each.key]

    dynamic "secret_environment_variables" {
      for_each = each.value.registry_secret ? ["CR_CREDENTIALS"] : []
      content {
        key        = secret_environment_variables.value
        project_id = var.project_id
        secret     = data.google_secret_manager_secret.registry.secret_id
        version    = "latest"
      }
    }
  }

  # The runtime identity must be able to read its secret before the first instance starts.
  depends_on = [
    google_secret_manager_secret_iam_member.registry,
    google_project_iam_member.build,
    google_storage_bucket_iam_member.build,
  ]
}

# The secret is created and filled outside Terraform (README.md): only its name is known here.
data "google_secret_manager_secret" "registry" {
  secret_id = var.registry_secret_id
}

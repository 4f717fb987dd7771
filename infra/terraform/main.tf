# One Cloud Functions (2nd gen) deployment per function of functions/functions.json - the same
# manifest the emulator router serves from - inside a private network. README.md in this folder
# has the picture and the deploy sequence.

provider "google" {
  project        = var.project_id
  region         = var.region
  default_labels = var.labels
}

module "functions" {
  source        = "./modules/functions"
  manifest_path = "${path.module}/../../functions/functions.json"
  name_prefix   = var.name_prefix
  sizing        = var.function_sizing
}

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  functions = module.functions.functions
  exposed   = { for name, f in local.functions : name => f if f.exposed }
  pushed    = { for name, f in local.functions : name => f if f.push_topic != null }

  source_dir = coalesce(var.source_dir, "${path.module}/../../build/functions")
  zips       = { for name, f in local.functions : name => "${local.source_dir}/${name}.zip" }

  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # Settings every function gets. A function's only writable disk is in memory: the state lives in
  # /tmp and the layer cache is off (it would hold memory the scan needs).
  common_environment = {
    LOG_LEVEL                    = var.log_level
    STATE_DIR                    = "/tmp/registry-agent"
    LAYER_CACHE_MAX_BYTES        = "0"
    SNYK_MAX_IMAGE_SIZE_IN_BYTES = tostring(var.max_image_size_bytes)
  }

  # Plain settings only; the registry credentials come from Secret Manager (functions.tf).
  function_environment = {
    for name, f in local.functions : name => merge(
      var.environment,
      local.common_environment,
      f.broker_client ? { BROKER_CLIENT_URL = var.broker_client_url } : {},
      contains(f.publishes, "PUBSUB_TOPIC") ? { SCAN_DISPATCH = "pubsub" } : {},
      { for setting in f.publishes : setting => google_pubsub_topic.function[setting].id },
    )
  }

  # Every (function, topic setting) pair a function publishes with.
  publishers = merge([
    for name, f in local.functions : { for setting in f.publishes : "${name}/${setting}" => { function = name, setting = setting } }
  ]...)
}

terraform {
  # 1.5: output preconditions and check blocks as used here; 2.x may change either.
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    # 6.x: build_config.service_account on google_cloudfunctions2_function, default_labels.
    google = {
      source  = "hashicorp/google"
      version = "~> 6.14"
    }
  }
}

# Names and addresses only: no output carries a credential (the registry secret's value never
# enters Terraform at all).

output "agent_url" {
  description = "The agent's internal address: the broker client's CR_AGENT_URL."
  value       = "http://${google_compute_forwarding_rule.agent.ip_address}:${var.agent_port}"
}

output "broker_client_environment" {
  description = "The broker client's settings that point at this deployment."
  value = {
    CR_AGENT_URL                 = "http://${google_compute_forwarding_rule.agent.ip_address}:${var.agent_port}"
    BROKER_CLIENT_VALIDATION_URL = "http://${google_compute_forwarding_rule.agent.ip_address}:${var.agent_port}/systemcheck"
  }
}

output "function_uris" {
  description = "Each function's own (internal-only) URI, keyed by manifest name."
  value       = { for name, f in google_cloudfunctions2_function.function : name => f.service_config[0].uri }
}

output "service_accounts" {
  description = "Each function's runtime service account, keyed by manifest name."
  value       = { for name, sa in google_service_account.function : name => sa.email }
}

output "topics" {
  description = "Topic ids by setting (PUBSUB_TOPIC, RESULTS_TOPIC) and the dead-letter topic."
  value = merge(
    { for setting, topic in google_pubsub_topic.function : setting => topic.id },
    { DEAD_LETTER = google_pubsub_topic.dead_letter.id },
  )
}

output "dead_letter_subscription" {
  description = "Pull subscription holding messages that exhausted their deliveries."
  value       = google_pubsub_subscription.dead_letter.id
}

output "sources_bucket" {
  description = "Bucket the function zips are uploaded to."
  value       = google_storage_bucket.sources.name
}

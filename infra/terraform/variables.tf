variable "project_id" {
  description = "Google Cloud project that holds every resource."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project id (6-30 characters: lowercase letters, digits, hyphens)."
  }
}

variable "region" {
  description = "Region of the functions, the connector, the topics' consumers and the internal load balancer."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (functions, service accounts, topics). Short: service account ids are limited to 30 characters."
  type        = string
  default     = "ra"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,9}$", var.name_prefix))
    error_message = "name_prefix must be 1-10 characters: a lowercase letter, then lowercase letters, digits or hyphens."
  }
}

variable "network" {
  description = "VPC network (name or self link) that reaches the registry and the broker client; the functions' egress goes through it."
  type        = string

  validation {
    condition     = length(trimspace(var.network)) > 0
    error_message = "network must name the VPC network."
  }
}

variable "subnetwork" {
  description = "Subnetwork (name or self link) in which the internal load balancer gets its address: one the broker client can reach."
  type        = string

  validation {
    condition     = length(trimspace(var.subnetwork)) > 0
    error_message = "subnetwork must name a subnetwork of the network."
  }
}

variable "connector_cidr" {
  description = "Unused /28 range for the Serverless VPC Access connector's subnet, through which the functions send all their traffic."
  type        = string

  validation {
    condition     = can(cidrhost(var.connector_cidr, 0)) && endswith(var.connector_cidr, "/28")
    error_message = "connector_cidr must be an IPv4 /28 range, e.g. 10.8.0.0/28."
  }
}

variable "proxy_only_subnet_cidr" {
  description = "Range for the region's proxy-only subnet, which the internal Application Load Balancer needs. null when the network already has an active one in this region."
  type        = string
  default     = null

  validation {
    condition = var.proxy_only_subnet_cidr == null || (
      can(cidrhost(var.proxy_only_subnet_cidr, 0)) &&
      try(tonumber(split("/", var.proxy_only_subnet_cidr)[1]) >= 23 && tonumber(split("/", var.proxy_only_subnet_cidr)[1]) <= 26, false)
    )
    error_message = "proxy_only_subnet_cidr must be null or an IPv4 range from /23 (recommended) to /26."
  }
}

variable "agent_port" {
  description = "Port of the agent's internal address; CR_AGENT_URL carries it (the container listens on 8081 too)."
  type        = number
  default     = 8081

  validation {
    condition     = var.agent_port >= 1 && var.agent_port <= 65535 && floor(var.agent_port) == var.agent_port
    error_message = "agent_port must be a TCP port (1-65535)."
  }
}

variable "broker_client_url" {
  description = "The broker client's URL as the functions reach it (BROKER_CLIENT_URL): scheme, host and port, e.g. http://broker.internal:8000. Callbacks go only under it."
  type        = string

  validation {
    condition     = can(regex("^https?://[^/:@\\s]+:[0-9]{1,5}/?$", var.broker_client_url))
    error_message = "broker_client_url must be http(s)://host:port (the broker documents scheme and port as required), with no path or credentials."
  }
}

variable "registry_secret_id" {
  description = "Id (the name, not the value) of an existing Secret Manager secret holding CR_CREDENTIALS: base64 of the broker's credentials JSON. Create and fill it outside Terraform (infra/terraform/README.md) so the value never enters the state."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.registry_secret_id))
    error_message = "registry_secret_id must be a secret id (letters, digits, _ and -), not a secret value."
  }
}

variable "environment" {
  description = "Extra plain settings for every function (e.g. INSECURE_REGISTRIES, REQUESTS_CA_BUNDLE, SNYK_DISABLE_LIST_REPOS, LOG_LEVEL). Secrets are refused here: they belong in Secret Manager."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for key in keys(var.environment) : can(regex("^[A-Z][A-Z0-9_]*$", key))])
    error_message = "environment keys must be upper-case setting names (shared/settings.py)."
  }
  validation {
    condition     = alltrue([for key in keys(var.environment) : !can(regex("(PASSWORD|TOKEN|SECRET|CREDENTIALS|_KEY)$", key))])
    error_message = "environment must not carry credentials (names ending in PASSWORD, TOKEN, SECRET, CREDENTIALS or _KEY): use Secret Manager."
  }
  validation {
    condition = length(setintersection(keys(var.environment), [
      "STATE_DIR", "SCAN_DISPATCH", "PUBSUB_TOPIC", "RESULTS_TOPIC", "BROKER_CLIENT_URL", "AGENT_HOST", "SNYK_PORT", "PORT",
      "LAYER_CACHE_MAX_BYTES", "SNYK_MAX_IMAGE_SIZE_IN_BYTES",
    ])) == 0
    error_message = "environment must not set what this module derives (STATE_DIR, SCAN_DISPATCH, topics, BROKER_CLIENT_URL, ports, cache and image size limits): use the matching variables."
  }
}

variable "max_image_size_bytes" {
  description = "SNYK_MAX_IMAGE_SIZE_IN_BYTES for the functions. Lower than the container's 2 GiB default: a function's only disk is its memory."
  type        = number
  default     = 1073741824

  validation {
    condition     = var.max_image_size_bytes > 0 && var.max_image_size_bytes <= 8589934592
    error_message = "max_image_size_bytes must be between 1 byte and 8 GiB."
  }
}

variable "function_sizing" {
  description = "Per-function overrides (keyed by manifest name, e.g. \"scan-event\") of memory, cpu, timeout_seconds, max_instances and concurrency. Defaults: modules/functions/main.tf."
  type = map(object({
    memory          = optional(string)
    cpu             = optional(string)
    timeout_seconds = optional(number)
    max_instances   = optional(number)
    concurrency     = optional(number)
  }))
  default = {}

  validation {
    condition     = alltrue([for s in values(var.function_sizing) : s.timeout_seconds == null || try(s.timeout_seconds >= 1 && s.timeout_seconds <= 3600, false)])
    error_message = "timeout_seconds must be between 1 and 3600 (a function invoked by Pub/Sub push is cut at 600 by the ack deadline)."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries of a Pub/Sub message before it goes to the dead-letter topic."
  type        = number
  default     = 5

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100 (Pub/Sub's limits)."
  }
}

variable "runtime" {
  description = "Cloud Functions Python runtime; python311 is the interpreter the tests run on."
  type        = string
  default     = "python311"

  validation {
    condition     = contains(["python311", "python312", "python313"], var.runtime)
    error_message = "runtime must be python311, python312 or python313."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of every function."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warning", "error"], var.log_level)
    error_message = "log_level must be debug, info, warning or error."
  }
}

variable "kms_key_name" {
  description = "Cloud KMS key for the Pub/Sub topics (scan requests can carry registry credentials). null: Google-managed keys."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be null or projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}

variable "source_dir" {
  description = "Directory with the per-function zips (scripts/package_functions.py). null: build/functions at the repository root."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels on every resource that takes them."
  type        = map(string)
  default     = { app = "registry-agent" }

  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "labels must use lowercase letters, digits, _ and - (Google Cloud label rules)."
  }
}

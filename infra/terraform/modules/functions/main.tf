# Reads functions/functions.json - the manifest the emulator router serves from - and returns, for
# each function, everything the deployment needs. No providers and no resources, so it can be
# evaluated offline (`terraform apply` on a throw-away state, see tests/deploy/test_terraform.py).
#
# Every decision the manifest does not carry (roles, exposure, topics, sizing) is made in the
# `access`, `topics` and `sizing` tables below. A function added to the manifest without an entry
# here fails the plan, with a message naming it: its roles have to be decided, never defaulted.

variable "manifest_path" {
  description = "Path of functions/functions.json."
  type        = string

  validation {
    condition     = can(jsondecode(file(var.manifest_path)).functions)
    error_message = "manifest_path must name a JSON file with a \"functions\" list (functions/functions.json)."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name; see the root module's variable of the same name."
  type        = string
}

variable "sizing" {
  description = "Per-function overrides of the trigger's default sizing, keyed by function name."
  type = map(object({
    memory          = optional(string)
    cpu             = optional(string)
    timeout_seconds = optional(number)
    max_instances   = optional(number)
    concurrency     = optional(number)
  }))
  default = {}
}

locals {
  manifest = jsondecode(file(var.manifest_path))
  listed   = { for f in local.manifest.functions : f.name => f }

  # What each function may reach. Keys are manifest names.
  #   registry_secret  reads CR_CREDENTIALS (the fallback registry credentials) from Secret Manager
  #   publishes        settings naming the topics it publishes to (each setting gets the topic id)
  #   exposed          reachable by the broker client through the internal load balancer
  #   pushed_from      setting naming the topic whose push subscription invokes it; a "pubsub"
  #                    trigger takes it from the manifest's topicSetting instead
  #   broker_client    knows BROKER_CLIENT_URL: posts callbacks, or checks a scan's callback target
  access = {
    "list-images" = { registry_secret = true, publishes = [], exposed = true, pushed_from = null, broker_client = false }
    "describe"    = { registry_secret = true, publishes = [], exposed = true, pushed_from = null, broker_client = false }
    "scan"        = { registry_secret = true, publishes = ["PUBSUB_TOPIC"], exposed = true, pushed_from = null, broker_client = true }
    "callback"    = { registry_secret = false, publishes = [], exposed = false, pushed_from = "RESULTS_TOPIC", broker_client = true }
    "scan-event"  = { registry_secret = true, publishes = [], exposed = false, pushed_from = null, broker_client = true }
  }

  # Topic settings this deployment creates a topic for: setting -> topic short name.
  # PUBSUB_TOPIC carries accepted scans (shared/settings.py); RESULTS_TOPIC carries finished scans
  # (a CallbackRequest each) to the callback function, which delivers them to the broker client.
  topics = {
    PUBSUB_TOPIC  = "scan-jobs"
    RESULTS_TOPIC = "scan-results"
  }

  # A Pub/Sub push waits at most 600 s for the answer (the ack deadline's ceiling), so a function
  # invoked by push gets that timeout; HTTP functions get 300 s, within the broker client's 600 s.
  default_sizing = {
    http   = { memory = "512Mi", cpu = "1", timeout_seconds = 300, max_instances = 10, concurrency = 8 }
    pubsub = { memory = "4Gi", cpu = "2", timeout_seconds = 600, max_instances = 5, concurrency = 1 }
  }

  # "GET /list/*" -> "/list/*": the load balancer's URL map routes by path only. A route that is
  # not "METHOD /path" is kept whole, so the path check below rejects it.
  paths = {
    for name, f in local.listed : name => [
      for route in try(f.routes, []) : try(regex("^[A-Za-z]+\\s+(\\S+)$", trimspace(route))[0], route)
    ]
  }

  functions = {
    for name, f in local.listed : name => {
      name               = name
      deploy_name        = "${var.name_prefix}-${name}"
      service_account_id = "${var.name_prefix}-${name}"
      entry_point        = f.entryPoint
      trigger            = f.trigger
      signature_type     = f.trigger == "pubsub" ? "cloudevent" : "http"
      registry_secret    = try(local.access[name].registry_secret, false)
      broker_client      = try(local.access[name].broker_client, false)
      publishes          = try(local.access[name].publishes, [])
      exposed            = try(local.access[name].exposed, false)
      push_topic         = f.trigger == "pubsub" ? try(f.topicSetting, null) : try(local.access[name].pushed_from, null)
      paths              = local.paths[name]
      # Where a push subscription posts for an HTTP function: its one route (the function routes
      # on the full path). A CloudEvent function takes the push under the topic's name instead.
      push_path = f.trigger == "http" && try(local.access[name].pushed_from, null) != null ? try(local.paths[name][0], null) : null
      sizing = merge(
        try(local.default_sizing[f.trigger], local.default_sizing.http),
        { for key, value in try(var.sizing[name], {}) : key => value if value != null },
      )
    }
  }

  missing_access = sort(tolist(setsubtract(keys(local.listed), keys(local.access))))
  stale_access   = sort(tolist(setsubtract(keys(local.access), keys(local.listed))))
  bad_triggers   = sort([for name, f in local.listed : name if !contains(keys(local.default_sizing), f.trigger)])
  # A pubsub trigger needs a topicSetting, and every setting named must have a topic below.
  # coalesce(): contains() refuses null, and both sides of "||" are always evaluated.
  topic_problems = {
    for name, f in local.functions : name => [
      f.trigger == "pubsub" && f.push_topic == null,
      !contains(concat(keys(local.topics), ["(none)"]), coalesce(f.push_topic, "(none)")),
      length(setsubtract(f.publishes, keys(local.topics))) > 0,
    ]
  }
  unmapped_topics = sort([for name, problems in local.topic_problems : name if anytrue(problems)])
  # A path the URL map can hold: literal segments, optionally ending in "/*".
  bad_paths = sort(flatten([
    for name, f in local.functions : [
      for path in f.paths : "${name}: ${path}" if !can(regex("^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*(/\\*)?$", path))
    ] if f.exposed
  ]))
  # An HTTP function invoked by push has exactly one literal route, the push endpoint's path.
  bad_push_paths = sort([
    for name, f in local.functions : name
    if f.trigger == "http" && f.push_topic != null && (length(f.paths) != 1 || strcontains(join("", f.paths), "*"))
  ])
  unroutable = sort([for name, f in local.functions : name if f.exposed && length(f.paths) == 0])
  # One door per function: the broker client (through the load balancer) or a push subscription.
  exposed_and_pushed = sort([for name, f in local.functions : name if f.exposed && f.push_topic != null])
  exposed_paths      = flatten([for name, f in local.functions : f.paths if f.exposed])
  duplicate_paths    = sort(distinct([for path in local.exposed_paths : path if length([for p in local.exposed_paths : p if p == path]) > 1]))
  healthcheck_owners = sort([for name, f in local.functions : name if f.exposed && contains(f.paths, "/healthcheck")])
  long_ids           = sort([for name, f in local.functions : f.service_account_id if length(f.service_account_id) > 30])
  unknown_sizing     = sort(tolist(setsubtract(keys(var.sizing), keys(local.listed))))
}

output "functions" {
  description = "Per function (keyed by manifest name): names, entry point, roles, topics, paths and sizing."
  value       = local.functions

  precondition {
    condition     = length(local.missing_access) == 0
    error_message = "Functions in the manifest with no entry in the access table of infra/terraform/modules/functions/main.tf: ${join(", ", local.missing_access)}. Decide their roles there."
  }
  precondition {
    condition     = length(local.stale_access) == 0
    error_message = "Access entries for functions the manifest no longer lists: ${join(", ", local.stale_access)}."
  }
  precondition {
    condition     = length(local.bad_triggers) == 0
    error_message = "Functions with a trigger this deployment cannot create (http, pubsub): ${join(", ", local.bad_triggers)}."
  }
  precondition {
    condition     = length(local.unmapped_topics) == 0
    error_message = "Functions naming a topic setting with no topic in the topics table (a pubsub trigger needs topicSetting): ${join(", ", local.unmapped_topics)}."
  }
  precondition {
    condition     = length(local.bad_paths) == 0
    error_message = "Routes the load balancer's URL map cannot express (\"*\" only as a final \"/*\"): ${join(", ", local.bad_paths)}."
  }
  precondition {
    condition     = length(local.unroutable) == 0
    error_message = "Exposed functions without routes: ${join(", ", local.unroutable)}."
  }
  precondition {
    condition     = length(local.bad_push_paths) == 0
    error_message = "HTTP functions invoked by Pub/Sub push need exactly one route without \"*\" (the push endpoint): ${join(", ", local.bad_push_paths)}."
  }
  precondition {
    condition     = length(local.exposed_and_pushed) == 0
    error_message = "Functions both exposed to the broker and invoked by Pub/Sub push: ${join(", ", local.exposed_and_pushed)}."
  }
  precondition {
    condition     = length(local.duplicate_paths) == 0
    error_message = "Paths served by more than one exposed function: ${join(", ", local.duplicate_paths)}."
  }
  precondition {
    condition     = length(local.healthcheck_owners) == 1
    error_message = "Exactly one exposed function must serve /healthcheck (the load balancer's default backend); found: [${join(", ", local.healthcheck_owners)}]."
  }
  precondition {
    condition     = length(local.long_ids) == 0
    error_message = "Service account ids longer than 30 characters (shorten name_prefix): ${join(", ", local.long_ids)}."
  }
  precondition {
    condition     = length(local.unknown_sizing) == 0
    error_message = "function_sizing names functions the manifest does not list: ${join(", ", local.unknown_sizing)}."
  }
}

output "topics" {
  description = "Topic setting -> topic short name, for every topic some function publishes to or is pushed from."
  value = {
    for setting, topic in local.topics : setting => topic
    if anytrue([for f in local.functions : f.push_topic == setting || contains(f.publishes, setting)])
  }
}

output "default_function" {
  description = "The exposed function serving /healthcheck: the load balancer's default backend."
  value       = try(local.healthcheck_owners[0], null)
}

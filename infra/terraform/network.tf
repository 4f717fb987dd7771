# Egress: a Serverless VPC Access connector carries all of the functions' traffic into the VPC,
# where the registry and the broker client are. Ingress: an internal Application Load Balancer
# gives the broker client one address (CR_AGENT_URL) and routes each path to its function, as the
# emulator's router does in the container.

resource "google_compute_subnetwork" "connector" {
  name          = "${var.name_prefix}-connector"
  region        = var.region
  network       = var.network
  ip_cidr_range = var.connector_cidr

  # Google APIs (Pub/Sub, Secret Manager) stay reachable with every packet routed through the VPC.
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_SEC"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_vpc_access_connector" "functions" {
  name          = "${var.name_prefix}-connector"
  region        = var.region
  machine_type  = "e2-micro"
  min_instances = 2
  max_instances = 3

  subnet {
    name = google_compute_subnetwork.connector.name
  }
}

resource "google_compute_subnetwork" "proxy_only" {
  #checkov:skip=CKV_GCP_26:A proxy-only subnet holds the load balancer's Envoy proxies and cannot have flow logs.
  #checkov:skip=CKV_GCP_74:Private Google Access does not apply to a proxy-only subnet.
  #checkov:skip=CKV_GCP_76:Private Google Access does not apply to a proxy-only subnet.
  count = var.proxy_only_subnet_cidr == null ? 0 : 1

  name          = "${var.name_prefix}-proxy-only"
  region        = var.region
  network       = var.network
  ip_cidr_range = var.proxy_only_subnet_cidr
  purpose       = "REGIONAL_MANAGED_PROXY"
  role          = "ACTIVE"
}

resource "google_compute_region_network_endpoint_group" "function" {
  for_each = local.exposed

  name                  = each.value.deploy_name
  region                = var.region
  network_endpoint_type = "SERVERLESS"

  # A 2nd gen function is a Cloud Run service of the same name.
  cloud_run {
    service = google_cloudfunctions2_function.function[each.key].service_config[0].service
  }
}

resource "google_compute_region_backend_service" "function" {
  for_each = local.exposed

  name                  = each.value.deploy_name
  region                = var.region
  protocol              = "HTTPS"
  load_balancing_scheme = "INTERNAL_MANAGED"

  backend {
    group           = google_compute_region_network_endpoint_group.function[each.key].id
    balancing_mode  = "UTILIZATION"
    capacity_scaler = 1.0
  }

  log_config {
    enable      = true
    sample_rate = 1.0
  }
}

# The manifest's routes, as path rules: the same table the emulator router serves.
resource "google_compute_region_url_map" "agent" {
  name            = "${var.name_prefix}-agent"
  region          = var.region
  default_service = google_compute_region_backend_service.function[module.functions.default_function].id

  host_rule {
    hosts        = ["*"]
    path_matcher = "functions"
  }

  path_matcher {
    name            = "functions"
    default_service = google_compute_region_backend_service.function[module.functions.default_function].id

    dynamic "path_rule" {
      for_each = local.exposed
      content {
        paths   = path_rule.value.paths
        service = google_compute_region_backend_service.function[path_rule.key].id
      }
    }
  }
}

# Plain HTTP like the container (the broker's CR_AGENT_URL is http://agent:8081 there): the
# address is private to the VPC.
resource "google_compute_region_target_http_proxy" "agent" {
  name    = "${var.name_prefix}-agent"
  region  = var.region
  url_map = google_compute_region_url_map.agent.id
}

resource "google_compute_forwarding_rule" "agent" {
  name                  = "${var.name_prefix}-agent"
  region                = var.region
  load_balancing_scheme = "INTERNAL_MANAGED"
  ip_protocol           = "TCP"
  port_range            = tostring(var.agent_port)
  target                = google_compute_region_target_http_proxy.agent.id
  network               = var.network
  subnetwork            = var.subnetwork
  network_tier          = "PREMIUM"

  depends_on = [google_compute_subnetwork.proxy_only]
}

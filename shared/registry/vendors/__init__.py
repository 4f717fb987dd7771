"""Registry types, one module per vendor, each a ``Vendor`` registered under its broker type name.

Importing this package imports every vendor module listed here, which fills the type table that
``vendor_class`` reads.
"""

from __future__ import annotations

import importlib

from shared.registry.vendors.base import OciVendor, Vendor, register, registered_types, vendor_class

VENDOR_MODULES = (
    "acr",
    "artifactory",
    "digitalocean",
    "docker_hub",
    "ecr",
    "gcr",
    "generic",
    "github",
    "gitlab",
    "google_artifact",
    "harbor",
    "nexus",
    "quay",
)
for _module in VENDOR_MODULES:
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["VENDOR_MODULES", "OciVendor", "Vendor", "register", "registered_types", "vendor_class"]

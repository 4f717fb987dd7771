"""The type table: every broker type name (broker-protocol.md §4.2, registries.md §0) has exactly one
vendor class, ``client_for`` dispatches through it, and an unknown type is a 400 naming the known
ones."""

from __future__ import annotations

import pytest

from shared import errors
from shared.credentials import LEGACY_TYPES, SUPPORTED_TYPES, encode_credentials, parse_credentials
from shared.registry import RegistryClient, client_for
from shared.registry.vendors import OciVendor, Vendor, registered_types, vendor_class
from tests.registry_vendors.support import SETTINGS

BROKER_TYPES = {
    "docker-hub",
    "ecr",
    "acr",
    "gcr",
    "artifactory-cr",
    "harbor-cr",
    "quay-cr",
    "github-cr",
    "nexus-cr",
    "digitalocean-cr",
    "gitlab-cr",
    "google-artifact-cr",
}


def test_every_supported_type_has_one_vendor_and_no_more() -> None:
    assert set(registered_types()) == set(SUPPORTED_TYPES) == BROKER_TYPES | {"generic"}
    classes = {vendor_class(t) for t in registered_types()}
    assert len(classes) == len(registered_types())  # one module, one class per type
    assert all(issubclass(c, Vendor) and issubclass(c, RegistryClient) for c in classes)


@pytest.mark.parametrize("type_name", sorted(set(SUPPORTED_TYPES) - {"ecr"}))
def test_client_for_dispatches_on_the_type(type_name: str) -> None:
    base = "europe-docker.pkg.dev/p" if type_name == "google-artifact-cr" else "registry.example.com"
    password = "ya29.token" if type_name in ("gcr", "google-artifact-cr") else "pw"
    username = "oauth2accesstoken" if type_name in ("gcr", "google-artifact-cr") else "user"
    credentials = parse_credentials(
        encode_credentials(
            {"type": type_name, "username": username, "password": password, "registryBase": base}
        )
    )
    with client_for(credentials, SETTINGS) as client:
        assert type(client) is vendor_class(type_name)
        assert isinstance(client, OciVendor)


def test_ecr_dispatches_without_any_network_call() -> None:
    credentials = parse_credentials(
        encode_credentials(
            {"type": "ecr", "roleArn": "arn:aws:iam::123456789012:role/r", "extra": {"region": "us-east-2"}}
        )
    )
    with client_for(credentials, SETTINGS) as client:
        assert type(client).__name__ == "Ecr"
        assert client.transport.base_url == "https://123456789012.dkr.ecr.us-east-2.amazonaws.com"


@pytest.mark.parametrize(("legacy", "current"), sorted(LEGACY_TYPES.items()))
def test_legacy_names_reach_the_same_vendor(legacy: str, current: str) -> None:
    assert current in registered_types()


def test_unknown_type_is_a_400_naming_the_supported_types() -> None:
    with pytest.raises(errors.CredentialsError) as caught:
        parse_credentials(
            encode_credentials({"type": "mystery-cr", "username": "u", "password": "p", "registryBase": "h"})
        )
    assert caught.value.status == 400
    assert all(t in caught.value.message for t in BROKER_TYPES)
    with pytest.raises(errors.CredentialsError, match="harbor-cr"):
        vendor_class("mystery-cr")

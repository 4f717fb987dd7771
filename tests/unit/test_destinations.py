"""Hosts a registry may not send the agent to (shared/registry/destinations.py), and the three places a
registry can name one: a token realm, a redirect (blobs on S3/CDNs) and a vendor API's next-page URL.

The redirect and next-link cases use ``responses``: the point is that the agent never connects to a
metadata address, and no real server may be put there.
"""

from __future__ import annotations

import hashlib

import pytest
import responses

from shared import errors
from shared.registry import RegistryClient, Transport
from shared.registry.destinations import forbidden_reason
from shared.registry.retry import RetryPolicy
from shared.registry.vendors.api import RestApi, link_next

REG = "https://registry.test"


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",
        "169.254.170.2",  # ECS task credentials
        "fd00:ec2::254",
        "[fd00:ec2::254]",
        "fe80::1",
        "::ffff:169.254.169.254",
        "metadata.google.internal",
        "METADATA.GOOGLE.INTERNAL.",
        "metadata",
        "2852039166",  # 169.254.169.254 as one decimal number
        "0xa9fea9fe",
        "0251.0376.0251.0376",
        "169.254.43518",
        "100.100.100.200",
    ],
)
def test_metadata_hosts_are_forbidden_in_every_spelling(host: str) -> None:
    assert forbidden_reason(host)


@pytest.mark.parametrize(
    "host",
    [
        "registry.test",
        "127.0.0.1",
        "10.0.0.5",
        "s3.amazonaws.com",
        "2001:db8::1",
        "metadata.example.com",
        "1.2.3",
    ],
)
def test_ordinary_hosts_are_allowed(host: str) -> None:
    assert forbidden_reason(host) is None


def _client() -> RegistryClient:
    return RegistryClient(Transport(REG, retry=RetryPolicy(max_retries=0), sleep=lambda _: None))


@responses.activate
@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/role",
        "http://[fd00:ec2::254]/latest/api/token",
        "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token",
        "http://2852039166/latest/meta-data/",
    ],
)
def test_a_blob_redirect_to_a_metadata_service_is_refused(location: str) -> None:
    blob = b"layer"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    responses.get(f"{REG}/v2/app/blobs/{digest}", status=307, headers={"Location": location})
    with pytest.raises(errors.RefusedHost, match="forbidden host"):
        _client().read_blob("app", digest, 1024)
    assert [c.request.url for c in responses.calls] == [f"{REG}/v2/app/blobs/{digest}"]


@responses.activate
def test_a_blob_redirect_to_a_storage_host_is_followed_without_credentials() -> None:
    blob = b"layer"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    storage = "https://bucket.s3.amazonaws.com/blob?X-Amz-Signature=abc"
    responses.get(f"{REG}/v2/app/blobs/{digest}", status=307, headers={"Location": storage})
    responses.get(storage, body=blob)
    client = RegistryClient(
        Transport(REG, username="u", password="p-secret", retry=RetryPolicy(max_retries=0))
    )
    client.transport.auth.challenge = None
    assert client.read_blob("app", digest, 1024) == blob
    assert "Authorization" not in responses.calls[-1].request.headers


@responses.activate
def test_a_vendor_api_rooted_at_a_metadata_host_is_never_called() -> None:
    """A vendor API's URLs (first page and next pages) pass the same check: an API root taken from a
    registryBase that names a metadata address is refused before anything is sent."""
    base = "http://169.254.169.254"
    api = RestApi(Transport(base, retry=RetryPolicy(max_retries=0)), f"{base}/api", "X API")
    with pytest.raises(errors.RefusedHost):
        list(api.pages(f"{base}/api/things", what="things", next_url=link_next))
    assert len(responses.calls) == 0

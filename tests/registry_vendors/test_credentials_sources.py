"""Where minted credentials come from, tested without a registry: the agent's AWS identity
(AWS SDKs and Tools Reference Guide, container and IMDS providers), Google key repair
(broker-protocol.md §4.3), and minted-login renewal."""

from __future__ import annotations

import base64
import json
import time

import pytest
import responses

from shared import errors
from shared.aws.identity import AgentIdentity
from shared.registry.login import Minted, MintedLogin, RegistryCredential, jwt_expiry
from shared.registry.transport import Transport
from shared.registry.vendors._google import parse_service_account_key, repair_pem
from tests.registry_vendors.google_fakes import key_json


def identity(environ: dict[str, str]) -> AgentIdentity:
    return AgentIdentity(Transport("https://unused.example").send, environ=environ)


def test_environment_keys_come_first() -> None:
    found = identity(
        {
            "AWS_ACCESS_KEY_ID": "AKIA1",
            "AWS_SECRET_ACCESS_KEY": "s",
            "AWS_SESSION_TOKEN": "t",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/x",
        }
    ).credentials()
    assert (found.access_key_id, found.session_token) == ("AKIA1", "t")


@pytest.mark.parametrize(
    "url", ["http://metadata.attacker.example/creds", "file:///etc/passwd", "http://10.0.0.5/creds"]
)
def test_full_uri_must_be_https_or_a_container_address(url: str) -> None:
    with pytest.raises(errors.ConfigurationError):
        identity({"AWS_CONTAINER_CREDENTIALS_FULL_URI": url}).credentials()


@responses.activate
def test_full_uri_on_loopback_with_a_token() -> None:
    responses.get(
        "http://127.0.0.1:9911/creds",
        match=[responses.matchers.header_matcher({"Authorization": "Bearer abc"})],
        json={
            "AccessKeyId": "ASIA9",
            "SecretAccessKey": "s",
            "Token": "t",
            "Expiration": "2099-01-01T00:00:00Z",
        },
    )
    found = identity(
        {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9911/creds",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer abc",
        }
    ).credentials()
    assert found.access_key_id == "ASIA9" and found.expiration is not None


def test_imds_can_be_switched_off() -> None:
    with pytest.raises(errors.Unauthorized, match="no AWS identity"):
        identity({"AWS_EC2_METADATA_DISABLED": "true"}).credentials()


def test_pem_repair_rebuilds_collapsed_and_escaped_keys() -> None:
    pem = key_json()["private_key"]
    assert repair_pem(pem) == pem
    assert repair_pem(" ".join(pem.split())) == pem
    assert repair_pem(pem.replace("\n", "\\n")) == pem
    assert repair_pem(pem.replace("\n", "\r\n")) == pem


def test_service_account_key_checks() -> None:
    good = key_json()
    assert parse_service_account_key(json.dumps(good))["client_email"] == good["client_email"]
    hostile = dict(good, token_uri="http://169.254.169.254/computeMetadata/v1/")
    with pytest.raises(errors.CredentialsError, match="token_uri"):
        parse_service_account_key(json.dumps(hostile))
    with pytest.raises(errors.CredentialsError) as caught:
        parse_service_account_key("not json " + good["private_key"])
    assert good["private_key"][40:80] not in str(caught.value)


def test_minted_login_renews_ahead_of_expiry_and_after_refusal() -> None:
    now = [1000.0]
    minted: list[int] = []

    def mint() -> Minted:
        minted.append(1)
        return Minted(RegistryCredential("u", f"p{len(minted)}"), expires_at=now[0] + 3600)

    login = MintedLogin(mint, clock=lambda: now[0])
    assert login.current().password == "p1"
    now[0] += 3600 - 301
    assert login.current().password == "p1"
    now[0] += 2  # inside the five-minute margin
    assert login.current().password == "p2"
    assert login.renew() and login.current().password == "p3"
    assert login.secrets == ("p1", "p2", "p3")


def test_short_lifetimes_are_renewed_half_way() -> None:
    now = [0.0]
    count = [0]

    def mint() -> Minted:
        count[0] += 1
        return Minted(RegistryCredential(bearer=f"t{count[0]}"), lifetime=60)

    login = MintedLogin(mint, clock=lambda: now[0])
    login.current()
    now[0] = 29
    login.current()
    assert count[0] == 1
    now[0] = 31
    login.current()
    assert count[0] == 2


def test_jwt_expiry_reads_exp_without_verifying() -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": 1900000000}).encode()).decode().rstrip("=")
    assert jwt_expiry(f"e30.{payload}.sig") == 1900000000
    assert jwt_expiry("opaque-token") is None
    assert jwt_expiry("a.!!!.c") is None
    boolean = base64.urlsafe_b64encode(json.dumps({"exp": True}).encode()).decode()
    assert jwt_expiry(f"e30.{boolean}.s") is None
    assert time.time() < 1900000000


def test_registry_credential_repr_shows_no_secret() -> None:
    credential = RegistryCredential("AWS", "pw-Unique", identity_token="rt-Unique", bearer="bt-Unique")
    assert "Unique" not in repr(credential) and "Unique" not in repr(Minted(credential, 1.0))

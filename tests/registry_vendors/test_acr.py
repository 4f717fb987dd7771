"""``acr`` against Azure Container Registry's documented API.

Shapes from ../shared/docs/registries.md §5 and the ACR data-plane spec (AZ:
``containerregistry.json`` 2021-07-01 + examples): ``GET /oauth2/token?service=&scope=`` with Basic
-> ``{"access_token"}``; ``POST /oauth2/exchange`` form ``grant_type=access_token, service, tenant,
access_token`` -> ``{"refresh_token"}``; ``POST /oauth2/token`` form ``grant_type=refresh_token,
service, scope, refresh_token`` -> ``{"access_token"}``; ``GET /acr/v1/_catalog?n=&last=`` ->
``{"repositories"}`` and ``GET /acr/v1/{name}/_tags?n=&last=`` -> ``{registry, imageName,
tags: [{name, digest, createdTime, lastUpdateTime, signed, changeableAttributes}]}``, both with
``Link``. Azure AD tokens come from the Microsoft identity platform as documented
(learn.microsoft.com: OAuth 2.0 client credentials flow ``POST /{tenant}/oauth2/v2.0/token`` after
OpenID discovery; managed identities ``GET http://169.254.169.254/metadata/identity/oauth2/token``
with ``Metadata: true``), exercised through azure-identity itself.
"""

from __future__ import annotations

import base64
import json
import re
import time

import pytest
import requests
import responses

from shared import errors
from tests.registry_vendors.support import (
    MockRegistry,
    Reply,
    connect,
    form,
    json_reply,
    link_pages,
    oci_error,
    query,
)

REG = "acmeprod.azurecr.io"
ADMIN = "acmeprod"
KEY = "ACR-Admin-Key-Unique/+0042=="
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "4a1c2b3d-0000-4000-8000-00000000c1e7"
CLIENT_SECRET = "AAD~Client~Secret~Unique~77"
NULL = "00000000-0000-0000-0000-000000000000"


def jwt(exp: float) -> str:
    def part(doc: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part({'exp': int(exp), 'grant_type': 'refresh_token'})}.c2ln"


class Acr(MockRegistry):
    """The registry with its token endpoints: Basic GET, refresh-token POST and the AAD exchange."""

    def __init__(self, rsps: responses.RequestsMock, aad_tokens: set[str] | None = None) -> None:
        super().__init__(
            rsps,
            REG,
            accepts=lambda u, p: (u, p) == (ADMIN, KEY),
            realm=f"https://{REG}/oauth2/token",
            service=REG,
            token_body=lambda n: {"access_token": f"acr-access-{n}"},
        )
        self.aad_tokens = aad_tokens or set()
        self.refresh_tokens: set[str] = set()
        self.exchanges: list[dict[str, list[str]]] = []
        rsps.add_callback(responses.POST, f"https://{REG}/oauth2/exchange", callback=self._exchange)
        rsps.add_callback(responses.POST, f"https://{REG}/oauth2/token", callback=self._refresh)

    def _exchange(self, request: requests.PreparedRequest) -> Reply:
        fields = form(request)
        self.exchanges.append(fields)
        if (
            fields.get("grant_type") != ["access_token"]
            or fields.get("access_token", [""])[0] not in self.aad_tokens
        ):
            return json_reply({"errors": [{"code": "UNAUTHORIZED", "message": "invalid AAD token"}]}, 401)
        token = jwt(time.time() + 3 * 3600) + f".{len(self.exchanges)}"
        self.refresh_tokens.add(token)
        return json_reply({"refresh_token": token})

    def _refresh(self, request: requests.PreparedRequest) -> Reply:
        fields = form(request)
        if (
            fields.get("grant_type") != ["refresh_token"]
            or fields.get("refresh_token", [""])[0] not in self.refresh_tokens
        ):
            return json_reply({"errors": [{"code": "UNAUTHORIZED", "message": "invalid refresh token"}]}, 401)
        assert fields["service"] == [REG]
        self.issued += 1
        token = f"acr-access-{self.issued}"
        self.valid.add(token)
        return json_reply({"access_token": token})


def tags_page(request: requests.PreparedRequest) -> Reply:
    names = [f"v{i}" for i in range(7)]
    last = query(request).get("last", [""])[0]
    start = names.index(last) + 1 if last else 0
    chunk = names[start : start + 3]
    headers = {}
    if start + 3 < len(names):
        headers["Link"] = f'</acr/v1/web/_tags?last={chunk[-1]}&n=3&orderby=>; rel="next"'
    tags = [
        {
            "name": n,
            "digest": f"sha256:{i:064x}",
            "createdTime": "2024-04-01T08:00:00.0000000Z",
            "lastUpdateTime": f"2024-05-0{i + 1}T08:00:00.1234567Z",
            "signed": False,
            "changeableAttributes": {
                "deleteEnabled": True,
                "writeEnabled": True,
                "readEnabled": True,
                "listEnabled": True,
            },
        }
        for i, n in enumerate(chunk, start)
    ]
    return json_reply({"registry": REG, "imageName": "web", "tags": tags}, headers=headers)


def mock_aad_client_secret(
    rsps: responses.RequestsMock, token: str = "aad-access-token-1"
) -> list[dict[str, list[str]]]:
    base = f"https://login.microsoftonline.com/{TENANT}"
    rsps.get(
        f"{base}/v2.0/.well-known/openid-configuration",
        json={
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "issuer": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        },
    )
    forms: list[dict[str, list[str]]] = []

    def issue(request: requests.PreparedRequest) -> Reply:
        fields = form(request)
        forms.append(fields)
        if fields.get("client_secret") != [CLIENT_SECRET]:
            return json_reply(
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret "
                    + str(fields.get("client_secret")),
                },
                401,
            )
        return json_reply({"token_type": "Bearer", "expires_in": 3599, "access_token": token})

    rsps.add_callback(responses.POST, f"{base}/oauth2/v2.0/token", callback=issue)
    # After a refusal MSAL asks the instance-discovery endpoint for a better error message; the
    # answer does not change the outcome, and an unmatched URL would make azure-core retry it.
    rsps.get(re.compile(r"https://login\.microsoftonline\.com/common/discovery/instance\?.*"), status=404)
    return forms


def test_admin_user_lists_the_catalog_over_three_pages(rsps: responses.RequestsMock) -> None:
    reg = Acr(rsps)
    names = [f"team/app-{i}" for i in range(8)]
    reg.route("GET", "/acr/v1/_catalog", link_pages(names, "repositories", 3))
    client = connect("acr", REG, ADMIN, KEY)
    assert client.list_repositories() == names
    assert query(reg.token_requests[0])["scope"] == ["registry:catalog:*"]
    assert len([c for c in rsps.calls if "/acr/v1/_catalog" in (c.request.url or "")]) == 4  # 401 + 3 pages


def test_tags_with_digests_and_update_times_over_three_pages(rsps: responses.RequestsMock) -> None:
    reg = Acr(rsps)
    reg.route("GET", "/acr/v1/web/_tags", tags_page)
    infos = connect("acr", REG, ADMIN, KEY).list_tags_with_metadata("web")
    assert [i.tag for i in infos] == [f"v{i}" for i in range(7)]
    assert infos[2].digest == f"sha256:{2:064x}"
    assert (
        infos[2].last_pushed is not None
        and infos[2].last_pushed.isoformat() == "2024-05-03T08:00:00.123456+00:00"
    )
    assert query(reg.token_requests[0])["scope"] == ["repository:web:metadata_read"]


def test_refresh_token_as_password_uses_the_oauth2_refresh_grant(rsps: responses.RequestsMock) -> None:
    reg = Acr(rsps)
    refresh = jwt(time.time() + 3600)
    reg.refresh_tokens.add(refresh)
    reg.route("GET", "/acr/v1/_catalog", lambda _: json_reply({"repositories": ["web"]}))
    assert connect("acr", REG, NULL, refresh).list_repositories() == ["web"]
    assert reg.issued == 1 and not reg.token_requests  # no Basic GET: the POST form was used


def test_service_principal_through_azure_ad_exchange(rsps: responses.RequestsMock) -> None:
    forms = mock_aad_client_secret(rsps)
    reg = Acr(rsps, aad_tokens={"aad-access-token-1"})
    reg.route("GET", "/acr/v1/_catalog", lambda _: json_reply({"repositories": ["web"]}))
    client = connect("acr", REG, f"{TENANT}/{CLIENT}", CLIENT_SECRET)
    assert client.list_repositories() == ["web"]
    assert forms[0]["scope"] == ["https://containerregistry.azure.net/.default"]
    assert forms[0]["client_id"] == [CLIENT]
    exchange = reg.exchanges[0]
    assert (
        exchange["grant_type"] == ["access_token"]
        and exchange["tenant"] == [TENANT]
        and exchange["service"] == [REG]
    )


def test_managed_identity_when_no_credentials_are_given(rsps: responses.RequestsMock) -> None:
    imds = []

    def identity(request: requests.PreparedRequest) -> Reply:
        imds.append(request)
        return json_reply(
            {
                "access_token": "mi-token",
                "expires_in": "3599",
                "expires_on": str(int(time.time()) + 3599),
                "resource": "https://containerregistry.azure.net",
                "token_type": "Bearer",
            }
        )

    rsps.add_callback(
        responses.GET,
        re.compile(r"http://169\.254\.169\.254/metadata/identity/oauth2/token\?.*"),
        callback=identity,
    )
    reg = Acr(rsps, aad_tokens={"mi-token"})
    reg.route("GET", "/acr/v1/_catalog", lambda _: json_reply({"repositories": ["web"]}))
    assert connect("acr", REG).list_repositories() == ["web"]
    assert imds[-1].headers["Metadata"] == "true"  # after azure-identity's own availability probe
    assert "tenant" not in reg.exchanges[0]


def test_expired_refresh_token_is_exchanged_again(rsps: responses.RequestsMock) -> None:
    mock_aad_client_secret(rsps)
    reg = Acr(rsps, aad_tokens={"aad-access-token-1"})
    reg.route("GET", "/acr/v1/_catalog", lambda _: json_reply({"repositories": ["web"]}))
    client = connect("acr", REG, f"{TENANT}/{CLIENT}", CLIENT_SECRET)
    client.list_repositories()
    reg.expire_tokens()  # the access token has expired ...
    reg.refresh_tokens.clear()  # ... and so has the refresh token behind it
    assert client.list_repositories() == ["web"]
    assert len(reg.exchanges) == 2


def test_wrong_admin_key_is_unauthorized_and_not_repeated(rsps: responses.RequestsMock) -> None:
    Acr(rsps).route("GET", "/acr/v1/_catalog", lambda _: json_reply({"repositories": []}))
    with pytest.raises(errors.Unauthorized) as caught:
        connect("acr", REG, ADMIN, "not-" + KEY).list_repositories()
    assert KEY not in str(caught.value)


def test_aad_refusal_is_unauthorized_without_the_client_secret(rsps: responses.RequestsMock) -> None:
    mock_aad_client_secret(rsps)
    Acr(rsps)
    with pytest.raises(errors.Unauthorized) as caught:
        connect("acr", REG, f"{TENANT}/{CLIENT}", CLIENT_SECRET + "-old").list_repositories()
    assert CLIENT_SECRET not in str(caught.value) and "Azure AD refused" in str(caught.value)


def test_denied_repository_is_denied(rsps: responses.RequestsMock) -> None:
    Acr(rsps).route(
        "GET",
        "/acr/v1/web/_tags",
        lambda _: (403, {}, oci_error("DENIED", f"requested access to the resource is denied for {KEY}")),
    )
    with pytest.raises(errors.Denied) as caught:
        connect("acr", REG, ADMIN, KEY).list_tags_with_metadata("web")
    assert KEY not in caught.value.message


def test_unknown_repository_is_not_found(rsps: responses.RequestsMock) -> None:
    Acr(rsps).route(
        "GET",
        "/acr/v1/gone/_tags",
        lambda _: (404, {}, oci_error("NAME_UNKNOWN", "repository name not known to registry")),
    )
    with pytest.raises(errors.NotFound):
        connect("acr", REG, ADMIN, KEY).list_tags_with_metadata("gone")


def test_throttling_is_retried_with_back_off(rsps: responses.RequestsMock, sleeps: list[float]) -> None:
    reg = Acr(rsps)
    answers = iter([(429, {"Retry-After": "5"}, oci_error("TOOMANYREQUESTS", "throttled"))])
    reg.route(
        "GET", "/acr/v1/_catalog", lambda _: next(answers, None) or json_reply({"repositories": ["web"]})
    )
    assert connect("acr", REG, ADMIN, KEY, sleeps=sleeps).list_repositories() == ["web"]
    assert sleeps == [5.0]


def test_legacy_type_name(rsps: responses.RequestsMock) -> None:
    Acr(rsps).route("GET", "/acr/v1/_catalog", lambda _: json_reply({"repositories": ["web"]}))
    client = connect("AzureCR", REG, ADMIN, KEY)
    assert type(client).__name__ == "Acr" and client.list_repositories() == ["web"]

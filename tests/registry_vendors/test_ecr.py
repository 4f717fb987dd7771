"""``ecr`` against AWS's documented APIs, with every call SigV4-signed by the agent.

Shapes from ../shared/docs/registries.md §8 and the botocore service models it cites (BC):
STS ``AssumeRole`` (query protocol, ``Action=AssumeRole&Version=2011-06-15&RoleArn&RoleSessionName
&ExternalId&DurationSeconds`` -> XML ``AssumeRoleResult/Credentials``; errors
``<ErrorResponse><Error><Code>``); ECR JSON 1.1 (``X-Amz-Target:
AmazonEC2ContainerRegistry_V20150921.<Op>``, ``Content-Type: application/x-amz-json-1.1``):
``GetAuthorizationToken`` -> ``authorizationData[{authorizationToken: b64("AWS:<pw>"), expiresAt,
proxyEndpoint}]``, ``DescribeRepositories`` / ``DescribeImages`` paged by ``nextToken`` (maxResults
<= 1000), errors as HTTP 400 ``{"__type", "message"}`` (``ThrottlingException``,
``RepositoryNotFoundException``, ``ExpiredTokenException``). The registry answers Basic challenges
and pages tags/list with an opaque token in ``last`` (registries.md §1.3). The agent's own identity
comes from the AWS SDK credential providers as documented (AWS SDKs and Tools Reference Guide:
environment variables; container provider ``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` under
``169.254.170.2`` with ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE``; EC2 user guide: IMDSv2
``PUT /latest/api/token`` + ``X-aws-ec2-metadata-token``, ``iam/security-credentials/<role>``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests
import responses

from shared import errors
from shared.credentials import encode_credentials, parse_credentials
from shared.registry import RegistryClient, client_for
from tests.registry_vendors.support import (
    SETTINGS,
    MockRegistry,
    Reply,
    form,
    json_reply,
    link_pages,
    oci_error,
)

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/snyk-cra"
EXTERNAL_ID = "ext-Unique-8d2f"
HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
STS = f"https://sts.{REGION}.amazonaws.com/"
ECR_API = f"https://api.ecr.{REGION}.amazonaws.com/"
BASE_KEY, BASE_SECRET = "AKIAAGENTBASE0000001", "agent/Base/Secret/Unique/11111111111111"
ROLE_KEY, ROLE_SECRET, ROLE_TOKEN = (
    "ASIAROLE000000000001",
    "role/Secret/Unique/2222222222222222222",
    "FwoGZXIvYXdzE-Unique-Session",
)
ECR_PASSWORD = "eyJwYXlsb2FkIjoiUnique-ECR-Password"


def iso(seconds_from_now: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds_from_now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def credential_of(request: requests.PreparedRequest) -> tuple[str, str, str, str]:
    """(access key, region, service, signed headers) from a SigV4 Authorization header."""
    match = re.match(
        r"AWS4-HMAC-SHA256 Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request, "
        r"SignedHeaders=([^,]+), Signature=[0-9a-f]{64}$",
        request.headers.get("Authorization", ""),
    )
    assert match, request.headers.get("Authorization")
    return match.group(1), match.group(2), match.group(3), match.group(4)


class Aws:
    """STS and the ECR API, checking who signed each call."""

    def __init__(self, rsps: responses.RequestsMock, base_key: str = BASE_KEY) -> None:
        self.rsps = rsps
        self.base_key = base_key
        self.assumed: list[dict[str, list[str]]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.passwords: list[str] = []
        self.sts_errors: list[Reply] = []
        self.ecr_errors: list[Reply] = []
        self.repositories: list[list[dict[str, Any]]] = [[]]
        self.images: dict[str, list[list[dict[str, Any]]]] = {}
        self.role_key = ROLE_KEY
        rsps.add_callback(responses.POST, STS, callback=self._sts)
        rsps.add_callback(responses.POST, ECR_API, callback=self._ecr)

    def _sts(self, request: requests.PreparedRequest) -> Reply:
        key, region, service, signed = credential_of(request)
        assert (key, region, service) == (self.base_key, REGION, "sts") and "host" in signed.split(";")
        if self.sts_errors:
            return self.sts_errors.pop(0)
        self.assumed.append(form(request))
        xml = f"""<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>arn:aws:sts::{ACCOUNT}:assumed-role/snyk-cra/snyk-registry-agent</Arn><AssumedRoleId>AROA:x</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{self.role_key}</AccessKeyId>
      <SecretAccessKey>{ROLE_SECRET}</SecretAccessKey>
      <SessionToken>{ROLE_TOKEN}</SessionToken>
      <Expiration>{iso(3600)}</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>"""
        return 200, {"Content-Type": "text/xml"}, xml

    def _ecr(self, request: requests.PreparedRequest) -> Reply:
        key, region, service, signed = credential_of(request)
        assert (region, service) == (REGION, "ecr")
        assert {"content-type", "host", "x-amz-date", "x-amz-security-token", "x-amz-target"} <= set(
            signed.split(";")
        )
        if key != self.role_key or request.headers["X-Amz-Security-Token"] != ROLE_TOKEN:
            return json_reply(
                {
                    "__type": "ExpiredTokenException",
                    "message": "The security token included in the request is expired",
                },
                400,
            )
        assert request.headers["Content-Type"] == "application/x-amz-json-1.1"
        operation = request.headers["X-Amz-Target"].split(".", 1)[1]
        body = json.loads(request.body or b"{}")
        self.calls.append((operation, body))
        if self.ecr_errors:
            return self.ecr_errors.pop(0)
        if operation == "GetAuthorizationToken":
            password = f"{ECR_PASSWORD}-{len(self.passwords) + 1}"
            self.passwords.append(password)
            token = base64.b64encode(f"AWS:{password}".encode()).decode()
            return json_reply(
                {
                    "authorizationData": [
                        {
                            "authorizationToken": token,
                            "expiresAt": time.time() + 12 * 3600,
                            "proxyEndpoint": f"https://{HOST}",
                        }
                    ]
                }
            )
        if operation == "DescribeRepositories":
            return self._page(body, "repositories", self.repositories)
        if operation == "DescribeImages":
            return self._page(body, "imageDetails", self.images[body["repositoryName"]])
        raise AssertionError(operation)

    @staticmethod
    def _page(body: dict[str, Any], key: str, pages: list[list[dict[str, Any]]]) -> Reply:
        assert 1 <= body["maxResults"] <= 1000 and body.get("registryId") == ACCOUNT
        token = body.get("nextToken")
        if token is not None and not token.startswith("opaque-"):
            return json_reply(
                {"__type": "InvalidParameterException", "message": "Invalid parameter at 'nextToken'"}, 400
            )
        index = int(token.split("-")[1]) if token else 0
        document: dict[str, Any] = {key: pages[index]}
        if index + 1 < len(pages):
            document["nextToken"] = f"opaque-{index + 1}-{'Z' * 40}"
        return json_reply(document)


def registry(rsps: responses.RequestsMock, aws: Aws) -> MockRegistry:
    return MockRegistry(
        rsps,
        HOST,
        accepts=lambda u, p: u == "AWS" and p in aws.passwords[-1:],
        basic_realm=f"https://{HOST}/",
    )


def connect_ecr(
    type_: str = "ecr", sleeps: list[float] | None = None, external_id: str | None = EXTERNAL_ID
) -> RegistryClient:
    extra: dict[str, str] = {"region": REGION}
    if external_id:
        extra["externalId"] = external_id
    creds = parse_credentials(encode_credentials({"type": type_, "roleArn": ROLE, "extra": extra}))
    client = client_for(creds, SETTINGS)
    client.transport.sleep = (sleeps if sleeps is not None else []).append
    return client


@pytest.fixture
def env_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", BASE_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", BASE_SECRET)


def test_assume_role_then_authorization_token_then_tags_over_three_opaque_pages(
    rsps: responses.RequestsMock, env_identity: None
) -> None:
    aws = Aws(rsps)
    reg = registry(rsps, aws)
    reg.route(
        "GET",
        "/v2/web/tags/list",
        link_pages([f"t{i}" for i in range(7)], "tags", 3, name="web", opaque=True),
    )
    client = connect_ecr()
    assert client.list_tags("web") == [f"t{i}" for i in range(7)]
    assumed = aws.assumed[0]
    assert assumed["Action"] == ["AssumeRole"] and assumed["Version"] == ["2011-06-15"]
    assert (
        assumed["RoleArn"] == [ROLE] and assumed["ExternalId"] == [EXTERNAL_ID] and assumed["RoleSessionName"]
    )
    assert [op for op, _ in aws.calls] == ["GetAuthorizationToken"]
    tag_calls = [c.request.url or "" for c in rsps.calls if "/tags/list" in (c.request.url or "")]
    assert any("last=tok0003X" in u for u in tag_calls) and any("last=tok0006X" in u for u in tag_calls)


def test_tag_page_cursor_carries_the_opaque_token(rsps: responses.RequestsMock, env_identity: None) -> None:
    aws = Aws(rsps)
    registry(rsps, aws).route(
        "GET", "/v2/web/tags/list", link_pages([f"t{i}" for i in range(5)], "tags", 2, opaque=True)
    )
    client = connect_ecr()
    first = client.list_tags_page("web", n=2)
    second = client.list_tags_page("web", cursor=first.next_cursor)
    assert first.tags == ["t0", "t1"] and second.tags == ["t2", "t3"] and second.next_cursor


def test_repositories_from_describe_repositories_over_three_pages(
    rsps: responses.RequestsMock, env_identity: None
) -> None:
    aws = Aws(rsps)
    aws.repositories = [
        [
            {
                "repositoryName": f"team/app-{i}",
                "registryId": ACCOUNT,
                "repositoryUri": f"{HOST}/team/app-{i}",
                "repositoryArn": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/team/app-{i}",
                "createdAt": 1.7e9,
                "imageTagMutability": "MUTABLE",
            }
            for i in range(p * 2, p * 2 + 2)
        ]
        for p in range(3)
    ]
    assert connect_ecr().list_repositories() == [f"team/app-{i}" for i in range(6)]
    pages = [body for op, body in aws.calls if op == "DescribeRepositories"]
    assert [b.get("nextToken", "")[:8] for b in pages] == ["", "opaque-1", "opaque-2"]


def test_tags_with_metadata_from_describe_images_over_three_pages(
    rsps: responses.RequestsMock, env_identity: None
) -> None:
    aws = Aws(rsps)
    aws.images["web"] = [
        [
            {
                "registryId": ACCOUNT,
                "repositoryName": "web",
                "imageDigest": f"sha256:{i:064x}",
                "imageTags": [f"v{i}"],
                "imageSizeInBytes": 100,
                "imagePushedAt": 1714557600.5 + i,
                "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
            }
            for i in range(p * 2, p * 2 + 2)
        ]
        for p in range(3)
    ]
    infos = connect_ecr().list_tags_with_metadata("web")
    assert [(i.tag, i.digest) for i in infos] == [(f"v{i}", f"sha256:{i:064x}") for i in range(6)]
    assert infos[1].last_pushed == datetime.fromtimestamp(1714557601.5, UTC)
    describe = [body for op, body in aws.calls if op == "DescribeImages"]
    assert len(describe) == 3 and describe[0]["filter"] == {"tagStatus": "TAGGED"}


def test_identity_from_imdsv2(rsps: responses.RequestsMock) -> None:
    imds = "http://169.254.169.254"
    rsps.put(
        f"{imds}/latest/api/token",
        body="AQAEAImds-Session-Token==",
        match=[responses.matchers.header_matcher({"X-aws-ec2-metadata-token-ttl-seconds": "21600"})],
    )
    auth = responses.matchers.header_matcher({"X-aws-ec2-metadata-token": "AQAEAImds-Session-Token=="})
    rsps.get(f"{imds}/latest/meta-data/iam/security-credentials/", body="cra-instance-role", match=[auth])
    rsps.get(
        f"{imds}/latest/meta-data/iam/security-credentials/cra-instance-role",
        match=[auth],
        json={
            "Code": "Success",
            "LastUpdated": iso(-60),
            "Type": "AWS-HMAC",
            "AccessKeyId": "ASIAINSTANCE00000001",
            "SecretAccessKey": "instance/Secret",
            "Token": "instance-session",
            "Expiration": iso(6 * 3600),
        },
    )
    aws = Aws(rsps, base_key="ASIAINSTANCE00000001")
    aws.repositories = [[{"repositoryName": "web"}]]
    assert connect_ecr().list_repositories() == ["web"]
    sts_call = next(c.request for c in rsps.calls if c.request.url == STS)
    assert sts_call.headers["X-Amz-Security-Token"] == "instance-session"


def test_identity_from_the_container_credentials_endpoint(
    rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("pod-identity-token\n")
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/7f3c")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token_file))
    rsps.get(
        "http://169.254.170.2/v2/credentials/7f3c",
        match=[responses.matchers.header_matcher({"Authorization": "pod-identity-token"})],
        json={
            "AccessKeyId": "ASIATASK000000000001",
            "SecretAccessKey": "task/Secret",
            "Token": "task-session",
            "Expiration": iso(3600),
            "RoleArn": "arn:aws:iam::1:role/task",
        },
    )
    aws = Aws(rsps, base_key="ASIATASK000000000001")
    aws.repositories = [[{"repositoryName": "web"}]]
    assert connect_ecr().list_repositories() == ["web"]


def test_no_identity_anywhere_is_a_clear_unauthorized(rsps: responses.RequestsMock) -> None:
    with pytest.raises(errors.Unauthorized, match="no AWS identity for the agent"):
        connect_ecr().list_repositories()


def test_refused_authorization_token_is_minted_again(
    rsps: responses.RequestsMock, env_identity: None
) -> None:
    aws = Aws(rsps)
    registry(rsps, aws).route(
        "GET", "/v2/web/tags/list", lambda _: json_reply({"name": "web", "tags": ["1"]})
    )
    client = connect_ecr()
    client.list_tags("web")
    aws.passwords.append("rotated-server-side")  # the registry no longer accepts the first password
    assert client.list_tags("web") == ["1"]
    assert [op for op, _ in aws.calls].count("GetAuthorizationToken") == 2


def test_authorization_token_is_renewed_before_its_twelve_hours_end(
    rsps: responses.RequestsMock, env_identity: None
) -> None:
    aws = Aws(rsps)
    registry(rsps, aws).route(
        "GET", "/v2/web/tags/list", lambda _: json_reply({"name": "web", "tags": ["1"]})
    )
    client = connect_ecr()
    client.list_tags("web")
    client.transport.auth.login.clock = lambda: time.time() + 12 * 3600 - 60  # type: ignore[attr-defined]
    client.list_tags("web")
    assert [op for op, _ in aws.calls].count("GetAuthorizationToken") == 2


def test_expired_role_session_is_assumed_again(rsps: responses.RequestsMock, env_identity: None) -> None:
    aws = Aws(rsps)
    aws.repositories = [[{"repositoryName": "web"}]]
    client = connect_ecr()
    client.list_repositories()
    aws.role_key = "ASIAROLE000000000002"  # the old session is rejected as expired from now on
    assert client.list_repositories() == ["web"]
    assert len(aws.assumed) == 2


def test_sts_access_denied_is_denied_and_scrubbed(rsps: responses.RequestsMock, env_identity: None) -> None:
    aws = Aws(rsps)
    aws.sts_errors.append(
        (
            403,
            {"Content-Type": "text/xml"},
            f"""<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::1:user/agent is not
  authorized to perform: sts:AssumeRole on resource: {ROLE} with external id {EXTERNAL_ID}
  and key {BASE_SECRET}</Message></Error>
  <RequestId>4f6b1bb5-0000-0000-0000-000000000000</RequestId></ErrorResponse>""",
        )
    )
    with pytest.raises(errors.Denied, match="AccessDenied") as caught:
        connect_ecr().list_repositories()
    assert EXTERNAL_ID not in str(caught.value) and BASE_SECRET not in str(caught.value)


def test_registry_401_with_a_bad_password_is_unauthorized_without_it(
    rsps: responses.RequestsMock, env_identity: None
) -> None:
    aws = Aws(rsps)
    reg = MockRegistry(rsps, HOST, accepts=lambda u, p: False, basic_realm=f"https://{HOST}/")
    reg.route("GET", "/v2/web/tags/list", lambda _: json_reply({}))
    with pytest.raises(errors.Unauthorized) as caught:
        connect_ecr().list_tags("web")
    assert not any(p in str(caught.value) for p in aws.passwords) and ROLE_SECRET not in str(caught.value)


def test_access_denied_from_ecr_is_denied(rsps: responses.RequestsMock, env_identity: None) -> None:
    aws = Aws(rsps)
    aws.ecr_errors.append(
        json_reply(
            {
                "__type": "AccessDeniedException",
                "message": "not authorized to perform: ecr:DescribeRepositories",
            },
            400,
        )
    )
    with pytest.raises(errors.Denied, match="ecr:DescribeRepositories"):
        connect_ecr().list_repositories()


def test_unknown_repository_is_not_found(rsps: responses.RequestsMock, env_identity: None) -> None:
    aws = Aws(rsps)
    aws.ecr_errors.append(
        json_reply(
            {
                "__type": "com.amazonaws.ecr#RepositoryNotFoundException",
                "message": "The repository with name 'gone' does not exist in the registry with id "
                f"'{ACCOUNT}'",
            },
            400,
        )
    )
    with pytest.raises(errors.NotFound):
        connect_ecr().list_tags_with_metadata("gone")


def test_throttling_400_is_retried_with_back_off(
    rsps: responses.RequestsMock, env_identity: None, sleeps: list[float]
) -> None:
    aws = Aws(rsps)
    aws.repositories = [[{"repositoryName": "web"}]]
    aws.ecr_errors.append(json_reply({"__type": "ThrottlingException", "message": "Rate exceeded"}, 400))
    assert connect_ecr(sleeps=sleeps).list_repositories() == ["web"]
    assert len(sleeps) == 1


def test_registry_429_is_retried_after_the_advertised_wait(
    rsps: responses.RequestsMock, env_identity: None, sleeps: list[float]
) -> None:
    aws = Aws(rsps)
    answers = iter([(429, {"Retry-After": "6"}, oci_error("TOOMANYREQUESTS", "Rate exceeded"))])
    registry(rsps, aws).route(
        "GET",
        "/v2/web/tags/list",
        lambda _: next(answers, None) or json_reply({"name": "web", "tags": ["1"]}),
    )
    assert connect_ecr(sleeps=sleeps).list_tags("web") == ["1"]
    assert sleeps == [6.0]


def test_legacy_type_name_and_optional_external_id(rsps: responses.RequestsMock, env_identity: None) -> None:
    aws = Aws(rsps)
    aws.repositories = [[{"repositoryName": "web"}]]
    client = connect_ecr("ElasticCR", external_id=None)
    assert type(client).__name__ == "Ecr" and client.list_repositories() == ["web"]
    assert "ExternalId" not in aws.assumed[0]


def test_get_authorization_token_request_signature_matches_botocore(
    rsps: responses.RequestsMock, env_identity: None
) -> None:
    botocore_auth = pytest.importorskip("botocore.auth")
    import botocore.awsrequest
    import botocore.credentials

    aws = Aws(rsps)
    aws.repositories = [[{"repositoryName": "web"}]]
    connect_ecr().list_repositories()
    sent = next(c.request for c in rsps.calls if c.request.url == ECR_API)
    stamp = datetime.strptime(sent.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    theirs = botocore.awsrequest.AWSRequest(
        method="POST",
        url=ECR_API,
        data=sent.body,
        headers={k: sent.headers[k] for k in ("Content-Type", "X-Amz-Target")},
    )
    signer = botocore_auth.SigV4Auth(
        botocore.credentials.Credentials(ROLE_KEY, ROLE_SECRET, ROLE_TOKEN), "ecr", REGION
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=stamp):
        signer.add_auth(theirs)
    assert sent.headers["Authorization"] == theirs.headers["Authorization"]


def test_describe_goes_through_the_shared_v2_path_and_s3_gets_no_credentials(
    rsps: responses.RequestsMock, env_identity: None
) -> None:
    """Blob GETs redirect to presigned S3 URLs (registries.md §8, §1.5): Authorization stays home."""
    aws = Aws(rsps)
    reg = registry(rsps, aws)
    config = json.dumps(
        {"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    reg.route(
        "GET",
        "/v2/web/manifests/1.0",
        lambda _: (
            200,
            {
                "Content-Type": "application/vnd.docker.distribution.manifest.v2+json",
                "Docker-Content-Digest": manifest_digest,
            },
            manifest.decode(),
        ),
    )
    s3 = f"https://prod-{REGION}-starport-layer-bucket.s3.{REGION}.amazonaws.com/x/{config_digest[7:]}?X-Amz-Signature=abc"
    reg.route("GET", f"/v2/web/blobs/{config_digest}", lambda _: (307, {"Location": s3}, ""))
    rsps.get(s3, body=config)
    image = connect_ecr().resolve("web", "1.0")
    assert image.digest == manifest_digest and image.config["architecture"] == "amd64"
    s3_request = next(c.request for c in rsps.calls if (c.request.url or "").startswith("https://prod-"))
    assert "Authorization" not in s3_request.headers

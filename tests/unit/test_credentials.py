"""``shared.credentials``: parsing ``CR_CREDENTIALS`` exactly as the Snyk broker produces it.

Expected behaviour comes from /work/shared/docs/broker-protocol.md:

* §4.1 the two producers and their templates. The classic image's ``docker-entrypoint.sh`` (``#!/bin/ash``)
  fills ``{"type":"%s", "username":"%s", "password":"%s", "registryBase":"%s"}`` (a space after each
  comma; ECR has none and nests ``extra``) with ``printf`` and exports ``$(echo $JSON | base64 -w0)``:
  the unquoted ``echo`` collapses whitespace runs and appends a newline. The universal broker's
  ``containerRegistryCredentialsFormatting.ts`` uses the same templates in a JS template literal plus a
  trailing ``"\\n"`` and base64-encodes that (no whitespace collapsing).
* §4.2 type names, current and legacy spellings.
* §4.3 quirks: values are not JSON-escaped (a GCR / Artifact Registry service-account key pasted as
  the password breaks strict JSON), registryBase is host[:port][/path] and never a scheme, ECR has
  roleArn + extra.region (+ optional externalId), DigitalOcean uses the token as username and password.
* registries.md §0 repeats the type keys and templates.

The secret tests pin the module's own promise ("no error message repeats the input") for a
recognisable password.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import traceback

import pytest

from shared.credentials import (
    LEGACY_TYPES,
    SUPPORTED_TYPES,
    EcrCredentials,
    UserPassCredentials,
    encode_credentials,
    parse_credentials,
    parse_credentials_json,
)
from shared.errors import CredentialsError
from shared.redact import scrub

PASSWORD = "S3cr3t-Pa55w0rd-XYZ"

# broker-protocol.md §4.1, byte for byte (note the spaces after commas, none for ECR).
TEMPLATE = '{"type":"%s", "username":"%s", "password":"%s", "registryBase":"%s"}'
ECR_TEMPLATE = '{"type":"%s","roleArn":"%s","extra":{"region":"%s","externalId":"%s"}}'

CURRENT_BASIC_TYPES = [
    "docker-hub",
    "harbor-cr",
    "acr",
    "gcr",
    "google-artifact-cr",
    "artifactory-cr",
    "quay-cr",
    "github-cr",
    "gitlab-cr",
    "nexus-cr",
    "digitalocean-cr",
    "generic",
]
# §4.2: legacy spelling -> current name.
LEGACY = {
    "DockerHub": "docker-hub",
    "HarborCR": "harbor-cr",
    "AzureCR": "acr",
    "GoogleCR": "gcr",
    "ArtifactoryCR": "artifactory-cr",
    "QuayCR": "quay-cr",
    "ElasticCR": "ecr",
}
ROLE_ARN = "arn:aws:iam::123456789012:role/snyk-cra"

# A Google service-account key as downloaded (pretty-printed, `\n` escapes inside private_key).
GCP_KEY = json.dumps(
    {
        "type": "service_account",
        "project_id": "my-project",
        "private_key_id": "0123456789abcdef",
        "private_key": (
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
        ),
        "client_email": "snyk@my-project.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token",
    },
    indent=2,
)


def entrypoint_b64(json_line: str) -> str:
    """``echo $JSON | base64 -w0``: unquoted echo joins the words with single spaces and adds a newline."""
    return base64.b64encode((" ".join(json_line.split()) + "\n").encode()).decode()


def plugin_b64(json_line: str) -> str:
    """The universal plugin: ``Buffer.from(`${json}\\n`).toString('base64')``."""
    return base64.b64encode((json_line + "\n").encode()).decode()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


PRODUCERS = [pytest.param(entrypoint_b64, id="entrypoint"), pytest.param(plugin_b64, id="universal")]


# --- every type, both spellings, both producers -------------------------------------------------


@pytest.mark.parametrize("produce", PRODUCERS)
@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [(t, t) for t in CURRENT_BASIC_TYPES] + [(k, v) for k, v in LEGACY.items() if v != "ecr"],
)
def test_user_pass_types_parse_in_both_spellings(produce, spelling: str, canonical: str) -> None:
    creds = parse_credentials(produce(TEMPLATE % (spelling, "robot$ci", PASSWORD, "cr.example.com")))

    assert isinstance(creds, UserPassCredentials)
    assert creds.type == canonical
    assert creds.username == "robot$ci"
    assert creds.password.get_secret_value() == PASSWORD
    assert creds.registry_base == "cr.example.com"
    assert creds.host == "cr.example.com"
    assert creds.path_prefix == ""
    assert not creds.anonymous


def test_supported_and_legacy_type_tables_match_the_docs() -> None:
    assert set(SUPPORTED_TYPES) == {*CURRENT_BASIC_TYPES, "ecr"}
    assert LEGACY_TYPES == LEGACY


@pytest.mark.parametrize("produce", PRODUCERS)
def test_digitalocean_token_is_username_and_password(produce) -> None:
    # §4.1: the digitalocean-cr template repeats CR_TOKEN as username and password.
    token = "dop_v1_" + "ab" * 32
    creds = parse_credentials(
        produce(TEMPLATE % ("digitalocean-cr", token, token, "registry.digitalocean.com"))
    )

    assert creds.type == "digitalocean-cr"
    assert creds.username == token
    assert creds.password.get_secret_value() == token
    assert creds.host == "registry.digitalocean.com"


@pytest.mark.parametrize("produce", PRODUCERS)
@pytest.mark.parametrize("spelling", ["ecr", "ElasticCR"])
def test_ecr_with_external_id(produce, spelling: str) -> None:
    creds = parse_credentials(produce(ECR_TEMPLATE % (spelling, ROLE_ARN, "eu-west-1", "ext-id-42")))

    assert isinstance(creds, EcrCredentials)
    assert creds.type == "ecr"
    assert creds.role_arn == ROLE_ARN
    assert creds.extra.region == "eu-west-1"
    assert creds.extra.external_id == "ext-id-42"
    assert creds.registry_base is None


def test_ecr_without_external_id_key() -> None:
    line = '{"type":"ecr","roleArn":"' + ROLE_ARN + '","extra":{"region":"us-east-1"}}'
    creds = parse_credentials(entrypoint_b64(line))

    assert isinstance(creds, EcrCredentials)
    assert creds.extra.region == "us-east-1"
    assert creds.extra.external_id is None
    assert creds.secrets == ()


def test_ecr_with_empty_external_id_from_the_entrypoint() -> None:
    # The entrypoint always writes the key; CR_EXTERNAL_ID unset gives "externalId":"".
    creds = parse_credentials(entrypoint_b64(ECR_TEMPLATE % ("ecr", ROLE_ARN, "us-east-1", "")))

    assert isinstance(creds, EcrCredentials)
    assert not creds.extra.external_id
    assert creds.secrets == ()


@pytest.mark.parametrize(
    "line",
    [
        ECR_TEMPLATE % ("ecr", "not-an-arn", "us-east-1", "x"),
        ECR_TEMPLATE % ("ecr", ROLE_ARN, "", "x"),
        '{"type":"ecr","roleArn":"' + ROLE_ARN + '"}',
    ],
    ids=["bad-role-arn", "empty-region", "no-extra"],
)
def test_ecr_validation_errors(line: str) -> None:
    with pytest.raises(CredentialsError, match=r"^invalid credentials: ecr\."):
        parse_credentials(entrypoint_b64(line))


# --- encodings --------------------------------------------------------------------------------


def test_entrypoint_output_is_what_echo_and_base64_really_produce() -> None:
    """Cross-check ``entrypoint_b64`` against a real shell (the entrypoint runs busybox ash; bash's
    ``echo`` also leaves backslashes alone), so the other tests exercise the real byte stream."""
    if shutil.which("bash") is None or shutil.which("base64") is None:
        pytest.skip("bash and coreutils base64 needed")
    line = TEMPLATE % ("gcr", "_json_key", GCP_KEY, "gcr.io")
    real = subprocess.run(
        ["bash", "-c", "echo $JSON | base64 -w0"],
        env={"JSON": line, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert real == entrypoint_b64(line)
    assert base64.b64decode(real).endswith(b"}\n")


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda raw: base64.b64encode(raw).decode() + "\n", id="trailing-newline-after-base64"),
        pytest.param(lambda raw: "  " + base64.b64encode(raw).decode() + "\r\n", id="surrounding-whitespace"),
        pytest.param(lambda raw: base64.encodebytes(raw).decode(), id="wrapped-at-76-columns"),
        pytest.param(lambda raw: base64.b64encode(raw).decode().rstrip("="), id="padding-dropped"),
        pytest.param(lambda raw: base64.urlsafe_b64encode(raw).decode(), id="url-safe-alphabet"),
    ],
)
def test_tolerated_base64_variants(encode) -> None:
    # A password whose base64 contains both '+' and '/' in the standard alphabet (and '-', '_' url-safe).
    password = "a>>?b~~~" * 4
    raw = (TEMPLATE % ("harbor-cr", "u", password, "harbor.example.com")).encode()
    assert {"+", "/"} <= set(base64.b64encode(raw).decode())

    creds = parse_credentials(encode(raw))
    assert creds.password.get_secret_value() == password


def test_encode_credentials_round_trips() -> None:
    data = {"type": "quay-cr", "username": "org+robot", "password": PASSWORD, "registryBase": "quay.io"}
    creds = parse_credentials(encode_credentials(data))
    assert (creds.type, creds.username, creds.password.get_secret_value()) == (
        "quay-cr",
        "org+robot",
        PASSWORD,
    )


def test_parse_credentials_json_takes_a_decoded_object() -> None:
    creds = parse_credentials_json(
        {"type": "GoogleCR", "username": "_json_key", "password": "k", "registryBase": "gcr.io"}
    )
    assert creds.type == "gcr"


def test_extra_keys_are_ignored() -> None:
    data = {"type": "acr", "username": "u", "password": "p", "registryBase": "x.azurecr.io", "future": 1}
    assert parse_credentials(encode_credentials(data)).host == "x.azurecr.io"


def test_empty_username_and_password_mean_anonymous() -> None:
    creds = parse_credentials(entrypoint_b64(TEMPLATE % ("docker-hub", "", "", "registry-1.docker.io")))
    assert creds.anonymous
    assert creds.username == ""
    assert creds.password.get_secret_value() == ""


# --- an unescaped service-account key in the password (§4.3 quirks 1 and 2) --------------------


@pytest.mark.parametrize("type_", ["gcr", "google-artifact-cr", "GoogleCR"])
def test_gcp_key_through_the_entrypoint_has_collapsed_whitespace(type_: str) -> None:
    line = TEMPLATE % (type_, "_json_key", GCP_KEY, "europe-docker.pkg.dev")
    text = base64.b64decode(entrypoint_b64(line)).decode()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)  # the premise: not valid JSON

    creds = parse_credentials(entrypoint_b64(line))

    pasted_after_echo = " ".join(GCP_KEY.split())
    assert creds.username == "_json_key"
    assert creds.password.get_secret_value() == pasted_after_echo
    assert creds.registry_base == "europe-docker.pkg.dev"
    # The JSON escapes of the key survive untouched, so the key still parses as JSON.
    assert json.loads(creds.password.get_secret_value()) == json.loads(GCP_KEY)


def test_gcp_key_through_the_universal_plugin_keeps_newlines() -> None:
    creds = parse_credentials(plugin_b64(TEMPLATE % ("gcr", "_json_key", GCP_KEY, "gcr.io")))

    assert creds.password.get_secret_value() == GCP_KEY
    assert "\n" in creds.password.get_secret_value()
    assert creds.host == "gcr.io"


def test_compact_gcp_key_without_whitespace() -> None:
    compact = json.dumps(json.loads(GCP_KEY), separators=(",", ":"))
    creds = parse_credentials(entrypoint_b64(TEMPLATE % ("gcr", "_json_key", compact, "gcr.io")))
    assert creds.password.get_secret_value() == compact


def test_escaped_gcp_key_is_parsed_strictly_and_unescaped() -> None:
    # A user who JSON-escaped the key gets valid JSON, and the password is the key itself.
    escaped = json.dumps(GCP_KEY)[1:-1]
    creds = parse_credentials(plugin_b64(TEMPLATE % ("gcr", "_json_key", escaped, "gcr.io")))
    assert creds.password.get_secret_value() == GCP_KEY


def test_unescaped_quote_in_a_plain_password_uses_the_tolerant_parser() -> None:
    password = 'pa"ss, "registry'
    creds = parse_credentials(entrypoint_b64(TEMPLATE % ("nexus-cr", "admin", password, "nexus.local:8443")))
    assert creds.password.get_secret_value() == password
    assert creds.host == "nexus.local:8443"


# --- registryBase (§4.3 quirk 4) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "registry_base", "host", "prefix"),
    [
        ("cr.host.com", "cr.host.com", "cr.host.com", ""),
        ("cr.host.com:5000", "cr.host.com:5000", "cr.host.com:5000", ""),
        ("https://cr.host.com", "cr.host.com", "cr.host.com", ""),
        ("http://cr.host.com:5000/", "cr.host.com:5000", "cr.host.com:5000", ""),
        ("HTTPS://cr.host.com", "cr.host.com", "cr.host.com", ""),
        (
            "https://art.example.com/artifactory/api/docker/docker-local",
            "art.example.com/artifactory/api/docker/docker-local",
            "art.example.com",
            "/artifactory/api/docker/docker-local",
        ),
        (" cr.host.com ", "cr.host.com", "cr.host.com", ""),
    ],
)
def test_registry_base_forms(base: str, registry_base: str, host: str, prefix: str) -> None:
    creds = parse_credentials(plugin_b64(TEMPLATE % ("artifactory-cr", "u", "p", base)))
    assert creds.registry_base == registry_base
    assert creds.host == host
    assert creds.path_prefix == prefix
    assert "://" not in creds.registry_base


@pytest.mark.parametrize("base", ["", "https://", "   ", "cr host.com", "/only/a/path", "https:///v2", "//x"])
def test_unusable_registry_base_is_rejected_naming_the_field(base: str) -> None:
    with pytest.raises(CredentialsError, match="registryBase"):
        parse_credentials(
            encode_credentials({"type": "harbor-cr", "username": "u", "password": "p", "registryBase": base})
        )


def test_missing_registry_base_names_the_field() -> None:
    with pytest.raises(CredentialsError) as caught:
        parse_credentials(encode_credentials({"type": "harbor-cr", "username": "u", "password": "p"}))
    assert "registryBase" in caught.value.message
    assert "required" in caught.value.message.lower()


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("%%% not base64 %%%", "base64"),
        ('{"type":"harbor-cr"}', "base64"),  # raw JSON instead of base64
        ("abcde", "base64"),  # base64 alphabet, impossible length
        (base64.b64encode(b"\xff\xfe\xfd").decode(), "base64"),  # decodes, but not UTF-8
        (b64("hello world"), "not valid JSON"),
        (b64('{"type":"harbor-cr", "username":"u"'), "not valid JSON"),
        (b64('[{"type":"harbor-cr"}]'), "JSON object"),
        (b64('"harbor-cr"'), "JSON object"),
        (b64("null"), "JSON object"),
    ],
)
def test_malformed_input(value: str, fragment: str) -> None:
    with pytest.raises(CredentialsError) as caught:
        parse_credentials(value)
    assert fragment in caught.value.message
    assert caught.value.code == "INVALID_CREDENTIALS"
    assert caught.value.status == 400


@pytest.mark.parametrize("type_", ["harbour-cr", "HARBOR-CR", "ecr-public", "", 42, None, ["gcr"]])
def test_unknown_type_lists_supported_types(type_: object) -> None:
    data = {"type": type_, "username": "u", "password": "p", "registryBase": "r.example.com"}
    with pytest.raises(CredentialsError) as caught:
        parse_credentials(encode_credentials(data))
    message = caught.value.message
    assert message.startswith("invalid credentials: type: ")
    if type_ is not None:
        assert "unsupported registry type" in message
        for supported in SUPPORTED_TYPES:
            assert supported in message


def test_missing_type() -> None:
    with pytest.raises(CredentialsError, match="type: field required"):
        parse_credentials(
            encode_credentials({"username": "u", "password": "p", "registryBase": "r.example.com"})
        )


def test_legacy_type_with_surrounding_spaces_is_accepted() -> None:
    creds = parse_credentials(
        encode_credentials({"type": " HarborCR ", "password": "p", "registryBase": "h.example.com"})
    )
    assert creds.type == "harbor-cr"


# --- secrets never leak ----------------------------------------------------------------------------


def _all_text(error: CredentialsError, *, context: bool = True) -> str:
    """Everything a handler or a log line could show: the error itself and its rendered traceback."""
    parts = [str(error), repr(error), error.message, json.dumps(error.to_body()), repr(error.args)]
    parts.append("".join(traceback.format_exception(error)))
    if context and error.__context__ is not None:
        # Suppressed ("from None") but still attached; its text must not carry the input either.
        parts.append(str(error.__context__))
    return "\n".join(parts)


@pytest.mark.parametrize("produce", [*PRODUCERS, pytest.param(lambda line: b64(line), id="no-newline")])
@pytest.mark.parametrize("type_", ["harbor-cr", "gcr", "digitalocean-cr", "DockerHub"])
def test_password_absent_from_repr_and_str(produce, type_: str) -> None:
    username = PASSWORD if type_ == "digitalocean-cr" else "u"
    creds = parse_credentials(produce(TEMPLATE % (type_, username, PASSWORD, "r.io")))

    assert creds.password.get_secret_value() == PASSWORD
    for text in (
        repr(creds),
        str(creds),
        repr(creds.password),
        str(creds.password),
        f"{creds}",
        f"{creds!r}",
    ):
        assert PASSWORD not in text


def test_gcp_key_absent_from_repr_and_str() -> None:
    creds = parse_credentials(entrypoint_b64(TEMPLATE % ("gcr", "_json_key", GCP_KEY, "gcr.io")))
    for text in (repr(creds), str(creds)):
        assert "PRIVATE KEY" not in text
        assert "service_account" not in text


def test_secrets_property_lets_scrub_remove_the_password() -> None:
    creds = parse_credentials(plugin_b64(TEMPLATE % ("quay-cr", "u", PASSWORD, "quay.io")))
    assert creds.secrets == (PASSWORD,)
    assert PASSWORD not in scrub(f"token request with {PASSWORD} failed", creds.secrets)


@pytest.mark.parametrize(
    "data",
    [
        {"type": "harbor-cr", "username": "u", "password": 12345, "registryBase": PASSWORD + " x"},
        {"type": "harbor-cr", "username": "u", "password": ["list", PASSWORD], "registryBase": "h.io"},
        {"type": "harbor-cr", "username": "u", "password": {"value": PASSWORD}, "registryBase": "h.io"},
        {"type": "harbor-cr", "username": PASSWORD, "password": None, "registryBase": "h.io"},
        {"type": "harbor-cr", "username": ["u"], "password": PASSWORD, "registryBase": 7},
        {"type": "harbor-cr", "username": "u", "password": PASSWORD},
        {"type": "harbor-cr", "username": "u", "password": PASSWORD, "registryBase": "https://"},
        {"type": "harbor-cr", "username": "u", "password": PASSWORD, "registryBase": f"h.io/{PASSWORD} x"},
        {"username": "u", "password": PASSWORD, "registryBase": "h.io"},
        {"type": "ecr", "roleArn": PASSWORD, "extra": {"region": PASSWORD, "externalId": 5}},
        {"type": "ecr", "roleArn": ROLE_ARN, "extra": PASSWORD},
        {"type": "ecr", "roleArn": ROLE_ARN, "extra": {"region": "", "externalId": PASSWORD}},
    ],
)
def test_password_absent_from_validation_errors(data: dict) -> None:
    with pytest.raises(CredentialsError) as caught:
        parse_credentials(encode_credentials(data))
    assert PASSWORD not in _all_text(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize("type_", [PASSWORD, {"nested": PASSWORD}, [PASSWORD]], ids=["str", "dict", "list"])
def test_password_pasted_into_type_is_not_echoed(type_: object) -> None:
    # pydantic's own union_tag_invalid text repeats the tag; the message and traceback must not.
    data = {"type": type_, "username": "u", "password": PASSWORD, "registryBase": "h.io"}
    with pytest.raises(CredentialsError) as caught:
        parse_credentials(encode_credentials(data))
    assert PASSWORD not in _all_text(caught.value, context=False)


@pytest.mark.parametrize(
    "text",
    [
        TEMPLATE % ("no-such-type", "u", PASSWORD, "h.io"),  # tolerant-parser path is not needed here
        TEMPLATE % ("no-such-type", "_json_key", GCP_KEY.replace("my-project", PASSWORD), "h.io"),
        TEMPLATE % ("gcr", "_json_key", GCP_KEY.replace("my-project", PASSWORD), "https://"),
        '{"type":"harbor-cr", "password":"' + PASSWORD + '"',  # truncated: not JSON, no template match
        f'["{PASSWORD}"]',
    ],
)
def test_password_absent_from_errors_on_unparseable_or_invalid_text(text: str) -> None:
    with pytest.raises(CredentialsError) as caught:
        parse_credentials(entrypoint_b64(text))
    assert PASSWORD not in _all_text(caught.value)


def test_password_absent_from_base64_errors() -> None:
    with pytest.raises(CredentialsError) as caught:
        parse_credentials(f"!{PASSWORD}!")
    assert PASSWORD not in _all_text(caught.value)

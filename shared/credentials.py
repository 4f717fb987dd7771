"""Registry credentials as the broker delivers them (``CR_CREDENTIALS``).

The broker builds the value by interpolating variables into a JSON template and base64-encoding an
unquoted ``echo``: values are not JSON-escaped, whitespace runs collapse and a newline trails
(../shared/docs/broker-protocol.md §4). So parsing is strict JSON first and, failing that, a tolerant
match on the one fixed template. Secrets are ``SecretStr`` and no error message repeats the input.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError, field_validator

from shared.errors import CredentialsError

# Legacy spellings (2021 docs and the broker's entrypoint) mapped to the current type names.
LEGACY_TYPES = {
    "DockerHub": "docker-hub",
    "HarborCR": "harbor-cr",
    "AzureCR": "acr",
    "GoogleCR": "gcr",
    "ArtifactoryCR": "artifactory-cr",
    "QuayCR": "quay-cr",
    "ElasticCR": "ecr",
}

BasicType = Literal[
    "generic",
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
]

SUPPORTED_TYPES: tuple[str, ...] = (*BasicType.__args__, "ecr")  # type: ignore[attr-defined]

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class _Credentials(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value this credential holds, for scrubbing text before it leaves."""
        return ()


class UserPassCredentials(_Credentials):
    """Every registry type that authenticates with a username and a password or token."""

    type: BasicType
    username: str = ""
    password: SecretStr = SecretStr("")
    registry_base: str = Field(alias="registryBase", min_length=1)

    @field_validator("registry_base")
    @classmethod
    def _registry_base(cls, value: str) -> str:
        # The broker documents host[:port][/path] without a scheme; people paste URLs anyway.
        value = _SCHEME.sub("", value.strip()).rstrip("/")
        if not value or not value.split("/", 1)[0] or any(c.isspace() for c in value):
            raise ValueError("must be host[:port][/path-prefix] without a scheme")
        return value

    @property
    def host(self) -> str:
        """host[:port] of the registry, without the path prefix."""
        return self.registry_base.split("/", 1)[0]

    @property
    def path_prefix(self) -> str:
        """Path before ``/v2`` (Artifactory's repository-path method), empty or starting with ``/``."""
        rest = self.registry_base.partition("/")[2]
        return f"/{rest}" if rest else ""

    @property
    def anonymous(self) -> bool:
        return not self.username and not self.password.get_secret_value()

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.password.get_secret_value(),)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # digitalocean-cr sends its API token as both username and password (broker-protocol.md §4.1),
        # so a username equal to the password is masked in repr() and str() as well.
        for name, value in super().__repr_args__():
            if name == "username" and value and value == self.password.get_secret_value():
                value = "**********"
            yield name, value


class EcrExtra(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    region: str = Field(min_length=1)
    external_id: str | None = Field(default=None, alias="externalId")


class EcrCredentials(_Credentials):
    """AWS ECR: the agent assumes ``roleArn`` with its own identity; no static secret travels."""

    type: Literal["ecr"]
    role_arn: str = Field(alias="roleArn", pattern=r"^arn:aws[a-zA-Z-]*:iam::\d{12}:role/.+")
    extra: EcrExtra
    registry_base: str | None = Field(default=None, alias="registryBase")

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.extra.external_id,) if self.extra.external_id else ()


Credentials = Annotated[UserPassCredentials | EcrCredentials, Field(discriminator="type")]
# Validated through this adapter, the models' own hide_input_in_errors is not applied: set it here.
_ADAPTER: TypeAdapter[UserPassCredentials | EcrCredentials] = TypeAdapter(
    Credentials, config=ConfigDict(hide_input_in_errors=True)
)

# The broker's template for every type but ECR, in its fixed key order (broker-protocol.md §4.1).
_TEMPLATE = re.compile(
    r'^\{\s*"type"\s*:\s*"(?P<type>[^"]*)"\s*,'
    r'\s*"username"\s*:\s*"(?P<username>[^"]*)"\s*,'
    r'\s*"password"\s*:\s*"(?P<password>.*)"\s*,'
    r'\s*"registryBase"\s*:\s*"(?P<registryBase>[^"]*)"\s*\}$',
    re.DOTALL,
)


def _decode_base64(value: str) -> str:
    compact = "".join(value.split())
    if not compact:
        raise CredentialsError("credentials are empty")
    compact += "=" * (-len(compact) % 4)
    try:
        raw = base64.b64decode(
            compact, altchars=b"-_" if ("-" in compact or "_" in compact) else None, validate=True
        )
        return raw.decode("utf-8").strip()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CredentialsError("credentials are not base64-encoded JSON") from None


def _load_json(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        match = _TEMPLATE.match(text)
        if match is None:
            raise CredentialsError("credentials are not valid JSON") from None
        return match.groupdict()
    if not isinstance(data, dict):
        raise CredentialsError("credentials must be a JSON object")
    return data


def _validation_message(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_input=False, include_url=False):
        field = ".".join(str(p) for p in item["loc"] if not isinstance(p, int)) or "credentials"
        if item["type"] == "union_tag_invalid":
            parts.append(f"type: unsupported registry type; supported: {', '.join(SUPPORTED_TYPES)}")
        elif item["type"] == "union_tag_not_found":
            parts.append("type: field required")
        else:
            parts.append(f"{field}: {item['msg']}")
    return "invalid credentials: " + "; ".join(parts)


def parse_credentials_json(data: dict[str, Any]) -> UserPassCredentials | EcrCredentials:
    """Validate an already-decoded credentials object."""
    data = dict(data)
    if isinstance(data.get("type"), str):
        data["type"] = LEGACY_TYPES.get(data["type"].strip(), data["type"].strip())
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as error:
        raise CredentialsError(_validation_message(error)) from None


def parse_credentials(value: str) -> UserPassCredentials | EcrCredentials:
    """Parse a ``CR_CREDENTIALS`` value: base64 of the broker's credentials JSON."""
    return parse_credentials_json(_load_json(_decode_base64(value)))


def encode_credentials(data: dict[str, Any]) -> str:
    """The broker's encoding of a credentials object; used by the CLI and tests."""
    return base64.b64encode(json.dumps(data).encode()).decode()

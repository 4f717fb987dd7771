"""What ``gcr`` and ``google-artifact-cr`` share: Google credentials and GCR-style tag metadata
(registries.md §6; go-containerregistry ``pkg/v1/google/{auth,list}.go``).

Usernames the registries document:

* ``_json_key`` + a service-account JSON key, ``_json_key_base64`` + the same key base64-encoded:
  the agent mints a cloud-platform access token with google-auth and renews it before it expires
  (tokens live about an hour), so the private key itself never travels;
* ``oauth2accesstoken`` (or ``_token``) + an access token, used as it is.

The key arrives as the broker made it: not JSON-escaped, and whitespace runs collapsed by an
unquoted ``echo`` (broker-protocol.md §4.3), which can turn the PEM private key's newlines into
spaces. JSON is read leniently (raw control characters allowed) and the PEM is rebuilt.

The same access token authenticates Google's REST APIs (Artifact Registry) as ``Bearer``.
GCR and Artifact Registry add a ``manifest`` map to tags/list: every digest with its tags and
``timeUploadedMs``, which gives tag metadata without a request per tag.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import textwrap
from datetime import UTC
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from shared import errors
from shared.redact import scrub
from shared.registry.login import Login, Minted, MintedLogin, RegistryCredential, static_login
from shared.registry.models import TagInfo
from shared.registry.reference import validate_repository
from shared.registry.timestamps import from_epoch
from shared.registry.vendors.api import ApiAuth
from shared.registry.vendors.base import OciVendor

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
JSON_KEY = "_json_key"
JSON_KEY_BASE64 = "_json_key_base64"
ACCESS_TOKEN_USERNAMES = frozenset({"oauth2accesstoken", "_token"})
TOKEN_USERNAME = "oauth2accesstoken"  # noqa: S105 - the username Google documents, not a secret
_PEM = re.compile(r"-----BEGIN (?P<label>[A-Z ]+)-----(?P<body>.*?)-----END (?P=label)-----", re.DOTALL)


def repair_pem(key: str) -> str:
    """A PEM block with its base64 body re-wrapped, whatever whitespace it lost or gained."""
    key = key.replace("\\n", "\n")
    match = _PEM.search(key)
    if match is None:
        return key
    body = re.sub(r"\s+", "", match.group("body"))
    label = match.group("label")
    return f"-----BEGIN {label}-----\n" + "\n".join(textwrap.wrap(body, 64)) + f"\n-----END {label}-----\n"


def parse_service_account_key(text: str) -> dict[str, Any]:
    """The service-account key as a dict with a usable ``private_key``; CredentialsError otherwise."""
    try:
        info = json.loads(text.strip(), strict=False)  # strict=False: raw newlines inside strings
    except ValueError:
        info = None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise errors.CredentialsError("password is not a Google service-account JSON key")
    if not isinstance(info.get("private_key"), str) or not info.get("client_email"):
        raise errors.CredentialsError("service-account key lacks private_key or client_email")
    info["private_key"] = repair_pem(info["private_key"])
    token_uri = urlsplit(str(info.get("token_uri") or "https://oauth2.googleapis.com/token"))
    # The key names where it is exchanged; only Google's own HTTPS endpoints are trusted with it.
    if token_uri.scheme != "https" or not (token_uri.hostname or "").endswith(".googleapis.com"):
        raise errors.CredentialsError("service-account key's token_uri is not a googleapis.com URL")
    return info


def _decode_base64_key(text: str) -> str:
    try:
        return base64.b64decode("".join(text.split()), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise errors.CredentialsError(f"{JSON_KEY_BASE64} password is not base64") from None


class GoogleVendor(OciVendor):
    """Registries on Google's infrastructure; ``registryBase`` is the host and optionally a project."""

    def v2_prefix(self) -> str:
        return ""  # a path in registryBase names a project, not a prefix before /v2

    @cached_property
    def service_account_key(self) -> dict[str, Any] | None:
        if self.username == JSON_KEY:
            key = parse_service_account_key(self.password)
        elif self.username == JSON_KEY_BASE64:
            key = parse_service_account_key(_decode_base64_key(self.password))
        else:
            return None
        # The password is the whole key; its private key alone must be scrubbed from messages too.
        self.transport.add_secrets(key["private_key"], str(key.get("private_key_id") or ""))
        return key

    def registry_login(self) -> Login:
        if self.service_account_key is not None:
            return MintedLogin(self._mint_access_token)
        return super().registry_login()

    def _mint_access_token(self) -> Minted:
        # Imported here, not at the top: only service-account keys need google-auth.
        import google.auth.exceptions
        from google.auth.transport.requests import Request
        from google.oauth2 import service_account

        key = self.service_account_key
        assert key is not None
        try:
            credentials = service_account.Credentials.from_service_account_info(key, scopes=[CLOUD_PLATFORM])
            credentials.refresh(Request(self.transport.session))
        except ValueError:
            raise errors.CredentialsError("service-account key's private_key cannot be read") from None
        except google.auth.exceptions.RefreshError as refused:
            detail = scrub(str(refused.args[0] if refused.args else "refused"), self.transport.secrets)
            raise errors.Unauthorized(f"Google refused the service-account key ({detail[:200]})") from None
        except google.auth.exceptions.TransportError:
            raise errors.RegistryUnavailable("cannot reach Google's OAuth2 token endpoint") from None
        token = credentials.token
        if not token:
            raise errors.ProtocolError("Google's token endpoint answered without an access token")
        expiry = credentials.expiry.replace(tzinfo=UTC).timestamp() if credentials.expiry else None
        return Minted(RegistryCredential(username=TOKEN_USERNAME, password=token), expiry)

    @property
    def access_token_auth(self) -> ApiAuth:
        """``Authorization: Bearer <access token>`` for Google APIs, renewed with the registry's."""
        login = self.transport.auth.login
        if self.service_account_key is None and self.username not in ACCESS_TOKEN_USERNAMES:
            login = static_login()
        return ApiAuth(login, lambda c: {"Authorization": f"Bearer {c.password}"} if c.password else {})

    @property
    def project(self) -> str | None:
        if self.namespace:
            return self.namespace.split("/", 1)[0]
        key = self.service_account_key
        return str(key["project_id"]) if key and key.get("project_id") else None

    def list_tags_with_metadata(self, repository: str) -> list[TagInfo]:
        repository = validate_repository(repository.strip("/"))
        what = f"list tags of {repository}"
        by_tag: dict[str, TagInfo] = {}
        listed: set[str] = set()
        first = self._v2(f"/{repository}/tags/list")
        for document in self.registry_documents(first, f"repository:{repository}:pull", what):
            listed.update(t for t in document.get("tags") or [] if isinstance(t, str))
            manifests = document.get("manifest")
            for digest, details in manifests.items() if isinstance(manifests, dict) else []:
                if not isinstance(details, dict):
                    continue
                uploaded = from_epoch(details.get("timeUploadedMs"), milliseconds=True)
                for tag in details.get("tag") or []:
                    by_tag[tag] = TagInfo(tag, digest, uploaded)
        for tag in listed - by_tag.keys():
            by_tag[tag] = TagInfo(tag, self.head_digest(repository, tag))
        return [by_tag[t] for t in sorted(by_tag)]

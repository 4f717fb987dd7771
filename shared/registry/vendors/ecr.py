"""``ecr``: Amazon Elastic Container Registry (registries.md §8; botocore ``ecr/2015-09-21`` and
``sts/2011-06-15`` service models).

No static secret travels: the broker sends ``roleArn``, ``extra.region`` and ``extra.externalId``.
The agent signs every AWS call itself (SigV4, ``shared.aws``):

1. its own identity from the environment, the container credentials endpoint or IMDSv2;
2. ``sts:AssumeRole`` into ``roleArn`` with the external id;
3. ``ecr:GetAuthorizationToken`` with the role: a base64 ``AWS:<password>`` valid 12 hours, used
   as Basic against ``<account>.dkr.ecr.<region>.amazonaws.com`` and minted again before it
   expires or when the registry refuses it.

``_catalog`` is not served, so repositories come from ``DescribeRepositories`` and tag metadata
(digest, ``imagePushedAt``) from ``DescribeImages``, both JSON 1.1 calls paged by ``nextToken``
(1000 a page, the most ECR accepts). Plain tag listing and tag pages use the registry's tags/list,
whose ``Link`` carries an opaque token that is followed as it is. Throttling answers (HTTP 400
``ThrottlingException``) are retried with back-off; an expired session refreshes the role.
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import cached_property
from typing import Any

from shared import errors
from shared.aws.call import AwsCall, json_body
from shared.aws.identity import AgentIdentity
from shared.aws.sts import AssumedRole, dns_suffix
from shared.credentials import EcrCredentials
from shared.registry.client import parse_json
from shared.registry.login import Login, Minted, MintedLogin, RegistryCredential
from shared.registry.models import TagInfo
from shared.registry.paging import follow_pages
from shared.registry.reference import validate_repository
from shared.registry.timestamps import from_epoch
from shared.registry.vendors.base import Vendor, register

TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921"
PAGE_SIZE = 1000
_ACCOUNT = re.compile(r"^(\d{12})\.dkr\.ecr\.")


@register("ecr")
class Ecr(Vendor[EcrCredentials]):
    @property
    def region(self) -> str:
        return self.credentials.extra.region

    @property
    def role_account(self) -> str:
        return self.credentials.role_arn.split(":")[4]

    @classmethod
    def host_of(cls, credentials: EcrCredentials) -> str:
        if credentials.registry_base:
            base = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", credentials.registry_base.strip())
            return base.split("/", 1)[0]
        # One broker per ECR account (broker docs): the role's account holds the registry.
        region = credentials.extra.region
        return f"{credentials.role_arn.split(':')[4]}.dkr.ecr.{region}.{dns_suffix(region)}"

    def registry_login(self) -> Login:
        return MintedLogin(self._authorization_token)

    @cached_property
    def role(self) -> AssumedRole:
        identity = AgentIdentity(self.transport.send)
        return AssumedRole(
            self.transport,
            identity,
            self.credentials.role_arn,
            self.region,
            self.credentials.extra.external_id,
        )

    @cached_property
    def api(self) -> AwsCall:
        return AwsCall(
            self.transport, f"https://api.ecr.{self.region}.{dns_suffix(self.region)}/", self.region, "ecr"
        )

    @property
    def registry_id(self) -> str | None:
        match = _ACCOUNT.match(self.transport.base_url.split("://", 1)[-1])
        return match.group(1) if match else None

    def call(self, operation: str, payload: dict[str, Any], what: str) -> dict[str, Any]:
        body = self.api.send(
            json_body(payload),
            {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{TARGET_PREFIX}.{operation}"},
            self.role.credentials,
            what,
            on_expired=self.role.forget,
        )
        return parse_json(body, what, sender="ECR")

    def _authorization_token(self) -> Minted:
        what = "ECR GetAuthorizationToken"
        document = self.call("GetAuthorizationToken", {}, what)
        data = document.get("authorizationData")
        entry = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        try:
            username, _, password = (
                base64.b64decode(str(entry.get("authorizationToken", ""))).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError, ValueError):
            username, password = "", ""
        if not username or not password:
            raise errors.ProtocolError(f"{what}: answer has no usable authorizationToken")
        self.transport.add_secrets(password, str(entry.get("authorizationToken")))
        expires = from_epoch(entry.get("expiresAt"))
        return Minted(
            RegistryCredential(username=username, password=password), expires.timestamp() if expires else None
        )

    def _paged(self, operation: str, payload: dict[str, Any], key: str, what: str) -> list[dict[str, Any]]:
        def fetch(token: str) -> tuple[list[dict[str, Any]], str | None]:
            request = {**payload, "maxResults": PAGE_SIZE}
            if self.registry_id:
                request["registryId"] = self.registry_id
            if token:
                request["nextToken"] = token
            document = self.call(operation, request, what)
            page = document.get(key) or []
            if not isinstance(page, list):
                raise errors.ProtocolError(f"{what}: '{key}' is not a list")
            return [i for i in page if isinstance(i, dict)], document.get("nextToken") or None

        # The first request carries no token: "" stands for it.
        return [item for page in follow_pages("", fetch, what) for item in page]

    def list_repositories(self) -> list[str]:
        repositories = self._paged("DescribeRepositories", {}, "repositories", "list ECR repositories")
        return sorted({str(r["repositoryName"]) for r in repositories if r.get("repositoryName")})

    def list_tags_with_metadata(self, repository: str) -> list[TagInfo]:
        repository = validate_repository(repository.strip("/"))
        images = self._paged(
            "DescribeImages",
            {"repositoryName": repository, "filter": {"tagStatus": "TAGGED"}},
            "imageDetails",
            f"describe images of {repository}",
        )
        found: dict[str, TagInfo] = {}
        for image in images:
            for tag in image.get("imageTags") or []:
                found[tag] = TagInfo(tag, image.get("imageDigest"), from_epoch(image.get("imagePushedAt")))
        return [found[t] for t in sorted(found)]

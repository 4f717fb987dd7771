"""STS AssumeRole over the query protocol (botocore ``sts/2011-06-15`` model; registries.md §8).

``POST https://sts.<region>.amazonaws.com/`` with the form ``Action=AssumeRole``,
``Version=2011-06-15``, ``RoleArn``, ``RoleSessionName``, ``ExternalId``, ``DurationSeconds``,
signed with the agent's own identity (service ``sts``). The answer is XML:
``AssumeRoleResult/Credentials/{AccessKeyId,SecretAccessKey,SessionToken,Expiration}``. The
regional endpoint keeps the call inside the partition of the registry's region.
"""

from __future__ import annotations

import threading
import time
from xml.etree.ElementTree import Element

from shared import errors
from shared.aws.call import AwsCall, form_body, parse_xml
from shared.aws.identity import AgentIdentity
from shared.aws.sigv4 import AwsCredentials
from shared.registry.timestamps import from_iso
from shared.registry.transport import Transport

SESSION_NAME = "snyk-registry-agent"
DURATION_SECONDS = 3600
RENEW_MARGIN = 300.0


def dns_suffix(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def _text(root: Element, name: str) -> str:
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == name:
            return (element.text or "").strip()
    return ""


class AssumedRole:
    """Temporary credentials for ``role_arn``, assumed again shortly before they expire."""

    def __init__(
        self,
        transport: Transport,
        identity: AgentIdentity,
        role_arn: str,
        region: str,
        external_id: str | None,
    ) -> None:
        self._identity = identity
        self._role_arn = role_arn
        self._external_id = external_id
        self._call = AwsCall(transport, f"https://sts.{region}.{dns_suffix(region)}/", region, "sts")
        self._cached: AwsCredentials | None = None
        self._lock = threading.Lock()

    def credentials(self) -> AwsCredentials:
        with self._lock:
            cached = self._cached
            if cached is None or (
                cached.expiration is not None and cached.expiration - RENEW_MARGIN <= time.time()
            ):
                cached = self._cached = self._assume()
            return cached

    def forget(self) -> None:
        with self._lock:
            self._cached = None

    def _assume(self) -> AwsCredentials:
        fields = {
            "Action": "AssumeRole",
            "Version": "2011-06-15",
            "RoleArn": self._role_arn,
            "RoleSessionName": SESSION_NAME,
            "DurationSeconds": str(DURATION_SECONDS),
        }
        if self._external_id:
            fields["ExternalId"] = self._external_id
        body = self._call.send(
            form_body(fields),
            {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            self._identity.credentials,
            f"assume role {self._role_arn}",
            on_expired=self._identity.forget,
        )
        root = parse_xml(body)
        if root is None:
            raise errors.ProtocolError("STS AssumeRole: answer is not XML")
        key, secret, token = (_text(root, n) for n in ("AccessKeyId", "SecretAccessKey", "SessionToken"))
        if not key or not secret:
            raise errors.ProtocolError("STS AssumeRole: answer lacks credentials")
        expires = from_iso(_text(root, "Expiration"))
        return AwsCredentials(key, secret, token or None, expires.timestamp() if expires else None)

"""Where a registry may send the agent: never to a cloud metadata service.

A token realm, a blob redirect and a next-page link are all addresses a registry *tells* the agent
to go to. Inside a cloud network the agent's own identity sits one request away at the metadata
service (169.254.169.254, AWS's IPv6 fd00:ec2::254, ``metadata.google.internal``), so a hostile or
compromised registry could otherwise make the agent fetch its cloud credentials and hand them back
as "a token" or "a blob". These addresses are refused before any connection is made.

The check is on the URL as written: every spelling of an IPv4 address that the C resolver accepts
(``2852039166``, ``0xa9fea9fe``, ``0251.0376.0251.0376``), IPv4-mapped IPv6 and the metadata host
names. A DNS name that *resolves* to such an address is not caught here (that needs the resolver's
answer at connect time); docs/security.md says so.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from shared import errors

METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6 (not link-local by its prefix)
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud's metadata service
    }
)
METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})
# Legacy IPv4 spellings: decimal, octal and hex parts, one to four of them.
_LEGACY_IPV4 = re.compile(r"^(?:0x[0-9a-f]+|[0-9]+)(?:\.(?:0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        if not _LEGACY_IPV4.match(host):
            return None
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forbidden_reason(host: str) -> str | None:
    """Why the agent must not be sent to ``host`` (a hostname or IP literal), or None."""
    name = host.strip().rstrip(".").lower()
    if name in METADATA_NAMES:
        return f"{name} is a cloud metadata service"
    address = _address(name)
    if address is None:
        return None
    if address.is_link_local:
        return f"{host} is a link-local address (cloud metadata services live there)"
    if address in METADATA_ADDRESSES:
        return f"{host} is a cloud metadata address"
    return None


def refuse_metadata_url(url: str, what: str) -> None:
    """``RefusedHost`` when the URL a registry gave for ``what`` points at a metadata service."""
    reason = forbidden_reason(urlsplit(url).hostname or "")
    if reason:
        raise errors.RefusedHost(f"{what} points at a forbidden host: {reason}")

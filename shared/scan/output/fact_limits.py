"""Size limits on the image-metadata facts of a Snyk scan result.

Snyk's backend stores these facts as sent, so snyk-docker-plugin caps them (``utils.js``
``RESPONSE_SIZE_LIMITS``, 9.20.2) and reports each cut in ``pluginWarnings.truncatedFacts``; the same
caps are applied here so an image with a huge history or environment is accepted the same way.
Paths are ``<fact type>.data`` followed by object keys and ``[*]`` for every array element.
"""

from __future__ import annotations

from typing import Any, Literal

Kind = Literal["array", "string"]

RESPONSE_SIZE_LIMITS: dict[str, tuple[Kind, int]] = {
    "containerConfig.data.user": ("string", 1024),
    "containerConfig.data.exposedPorts": ("array", 500),
    "containerConfig.data.exposedPorts[*]": ("string", 64),
    "containerConfig.data.env": ("array", 500),
    "containerConfig.data.env[*]": ("string", 1024),
    "containerConfig.data.entrypoint": ("array", 500),
    "containerConfig.data.entrypoint[*]": ("string", 1024),
    "containerConfig.data.cmd": ("array", 500),
    "containerConfig.data.cmd[*]": ("string", 1024),
    "containerConfig.data.volumes": ("array", 500),
    "containerConfig.data.volumes[*]": ("string", 1024),
    "containerConfig.data.workingDir": ("string", 1024),
    "containerConfig.data.stopSignal": ("string", 128),
    "history.data": ("array", 1000),
    "history.data[*].author": ("string", 128),
    "history.data[*].createdBy": ("string", 4096),
    "history.data[*].comment": ("string", 4096),
}


def _cut(value: Any, path: str, tracker: dict[str, dict[str, Any]]) -> Any:
    limit = RESPONSE_SIZE_LIMITS.get(path)
    if limit is None:
        return value
    kind, size = limit
    if kind == "array" and isinstance(value, list) and len(value) > size:
        tracker[path] = {"type": kind, "countAboveLimit": len(value) - size}
        return value[:size]
    if kind == "string" and isinstance(value, str) and len(value) > size:
        # Several strings share one path (every history entry): report the largest overshoot.
        over = len(value) - size
        if over > tracker.get(path, {}).get("countAboveLimit", 0):
            tracker[path] = {"type": kind, "countAboveLimit": over}
        return value[:size]
    return value


def _walk(value: Any, path: str, tracker: dict[str, dict[str, Any]]) -> Any:
    value = _cut(value, path, tracker)
    if not any(key.startswith(path) for key in RESPONSE_SIZE_LIMITS):
        return value
    if isinstance(value, list):
        return [_walk(item, f"{path}[*]", tracker) for item in value]
    if isinstance(value, dict):
        return {key: _walk(item, f"{path}.{key}", tracker) for key, item in value.items()}
    return value


def truncate_facts(facts: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The facts with oversized values cut, and what was cut by path (empty when nothing was)."""
    tracker: dict[str, dict[str, Any]] = {}
    out = [
        {**fact, "data": _walk(fact["data"], f"{fact['type']}.data", tracker)}
        if fact.get("type") != "depGraph"
        else fact
        for fact in facts
    ]
    return out, tracker

"""Every environment variable the agent honours, validated once at start-up.

This model is the single source of the README's configuration table (``configuration_table``); a
test keeps the two in step.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import ConfigurationError


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "registry-agent"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", hide_input_in_errors=True)

    snyk_port: int | None = Field(None, ge=1, le=65535, description="Port the agent listens on.")
    port: int | None = Field(None, ge=1, le=65535, description="Fallback port when `SNYK_PORT` is unset.")
    agent_host: str = Field(
        "127.0.0.1", description="Address the agent binds to (`0.0.0.0` in the container)."
    )
    cr_credentials: SecretStr | None = Field(
        None, description="Fallback registry credentials: base64 of the broker's credentials JSON."
    )
    insecure_registries: str = Field(
        "", description="Comma-separated `host:port` list reached over plain HTTP instead of HTTPS."
    )
    requests_ca_bundle: str | None = Field(
        None, description="CA bundle for verifying registries (default: the system CAs)."
    )
    registry_timeout_seconds: float = Field(
        30.0, gt=0, description="Connect and read timeout of each registry call, in seconds."
    )
    registry_max_retries: int = Field(
        4, ge=0, le=10, description="Retries of a registry call after a connection error, 408, 429 or 5xx."
    )
    registry_retry_budget_seconds: float = Field(
        60.0, gt=0, description="Longest total time spent waiting between retries of one call."
    )
    snyk_disable_list_repos: bool = Field(False, description="`/list` answers an empty list.")
    snyk_max_image_size_in_bytes: int = Field(
        2 * 1024**3, gt=0, description="Largest image (sum of compressed layers) that is scanned."
    )
    max_active_operations: int = Field(1, ge=1, le=64, description="Scans that run at the same time.")
    max_queued_scans: int = Field(
        1000,
        ge=1,
        description="Scans waiting for a worker (`SCAN_DISPATCH=local`); when that many wait, `POST /scan` "
        "and `/discover` answer 429 with `Retry-After` until the queue drains.",
    )
    scan_max_layer_bytes: int = Field(
        8 * 1024**3,
        gt=0,
        description="Largest uncompressed size of one layer; a bigger one (or a decompression bomb) fails "
        "the scan.",
    )
    scan_max_layer_entries: int = Field(
        500_000, gt=0, description="Most tar entries in one layer; more fails the scan."
    )
    scan_max_file_bytes: int = Field(
        256 * 1024**2,
        gt=0,
        description="Largest file read for a cataloger (package databases, jars); bigger ones are skipped "
        "with a warning.",
    )
    scan_layer_worker: bool = Field(
        True,
        description="Read each layer (inflate, hash, walk the tar) in a helper process while the agent "
        "downloads it, so a scan uses two cores: when the agent may use more than one CPU (affinity "
        "and cgroup quota) and the layers to read add up to `SCAN_LAYER_WORKER_MIN_BYTES`.",
    )
    scan_layer_worker_min_bytes: int = Field(
        256 * 1024**2,
        ge=0,
        description="Compressed bytes of layers to read from which a scan uses the layer worker: below, "
        "its process start costs more than it saves (bench/RESULTS.md).",
    )
    layer_cache_max_bytes: int = Field(
        512 * 1024**2,
        ge=0,
        description="Size bound of the per-layer analysis cache under `STATE_DIR` (least recently used "
        "entries go first; 0 turns the cache off).",
    )
    broker_client_url: str | None = Field(
        None, description="Base URL of the broker client; callbacks are posted only under it."
    )
    state_dir: Path = Field(
        default_factory=_default_state_dir,
        description="Scan queue, callback outbox and layer cache (default `~/.local/state/registry-agent`).",
    )
    scan_dispatch: Literal["local", "pubsub"] = Field(
        "local",
        description="Where accepted scans go: `local` (SQLite queue under `STATE_DIR`, drained by the "
        "emulator process) or `pubsub` (published to `PUBSUB_TOPIC` for the `scan_event` function).",
    )
    pubsub_topic: str | None = Field(
        None,
        pattern=r"^projects/[^/]+/topics/[^/]+$",
        description="Pub/Sub topic `projects/<project>/topics/<topic>` used when `SCAN_DISPATCH=pubsub`.",
    )
    https_cert: Path | None = Field(None, description="Certificate file: serve HTTPS instead of HTTP.")
    https_key: Path | None = Field(None, description="Private key file for `HTTPS_CERT`.")
    log_level: str = Field(
        "info", description="debug, info, warning or error; lines are JSON objects, one per line."
    )
    agent_api_key: SecretStr | None = Field(
        None,
        description="When set, every route but `/healthcheck` requires this key in `X-Agent-Api-Key` (or "
        "as `Authorization: Bearer <key>`); see docs/security.md.",
    )

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        value = value.lower()
        if value == "warn":
            value = "warning"
        if value not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be debug, info, warning or error")
        return value

    @field_validator("agent_api_key")
    @classmethod
    def _agent_api_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None  # AGENT_API_KEY= (empty) means no key, as an unset variable does
        key = value.get_secret_value().strip()
        # A short key can be guessed online; the message must not repeat the value.
        if len(key) < 16 or any(not c.isprintable() or c.isspace() for c in key):
            raise ValueError("must be at least 16 printable characters without spaces")
        return SecretStr(key)

    @property
    def listen_port(self) -> int:
        return self.snyk_port or self.port or 8081

    @property
    def insecure_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.insecure_registries.split(",") if h.strip())


def load_settings() -> Settings:
    """Read the environment; a bad value is a ``ConfigurationError`` naming the variable."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']).upper()}: {item['msg']}"
            for item in error.errors(include_input=False, include_url=False)
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None


@functools.cache
def get_settings() -> Settings:
    return load_settings()


def configuration_table() -> str:
    """The README's configuration table, generated from the model."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            default = "see meaning"
        elif field.default is None or field.default == "":
            default = "(unset)"
        else:
            default = f"`{str(field.default).lower() if isinstance(field.default, bool) else field.default}`"
        rows.append(f"| `{name.upper()}` | {default} | {field.description} |")
    return "\n".join(rows)

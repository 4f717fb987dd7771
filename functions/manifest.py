"""The function manifest (``functions/functions.json``): the one list of functions and their routes.

The emulator router mounts each HTTP function at its routes; the Terraform deployment creates one
function per entry. Routes are written like the broker's accept rules, so the table can be checked
against ``container-registry-agent.accept.json`` line by line.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MANIFEST_PATH = Path(__file__).resolve().parent / "functions.json"
PROJECT_ROOT = MANIFEST_PATH.parent.parent

# functions-framework signature type of each trigger.
SIGNATURE_TYPES = {"http": "http", "pubsub": "cloudevent"}


class Route(BaseModel):
    model_config = ConfigDict(frozen=True)

    method: str
    pattern: str  # broker glob: "*" matches any characters, "/" included

    @classmethod
    def parse(cls, text: str) -> Route:
        method, _, pattern = text.strip().partition(" ")
        if not method.isalpha() or not pattern.startswith("/"):
            raise ValueError("a route is 'METHOD /path'")
        return cls(method=method.upper(), pattern=pattern.strip())

    @functools.cached_property
    def _regex(self) -> re.Pattern[str]:
        # A trailing slash is tolerated, as the functions' own routing does (strict_slashes=False).
        return re.compile(re.escape(self.pattern.rstrip("/")).replace(r"\*", ".*") + "/?")

    def matches(self, path: str) -> bool:
        return self._regex.fullmatch(path) is not None

    def __str__(self) -> str:
        return f"{self.method} {self.pattern}"


class FunctionSpec(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")  # deployable name (Cloud Functions allows no "_")
    entry_point: str = Field(alias="entryPoint", pattern=r"^[a-z_][a-z0-9_]*$")
    module: str
    trigger: Literal["http", "pubsub"]
    topic_setting: str | None = Field(None, alias="topicSetting")
    routes: tuple[Route, ...] = ()

    @field_validator("routes", mode="before")
    @classmethod
    def _parse_routes(cls, value: list[str]) -> tuple[Route, ...]:
        return tuple(Route.parse(item) if isinstance(item, str) else item for item in value)

    @property
    def signature_type(self) -> str:
        return SIGNATURE_TYPES[self.trigger]


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    functions: tuple[FunctionSpec, ...]

    @property
    def source_path(self) -> Path:
        return PROJECT_ROOT / self.source

    @property
    def http_functions(self) -> tuple[FunctionSpec, ...]:
        return tuple(f for f in self.functions if f.trigger == "http")

    def route_table(self) -> list[tuple[Route, FunctionSpec]]:
        """Every (route, function) in manifest order, which is also matching order."""
        return [(route, spec) for spec in self.http_functions for route in spec.routes]


@functools.cache
def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    return Manifest.model_validate_json(path.read_text(encoding="utf-8"))

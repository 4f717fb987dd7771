"""The scan result Snyk's backend accepts from a container scan: ``{"scanResults": [...]}``.

Shaped after snyk-docker-plugin 9.20.2 (``dist/response-builder.js``): the OS result comes first and
its facts keep the plugin's order; then one result per application. Where the plugin and this agent
part ways, it is on purpose:

* **Environment values are withheld by default.** ``containerConfig.env`` keeps each ``NAME=`` but
  replaces the value with ``***``: image environments routinely carry tokens and passwords, and this
  agent exists so that secrets stay inside the customer's network. ``include_env_values=True`` sends
  them as the plugin does. Either way the plugin's size caps apply (:mod:`fact_limits`).
* No ``pluginVersion`` fact: this is not the plugin, and the backend already accepts results from
  plugin versions that predate the fact.
* Inventory warnings travel in ``pluginWarnings.scanWarnings`` next to the plugin's own keys.
* Maven results carry ``jarFingerprints`` (coordinates, or a SHA-1 when there are none), not a
  depGraph: it is the only form the plugin sends Java results in, so the one the backend is known to
  resolve.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any

from shared.scan.model import Inventory, OSRelease, Package
from shared.scan.output.dependencies import resolve_depends
from shared.scan.output.depgraph import GraphPackage, build_dep_graph
from shared.scan.output.fact_limits import truncate_facts
from shared.scan.output.image_info import ImageInfo
from shared.scan.output.names import native_name
from shared.scan.output.purl import has_distinct_source, package_purl

ROOT_PREFIX = "docker-image|"
REDACTED = "***"

# Snyk's project types per ecosystem (identity.type and depGraph.pkgManager.name).
APP_IDENTITY = {
    "npm": "npm",
    "pypi": "pip",
    "maven": "maven",
    "golang": "gomodules",
    "nuget": "nuget",
    "composer": "composer",
    "cargo": "cargo",
    "gem": "rubygems",
}
# Lockfiles that make Snyk name the project after a different tool of the same ecosystem.
LOCKFILE_IDENTITY = {
    "yarn.lock": "yarn",
    "pnpm-lock.yaml": "pnpm",
    "poetry.lock": "poetry",
}

# Validation the plugin applies before it sends ociDistributionMetadata (oci-distribution-metadata.js,
# regexes from the OCI distribution and image specs); metadata that fails is left out, not sent broken.
_REPOSITORY = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")


def repository_alias(os_release: OSRelease) -> str:
    """``debian:10``, ``alpine:3.12.0``: the plugin's ``<os name>:<os version>``."""
    name = os_release.id or "unknown"
    if os_release.version_id:
        return f"{name}:{os_release.version_id}"
    # The plugin gives an undetected OS version "0.0" and reads a missing VERSION_ID as "unstable".
    return f"{name}:{'0.0' if name in ('unknown', 'scratch') else 'unstable'}"


def os_package_name(pkg: Package, manager: str | None) -> str:
    """``source/binary`` as the plugin names OS packages (``audit/libaudit1``, ``musl/musl``, ``bash``).

    dpkg records a source only when it differs from the binary (name or version), apk always records
    its origin, and the plugin ignores the rpm source for naming.
    """
    if manager == "deb" and has_distinct_source(pkg):
        return f"{pkg.source_name}/{pkg.name}"
    if manager == "apk" and pkg.source_name:
        return f"{pkg.source_name}/{pkg.name}"
    return pkg.name


def _os_dep_graph(inventory: Inventory, image: ImageInfo) -> dict[str, Any]:
    manager = inventory.os_package_manager
    packages = inventory.os_packages
    graph_packages = [
        GraphPackage(
            name=os_package_name(pkg, manager),
            version=pkg.version,
            purl=package_purl(pkg, inventory.os_release, "snyk"),
        )
        for pkg in packages
    ]
    # rpm headers name requirements by capability, not package, so the plugin sends rpm flat.
    edges = resolve_depends(packages) if manager in ("deb", "apk") else [[] for _ in packages]
    return build_dep_graph(
        {"name": manager or "linux", "repositories": [{"alias": repository_alias(inventory.os_release)}]},
        GraphPackage(name=ROOT_PREFIX + image.name, version=image.tag or ""),
        graph_packages,
        edges,
    )


def _keys(value: Any) -> list[str] | None:
    # ExposedPorts and Volumes are objects keyed by port or path; the fact wants the keys.
    return [str(k) for k in value] if isinstance(value, Mapping) else None


def _env(entries: Any, include_values: bool) -> Any:
    if not isinstance(entries, list) or include_values:
        return entries
    redacted = []
    for entry in entries:
        name, sep, _value = str(entry).partition("=")
        redacted.append(f"{name}={REDACTED}" if sep else name)
    return redacted


def _container_config(config: Mapping[str, Any], include_env_values: bool) -> dict[str, Any]:
    # Only keys present in the image config appear, as in the plugin (null stays null).
    fields = {
        "User": ("user", lambda v: v),
        "ExposedPorts": ("exposedPorts", _keys),
        "Env": ("env", lambda v: _env(v, include_env_values)),
        "Entrypoint": ("entrypoint", lambda v: v),
        "Cmd": ("cmd", lambda v: v),
        "Volumes": ("volumes", _keys),
        "WorkingDir": ("workingDir", lambda v: v),
        "StopSignal": ("stopSignal", lambda v: v),
        "ArgsEscaped": ("argsEscaped", lambda v: v),
    }
    return {out: convert(config[key]) for key, (out, convert) in fields.items() if key in config}


def _history(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    keys = {
        "created": "created",
        "author": "author",
        "created_by": "createdBy",
        "comment": "comment",
        "empty_layer": "emptyLayer",
    }
    return [{out: entry[key] for key, out in keys.items() if key in entry} for entry in entries]


def oci_distribution_metadata(image: ImageInfo) -> dict[str, str] | None:
    if not (image.registry_host and image.repository and image.manifest_digest):
        return None
    if len(image.registry_host.encode()) > 255 or len(image.repository.encode()) > 2048:
        return None
    if not _REPOSITORY.match(image.repository) or not _DIGEST.match(image.manifest_digest):
        return None
    data = {
        "registryHost": image.registry_host,
        "repository": image.repository,
        "manifestDigest": image.manifest_digest,
    }
    if image.index_digest:
        if not _DIGEST.match(image.index_digest):
            return None
        data["indexDigest"] = image.index_digest
    if image.tag:
        if not _TAG.match(image.tag):
            return None
        data["imageTag"] = image.tag
    return data


def _image_identity_facts(image: ImageInfo) -> list[dict[str, Any]]:
    """The facts every result repeats so each can be matched to the image on its own."""
    facts: list[dict[str, Any]] = []
    if image.config_digest:
        facts.append({"type": "imageId", "data": image.config_digest})
    if image.names:
        facts.append({"type": "imageNames", "data": {"names": image.names}})
    oci = oci_distribution_metadata(image)
    if oci:
        facts.append({"type": "ociDistributionMetadata", "data": oci})
    return facts


def _os_facts(inventory: Inventory, image: ImageInfo, include_env_values: bool) -> list[dict[str, Any]]:
    facts: list[dict[str, Any]] = [{"type": "depGraph", "data": _os_dep_graph(inventory, image)}]
    if image.config_digest:
        facts.append({"type": "imageId", "data": image.config_digest})
    if image.layer_digests:
        facts.append({"type": "imageLayers", "data": list(image.layer_digests)})
    if isinstance(image.container_config.get("Labels"), Mapping):
        facts.append({"type": "imageLabels", "data": image.labels})
    if image.container_config:
        facts.append(
            {"type": "containerConfig", "data": _container_config(image.container_config, include_env_values)}
        )
    if image.history:
        facts.append({"type": "history", "data": _history(image.history)})
    if image.created:
        facts.append({"type": "imageCreationTime", "data": image.created})
    if image.diff_ids:
        facts.append({"type": "rootFs", "data": image.diff_ids})
    if inventory.os_release.pretty_name:
        facts.append({"type": "imageOsReleasePrettyName", "data": inventory.os_release.pretty_name})
    if image.names:
        facts.append({"type": "imageNames", "data": {"names": image.names}})
    oci = oci_distribution_metadata(image)
    if oci:
        facts.append({"type": "ociDistributionMetadata", "data": oci})
    if image.platform_string:
        facts.append({"type": "platform", "data": image.platform_string})

    facts, truncated = truncate_facts(facts)
    warnings: dict[str, Any] = {}
    if truncated:
        warnings["truncatedFacts"] = truncated
    if inventory.warnings:
        warnings["scanWarnings"] = list(inventory.warnings)
    if warnings:
        facts.append({"type": "pluginWarnings", "data": warnings})
    return facts


def app_identity_type(ecosystem: str, target_file: str) -> str:
    return LOCKFILE_IDENTITY.get(posixpath.basename(target_file)) or APP_IDENTITY.get(ecosystem, ecosystem)


def _jar_fingerprints(image: ImageInfo, target_file: str, packages: Sequence[Package]) -> dict[str, Any]:
    fingerprints = []
    for pkg in packages:
        group, _, artifact = native_name(pkg).rpartition(":")
        sha1 = pkg.metadata.get("sha1")
        entry: dict[str, Any] = {"location": pkg.location or target_file}
        # The plugin sends coordinates when it has them and the jar's SHA-1 only when it has not.
        entry["digest"] = sha1 if not group and isinstance(sha1, str) else None
        if group:
            entry["groupId"] = group
        if artifact:
            entry["artifactId"] = artifact
        if pkg.version:
            entry["version"] = pkg.version
        entry["dependencies"] = []
        fingerprints.append(entry)
    return {"fingerprints": fingerprints, "origin": image.reference, "path": target_file}


def _app_result(
    image: ImageInfo, ecosystem: str, target_file: str, packages: Sequence[Package]
) -> dict[str, Any]:
    identity_type = app_identity_type(ecosystem, target_file)
    facts: list[dict[str, Any]]
    if ecosystem == "maven":
        facts = [{"type": "jarFingerprints", "data": _jar_fingerprints(image, target_file, packages)}]
    else:
        graph = build_dep_graph(
            {"name": identity_type},
            # Like the plugin's pip, Go and Ruby results, the project is named after the file it came from.
            GraphPackage(name=target_file, version=""),
            [GraphPackage(native_name(p), p.version, package_purl(p)) for p in packages],
            resolve_depends(packages),
        )
        facts = [
            {"type": "depGraph", "data": graph},
            {"type": "testedFiles", "data": [posixpath.basename(target_file)]},
        ]
    facts += _image_identity_facts(image)
    return {
        "facts": facts,
        "identity": {"type": identity_type, "targetFile": target_file},
        "target": {"image": ROOT_PREFIX + image.name},
    }


def render_snyk(
    inventory: Inventory, image: ImageInfo, *, include_env_values: bool = False
) -> dict[str, Any]:
    identity: dict[str, Any] = {"type": inventory.os_package_manager or "linux"}
    if image.platform_string:
        identity["args"] = {"platform": image.platform_string}
    os_result = {
        "facts": _os_facts(inventory, image, include_env_values),
        "target": {"image": ROOT_PREFIX + image.name},
        "identity": identity,
    }
    apps = [
        _app_result(image, ecosystem, target, packages)
        for ecosystem, target, packages in inventory.applications
        if packages
    ]
    return {"scanResults": [os_result, *apps]}

"""Snyk's dependency-graph JSON (``@snyk/dep-graph`` ``DepGraphData``, schema 1.3.0).

The rules it must satisfy are those ``createFromJSON`` checks on receipt: every pkg id is
``name@version`` (version may be empty), ids and node ids are unique, every node's pkg exists, every
pkg has a node, the root has no parent and every node is reachable from it. Each package gets exactly
one node whose id is its pkg id: the graph is a DAG, so the ``|N`` node-id suffixes that the legacy
tree-to-graph conversion produces are never needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.scan.output.dependencies import break_cycles

SCHEMA_VERSION = "1.3.0"
ROOT_NODE_ID = "root-node"


@dataclass(frozen=True)
class GraphPackage:
    name: str
    version: str
    purl: str | None = None


def pkg_id(name: str, version: str) -> str:
    return f"{name}@{version}"


def _info(pkg: GraphPackage) -> dict[str, str]:
    # An absent version is left out, as the JavaScript library serialises ``version: undefined``.
    info = {"name": pkg.name}
    if pkg.version:
        info["version"] = pkg.version
    if pkg.purl:
        info["purl"] = pkg.purl
    return info


def build_dep_graph(
    pkg_manager: Mapping[str, Any],
    root: GraphPackage,
    packages: Sequence[GraphPackage],
    edges: Sequence[Sequence[int]],
) -> dict[str, Any]:
    """``edges[i]`` lists the indexes ``packages[i]`` depends on; duplicates of one id are merged."""
    root_id = pkg_id(root.name, root.version)
    ids: list[str] = []
    infos: dict[str, GraphPackage] = {}
    adjacency: dict[str, list[str]] = {}
    index_ids = [pkg_id(p.name, p.version) for p in packages]
    for index, pkg in enumerate(packages):
        this = index_ids[index]
        if this == root_id:
            continue  # cannot be told apart from the image itself
        if this not in infos:
            ids.append(this)
            infos[this] = pkg
            adjacency[this] = []
        for target in edges[index] if index < len(edges) else ():
            target_id = index_ids[target]
            if target_id not in (this, root_id) and target_id not in adjacency[this]:
                adjacency[this].append(target_id)

    roots, kept = break_cycles(ids, adjacency)
    nodes = [{"nodeId": ROOT_NODE_ID, "pkgId": root_id, "deps": [{"nodeId": r} for r in roots]}]
    nodes += [{"nodeId": i, "pkgId": i, "deps": [{"nodeId": t} for t in kept[i]]} for i in ids]
    return {
        "schemaVersion": SCHEMA_VERSION,
        "pkgManager": dict(pkg_manager),
        "pkgs": [{"id": root_id, "info": _info(root)}] + [{"id": i, "info": _info(infos[i])} for i in ids],
        "graph": {"rootNodeId": ROOT_NODE_ID, "nodes": nodes},
    }

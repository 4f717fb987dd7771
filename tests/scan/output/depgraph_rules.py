"""What Snyk's backend checks on a depGraph before accepting it, as an independent oracle.

``check_dep_graph`` restates the checks of ``@snyk/dep-graph`` ``createFromJSON`` (npm 2.16.11,
``dist/core/create-from-json.js`` and ``validate-graph.js``) and adds acyclicity, tested with the
standard library's ``graphlib`` rather than our own cycle breaker. When the real JavaScript library is
installed (``npm install @snyk/dep-graph`` in the project root, or its folder in
``SNYK_DEP_GRAPH_MODULE``), ``load_with_snyk_library`` feeds the graph to it as well.
"""

from __future__ import annotations

import graphlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
_SEMVER_1 = re.compile(r"^1\.\d+\.\d+$")


def check_dep_graph(data: dict[str, Any]) -> None:
    assert _SEMVER_1.match(data["schemaVersion"]), "schemaVersion not in ^1.0.0"
    assert data["pkgManager"]["name"], ".pkgManager.name is missing"

    pkgs: dict[str, dict[str, Any]] = {}
    for pkg in data["pkgs"]:
        assert pkg["id"] not in pkgs, f"more than one pkg with id {pkg['id']}"
        info = pkg["info"]
        assert info["name"], "a pkg has no name"
        assert pkg["id"] == f"{info['name']}@{info.get('version') or ''}", "pkg ids should be name@version"
        pkgs[pkg["id"]] = info

    nodes: dict[str, dict[str, Any]] = {}
    for node in data["graph"]["nodes"]:
        assert node["nodeId"] not in nodes, f"more than one node with id {node['nodeId']}"
        assert node["pkgId"] in pkgs, f"node {node['nodeId']} belongs to a missing pkg"
        nodes[node["nodeId"]] = node

    root = data["graph"]["rootNodeId"]
    assert root in nodes, "root node missing"
    edges = {n: [d["nodeId"] for d in node["deps"]] for n, node in nodes.items()}
    for targets in edges.values():
        assert all(t in nodes for t in targets), "an edge points at a missing node"
    assert all(root not in targets for targets in edges.values()), "root has a parent"

    reachable, stack = {root}, [root]
    while stack:
        for target in edges[stack.pop()]:
            if target not in reachable:
                reachable.add(target)
                stack.append(target)
    assert reachable == set(nodes), "not all nodes are reachable from the root"
    assert {node["pkgId"] for node in nodes.values()} == set(pkgs), "not all pkgs have instance nodes"

    # Raises graphlib.CycleError on a cycle.
    list(graphlib.TopologicalSorter({n: set(t) for n, t in edges.items()}).static_order())


def snyk_dep_graph_module() -> Path | None:
    configured = os.environ.get("SNYK_DEP_GRAPH_MODULE")
    candidate = Path(configured) if configured else ROOT / "node_modules" / "@snyk" / "dep-graph"
    return candidate if (candidate / "package.json").exists() and shutil.which("node") else None


_LOADER = """
const {createFromJSON} = require(process.argv[1]);
const graph = createFromJSON(JSON.parse(require("fs").readFileSync(0, "utf8")));
process.stdout.write(JSON.stringify({
  root: graph.rootPkg, pkgs: graph.getPkgs().length, cyclic: graph.hasCycles(),
}));
"""


def load_with_snyk_library(module: Path, data: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, "-e", _LOADER, str(module)],
        input=json.dumps(data),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result

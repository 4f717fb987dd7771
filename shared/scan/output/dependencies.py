"""Dependency edges between the packages of one ecosystem, and a cycle-free view of them.

``Package.depends`` holds names. A name may match several packages (two versions of one npm package,
a multi-arch deb); the edge then goes to each, which over-states rather than loses a path.
Package databases do contain cycles (dpkg: ``libc6`` <-> ``libgcc-s1``; npm peer loops), and Snyk's
depGraph must be acyclic, so :func:`break_cycles` drops exactly the DFS back edges.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

from shared.scan.model import Package
from shared.scan.output.names import depends_key, match_keys

K = TypeVar("K", bound=Hashable)


def resolve_depends(packages: Sequence[Package]) -> list[list[int]]:
    """``edges[i]`` = indexes of the packages that ``packages[i]`` depends on, in ``depends`` order."""
    by_key: dict[str, list[int]] = {}
    for index, pkg in enumerate(packages):
        for key in match_keys(pkg):
            by_key.setdefault(key, []).append(index)
    edges: list[list[int]] = []
    for index, pkg in enumerate(packages):
        targets: list[int] = []
        for name in pkg.depends:
            for target in by_key.get(depends_key(pkg.type, name), ()):
                if target != index and target not in targets:
                    targets.append(target)
        edges.append(targets)
    return edges


def break_cycles(nodes: Sequence[K], edges: Mapping[K, Sequence[K]]) -> tuple[list[K], dict[K, list[K]]]:
    """Roots and acyclic edges covering every node.

    Roots are the nodes nothing depends on, in ``nodes`` order; a cycle that no root reaches gets its
    first member (in ``nodes`` order) as an extra root, so every node stays reachable. Iterative, so a
    long dependency chain cannot hit Python's recursion limit.
    """
    has_parent = {target for node in nodes for target in edges.get(node, ()) if target != node}
    kept: dict[K, list[K]] = {node: [] for node in nodes}
    on_path: set[K] = set()
    done: set[K] = set()
    roots: list[K] = []

    def visit(start: K) -> None:
        roots.append(start)
        on_path.add(start)
        stack = [(start, iter(edges.get(start, ())))]
        while stack:
            node, pending = stack[-1]
            for target in pending:
                if target in on_path or target not in kept or target in kept[node]:
                    continue  # back edge (would close a cycle), unknown node or duplicate
                kept[node].append(target)
                if target not in done:
                    on_path.add(target)
                    stack.append((target, iter(edges.get(target, ()))))
                    break
            else:
                stack.pop()
                on_path.discard(node)
                done.add(node)

    for node in nodes:
        if node not in has_parent and node not in done:
            visit(node)
    for node in nodes:
        if node not in done:
            visit(node)
    return roots, kept

"""``shared.scan.output.dependencies``: ``depends`` names to edges, and a cycle-free view of them.

Acyclicity is checked with the standard library's ``graphlib`` (an implementation independent of the
one under test); reachability by a plain walk from the roots.
"""

from __future__ import annotations

import graphlib

from shared.scan.model import Package
from shared.scan.output.dependencies import break_cycles, resolve_depends


def pkg(
    name: str, *depends: str, type: str = "deb", version: str = "1", namespace: str | None = None
) -> Package:
    return Package(name=name, version=version, type=type, depends=depends, namespace=namespace)


def assert_acyclic_and_covering(nodes: list[int], roots: list[int], kept: dict[int, list[int]]) -> None:
    list(graphlib.TopologicalSorter({n: set(t) for n, t in kept.items()}).static_order())
    seen, stack = set(roots), list(roots)
    while stack:
        for target in kept[stack.pop()]:
            if target not in seen:
                seen.add(target)
                stack.append(target)
    assert seen == set(nodes)


def test_names_resolve_to_indexes_in_depends_order() -> None:
    packages = [pkg("apt", "libc6", "adduser", "gpgv"), pkg("adduser"), pkg("libc6")]
    # gpgv is not installed: dropped rather than invented.
    assert resolve_depends(packages) == [[2, 1], [], []]


def test_a_name_shared_by_two_packages_reaches_both() -> None:
    packages = [
        pkg("app", "lodash", type="npm"),
        pkg("lodash", version="4", type="npm"),
        pkg("lodash", type="npm"),
    ]
    assert resolve_depends(packages)[0] == [1, 2]


def test_scoped_and_normalised_names_resolve() -> None:
    npm = [pkg("app", "@angular/core", type="npm"), pkg("core", namespace="@angular", type="npm")]
    assert resolve_depends(npm)[0] == [1]
    # PEP 503: "Zope_Interface" and "zope.interface" are one project.
    pypi = [pkg("twisted", "Zope_Interface", type="pypi"), pkg("zope.interface", type="pypi")]
    assert resolve_depends(pypi)[0] == [1]


def test_virtual_names_resolve_to_their_providers() -> None:
    # dpkg: base-files Pre-Depends: awk; mawk Provides: awk.
    mawk = Package(name="mawk", version="1.3.3-17+b3", type="deb", metadata={"provides": ("awk",)})
    assert resolve_depends([pkg("base-files", "awk"), mawk]) == [[1], []]


def test_self_dependency_is_ignored() -> None:
    assert resolve_depends([pkg("a", "a")]) == [[]]


def test_cycle_gets_a_root_and_loses_only_its_closing_edge() -> None:
    # libc6 <-> libgcc-s1 is a real dpkg cycle; nothing else depends on either.
    edges = {0: [1], 1: [0]}
    roots, kept = break_cycles([0, 1], edges)
    assert roots == [0]
    assert kept == {0: [1], 1: []}
    assert_acyclic_and_covering([0, 1], roots, kept)


def test_roots_are_the_packages_nothing_depends_on() -> None:
    # 0 -> 1 -> 2, 3 -> 2, and a cycle 4 <-> 5 hanging under 3.
    edges = {0: [1], 1: [2], 2: [], 3: [2, 4], 4: [5], 5: [4]}
    roots, kept = break_cycles(list(range(6)), edges)
    assert roots == [0, 3]
    assert kept[3] == [2, 4] and kept[4] == [5] and kept[5] == []
    assert_acyclic_and_covering(list(range(6)), roots, kept)


def test_shared_dependency_keeps_all_its_parents() -> None:
    # A diamond is not a cycle: both edges into 3 survive.
    edges = {0: [1, 2], 1: [3], 2: [3], 3: []}
    roots, kept = break_cycles(list(range(4)), edges)
    assert roots == [0] and kept == {0: [1, 2], 1: [3], 2: [3], 3: []}


def test_long_chains_and_big_cycles_do_not_recurse() -> None:
    n = 20_000
    chain = {i: [i + 1] for i in range(n - 1)} | {n - 1: [0]}  # one cycle through everything
    roots, kept = break_cycles(list(range(n)), chain)
    assert roots == [0]
    assert sum(len(t) for t in kept.values()) == n - 1
    assert_acyclic_and_covering(list(range(n)), roots, kept)


def test_dense_random_graph_stays_covering_and_acyclic() -> None:
    import random

    rng = random.Random(7)
    nodes = list(range(300))
    edges = {n: rng.sample(nodes, 6) for n in nodes}
    roots, kept = break_cycles(nodes, edges)
    assert_acyclic_and_covering(nodes, roots, kept)
    # Only edges that exist are kept.
    assert all(set(kept[n]) <= set(edges[n]) for n in nodes)

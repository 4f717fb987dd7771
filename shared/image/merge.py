"""The image's file system as the runtime would build it from the layers (OCI image-spec ``layer.md``).

Layers are applied bottom-up over a tree of paths. For each layer, first its effect on what lies
below it, then its own content:

1. ``<dir>/.wh..wh..opq``: every lower entry under ``<dir>`` goes (wherever the marker sits in the
   tar: same-layer content under ``<dir>`` is added afterwards and survives);
2. ``.wh.<name>``: the lower ``<name>`` goes, with everything under it. Matching is by whole path
   components, so a whiteout of ``/a`` leaves ``/ab`` alone; same-layer files are never hidden by
   the layer's own whiteouts (the spec: whiteouts apply to lower layers only);
3. every path the layer writes replaces the lower entry at that path; a non-directory (file,
   symlink, device) also hides everything that lay under a lower directory of that name, while a
   directory over a directory merges;
4. the layer's extracted files and symlinks are added.

Only what can matter afterwards is kept in the tree: files some cataloger extracted, and symlinks.
Other paths act in step 3 and are then forgotten.

Symlinks and catalogers. A cataloger never sees a symlink's content while the layer streams (it has
none), so the merged view answers for it: when a cataloger wants a symlink's path (asked with the
target's size and mode) and the symlink resolves, inside the image, to a file that the *same*
cataloger extracted, the symlink's path maps to that file's value. ``/etc/os-release`` ->
``../usr/lib/os-release`` therefore works when the cataloger also wants ``/usr/lib/os-release`` -
catalogers must want the usual targets of the links they care about, as Snyk's and Trivy's do.
Resolution follows symlinks at every component, relative targets from the link's directory,
``..`` stopping at the root, at most 40 hops (Linux's limit), so a loop resolves to nothing.
Directory symlinks (``/lib`` -> ``usr/lib``) are followed while resolving, but files are listed
under their stored path only, never again under every alias a directory link creates (that would
report each package twice). Hard links were made into plain files by the layer reader.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from shared.image.layer import DIR, LayerAnalysis
from shared.scan.model import Cataloger, FileRecord

MAX_LINK_HOPS = 40


@dataclass(frozen=True)
class _File:
    layer: int  # index of the layer that wrote it
    size: int
    mode: int
    values: dict[str, Any]  # cataloger name -> extracted value


@dataclass(frozen=True)
class _Link:
    layer: int
    target: str


class _Node:
    __slots__ = ("children", "item")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.item: _File | _Link | None = None


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


class MergedView:
    def __init__(self, layers: Sequence[LayerAnalysis]) -> None:
        self.layers = list(layers)
        self._root = _Node()
        for index, layer in enumerate(self.layers):
            self._apply(index, layer)

    # -- building ------------------------------------------------------------------------------

    def _find(self, path: str) -> _Node | None:
        node: _Node | None = self._root
        for part in _parts(path):
            node = node.children.get(part) if node is not None else None
            if node is None:
                return None
        return node

    def _ensure(self, path: str) -> _Node:
        node = self._root
        for part in _parts(path):
            node = node.children.setdefault(part, _Node())
        return node

    def _remove(self, path: str) -> None:
        parts = _parts(path)
        if not parts:
            self._root = _Node()
            return
        parent = self._find("/" + "/".join(parts[:-1]))
        if parent is not None:
            parent.children.pop(parts[-1], None)

    def _apply(self, index: int, layer: LayerAnalysis) -> None:
        if self._root.children:  # nothing below the first layer to hide
            for directory in layer.opaque_dirs:
                node = self._find(directory)
                if node is not None:
                    node.children = {}
            for hidden in layer.whiteouts:
                self._remove(hidden)
            for path, kind in layer.kinds.items():
                node = self._find(path)
                if node is None:
                    continue
                if kind == DIR:
                    node.item = None  # a directory replaces a lower file or link; lower directories merge
                else:
                    self._remove(path)
        for path, target in layer.symlinks.items():
            self._ensure(path).item = _Link(index, target)
        for path, (size, mode) in layer.files.items():
            values = {name: found[path] for name, found in layer.values.items() if path in found}
            self._ensure(path).item = _File(index, size, mode, values)

    # -- reading -------------------------------------------------------------------------------

    def items(self) -> Iterator[tuple[str, _File | _Link]]:
        stack: list[tuple[str, _Node]] = [("", self._root)]
        while stack:
            prefix, node = stack.pop()
            for name, child in node.children.items():
                path = f"{prefix}/{name}"
                if child.item is not None:
                    yield path, child.item
                stack.append((path, child))

    def paths(self) -> list[str]:
        """Every extracted file and symlink that survived, sorted (for tests and diagnostics)."""
        return sorted(path for path, _ in self.items())

    def resolve(self, path: str) -> str | None:
        """The path after following symlinks inside the image; None for a loop (or > 40 hops)."""
        pending = list(reversed(_parts(path)))
        resolved: list[str] = []
        nodes: list[_Node | None] = []
        hops = 0
        while pending:
            part = pending.pop()
            if part == ".":
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                    nodes.pop()
                continue
            parent = nodes[-1] if nodes else self._root
            node = parent.children.get(part) if parent is not None else None
            if node is not None and isinstance(node.item, _Link):
                hops += 1
                if hops > MAX_LINK_HOPS:
                    return None
                target = node.item.target
                if target.startswith("/"):
                    resolved, nodes = [], []
                pending.extend(reversed(_parts(target)))
                continue
            resolved.append(part)
            nodes.append(node)
        return "/" + "/".join(resolved)

    def files_for(self, cataloger: Cataloger) -> dict[str, FileRecord]:
        """What ``cataloger`` extracted and survived the merge, by path, symlinked paths included."""
        name = cataloger.name
        records: dict[str, FileRecord] = {}
        links: list[str] = []
        for path, item in self.items():
            if isinstance(item, _File):
                if name in item.values:
                    records[path] = self._record(path, item, name)
            else:
                links.append(path)
        for path in links:
            final = self.resolve(path)
            node = self._find(final) if final is not None else None
            target = node.item if node is not None else None
            if (
                isinstance(target, _File)
                and name in target.values
                and cataloger.wants(path, target.size, target.mode)
            ):
                records[path] = self._record(path, target, name)
        return dict(sorted(records.items()))

    def _record(self, path: str, item: _File, name: str) -> FileRecord:
        layer = self.layers[item.layer]
        return FileRecord(
            path=path, value=item.values[name], layer_digest=layer.digest, layer_diff_id=layer.diff_id
        )

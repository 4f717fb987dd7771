"""Which files might be compiled programs worth sniffing for embedded build metadata (Go, Rust).

``wants()`` runs for every file in every layer, so the rule looks only at the path, size and mode:

* any execute bit (Trivy's rule), or
* no extension, outside the top-level directories snyk-docker-plugin skips (``boot``, ``dev``,
  ``etc``, ``home``, ``media``, ``mnt``, ``proc``, ``root``, ``run``, ``sbin``, ``sys``, ``tmp``,
  ``var``) and outside ``/usr/share`` (documentation, locales, zoneinfo: never programs), which
  catches binaries copied into an image without their mode;

and never shared libraries or scripts by name (``*.so*``, ``*.sh``, ``*.py``...), which often carry
an execute bit but are not the Go or Rust executables these catalogers read. Sizes are bounded
below (smaller than an ELF header) and above (the whole file is held in memory while sniffed).
``extract()`` must still check the ELF magic first: most candidates are scripts or data.
"""

from __future__ import annotations

import re
from typing import Any

from shared.scan.catalogers.elf import ELF_MAGIC, is_elf

MIN_SIZE = 64
MAX_SIZE = 256 * 1024 * 1024
SKIPPED_TOP_DIRS = frozenset(
    {"boot", "dev", "etc", "home", "media", "mnt", "proc", "root", "run", "sbin", "sys", "tmp", "var"}
)
_NOT_PROGRAMS = re.compile(
    r"(\.so(\.[0-9.]+)?|\.a|\.o|\.ko|\.sh|\.bash|\.py|\.pyc|\.pl|\.pm|\.rb|\.js|\.txt|\.md|\.json|\.xml"
    r"|\.html|\.conf|\.cfg|\.ini|\.jar|\.class|\.gz|\.png|\.svg)$",
    re.IGNORECASE,
)


def is_candidate(path: str, size: int, mode: int) -> bool:
    if not MIN_SIZE <= size <= MAX_SIZE:
        return False
    name = path.rsplit("/", 1)[-1]
    if _NOT_PROGRAMS.search(name):
        return False
    if mode & 0o111:
        return True
    if "." in name:
        return False
    top = path.split("/", 2)[1] if path.count("/") >= 2 else ""
    return top not in SKIPPED_TOP_DIRS and not path.startswith("/usr/share/")


class ExecutableCataloger:
    """The half the Go and Rust catalogers share: which files to read, and only ELF files go on to
    ``read_program``, which returns the embedded metadata or None."""

    # extract() returns None for anything else: the layer reader need not read such files.
    magic = ELF_MAGIC

    def wants(self, path: str, size: int, mode: int) -> bool:
        return is_candidate(path, size, mode)

    def extract(self, path: str, data: bytes) -> Any:
        return self.read_program(data) if is_elf(data) else None

    def read_program(self, data: bytes) -> Any:
        raise NotImplementedError

"""Catalogers: what to read from an image's files and how to turn it into packages.

Each cataloger implements `shared.scan.model.Cataloger` (``wants`` / ``extract`` / ``catalog``) and
lives in its own module. How the engine drives them:

1. For every regular file of every layer it asks each cataloger ``wants(path, size, mode)``; the
   answer depends on the path, size and mode only, so it is cheap.
2. For wanted files it calls ``extract(path, data)`` once per layer; the value is JSON-serialisable,
   deterministic and small (parsed records, never raw bytes), so it can be cached by layer digest.
   ``extract`` returns None for files that turn out not to be what the path suggested (a script
   where a Go binary might have been) and raises `CatalogerError` for a file that is what it claims
   but is damaged; the engine should turn that into a warning for the file.
3. After the layer merge, ``os_release = detect_os(files_of("os-release"))`` (see `osrelease`),
   then every cataloger's ``catalog(files_of(name), os_release)``, where ``files_of(name)`` maps
   each surviving path that cataloger wanted to its `FileRecord`.

Naming conventions of the returned packages: ``version`` is raw (dpkg ``1:2.8.4-3``, rpm
``epoch:version-release``); names are split purl-style where the ecosystem has a namespace (npm
``@scope`` + ``name``, Maven groupId + artifactId, Go module prefix + last segment, Composer vendor +
project), so the ecosystem's own full name is ``namespace/name`` (``namespace:name`` for Maven).
``depends`` holds full ecosystem names of installed packages of the same cataloger (OS catalogers
resolve alternatives and virtual packages themselves).

Caches: ``extract`` values are cached per layer; the layer cache keys them by each cataloger's name,
class and a hash of this package's source (`shared.image.cache.reader_key`), so changing a cataloger
invalidates its cached values without a manual version number.
"""

from __future__ import annotations

from shared.scan.catalogers.apk import ApkCataloger
from shared.scan.catalogers.chisel import ChiselCataloger
from shared.scan.catalogers.dotnet import DotnetDepsCataloger
from shared.scan.catalogers.dpkg import DpkgCataloger
from shared.scan.catalogers.errors import CatalogerError
from shared.scan.catalogers.golang import GoBinaryCataloger
from shared.scan.catalogers.java import JavaArchiveCataloger
from shared.scan.catalogers.node import NodeCataloger
from shared.scan.catalogers.osrelease import NAME as OS_RELEASE
from shared.scan.catalogers.osrelease import OSReleaseCataloger, detect_os
from shared.scan.catalogers.php import ComposerInstalledCataloger
from shared.scan.catalogers.python import PythonCataloger
from shared.scan.catalogers.rpm import RpmCataloger
from shared.scan.catalogers.ruby import GemspecCataloger
from shared.scan.catalogers.rust import RustBinaryCataloger
from shared.scan.model import Cataloger

__all__ = [
    "OS_RELEASE",
    "CatalogerError",
    "default_catalogers",
    "detect_os",
    "os_catalogers",
]


def os_catalogers() -> list[Cataloger]:
    """The release-file cataloger first, then the OS package databases (ecosystem ``"os"``)."""
    return [OSReleaseCataloger(), DpkgCataloger(), ApkCataloger(), RpmCataloger(), ChiselCataloger()]


def default_catalogers(
    *, include_system_jars: bool = False, java_max_depth: int | None = None
) -> list[Cataloger]:
    """Every cataloger, OS ones first. Options mirror snyk-docker-plugin's flags of the same meaning
    (``include-system-jars``; ``nested-jars-depth`` bounds nested Java archives)."""
    java = JavaArchiveCataloger(include_system_jars=include_system_jars)
    if java_max_depth is not None:
        java.max_depth = java_max_depth
    return [
        *os_catalogers(),
        PythonCataloger(),
        NodeCataloger(),
        java,
        GoBinaryCataloger(),
        RustBinaryCataloger(),
        DotnetDepsCataloger(),
        ComposerInstalledCataloger(),
        GemspecCataloger(),
    ]

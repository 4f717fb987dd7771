"""`LayerWorker`: `read_layer` in a helper process, fed through shared memory.

The in-process `read_layer` is the oracle here: every layer of every team fixture must give the same
analysis either way, and every hostile or broken layer the same refusal. On top, what only a second
process can get wrong: a refusal that stops the stream early, a child that dies mid-layer, a child
left running, and what the child can see of the agent (nothing of its environment).
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared import errors
from shared.image import open_source
from shared.image.layer import LayerLimits, read_layer
from shared.image.layer_worker import SLOT_SIZE, LayerWorker
from shared.scan.catalogers import default_catalogers
from tests.harness.procs import is_alive
from tests.scan.layers import Everything, gz, sha256, tar_bytes
from tests.scan.test_layer import _ManyEntries, _zero_file_tar_gz

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "images"
ARCHIVES = sorted(FIXTURES.glob("*.tar"))


def _images(archive: Path) -> list[str]:
    """One source string per image in a team fixture archive."""
    if archive.name.endswith(".oci.tar"):
        return [f"oci-archive:{archive}"]
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
    if len(manifest) == 1:
        return [f"docker-archive:{archive}"]
    return [f"docker-archive:{archive}:@{index}" for index in range(len(manifest))]


IMAGES = [spec for archive in ARCHIVES for spec in _images(archive)]


@pytest.mark.parametrize("spec", IMAGES, ids=[s.rsplit("/", 1)[-1] for s in IMAGES])
def test_every_fixture_layer_reads_the_same_through_the_worker(spec: str) -> None:
    catalogers = default_catalogers()
    with open_source(spec) as source, LayerWorker(catalogers, LayerLimits()) as worker:
        for layer, diff_id in zip(source.info.layers, source.info.diff_ids, strict=True):
            with source.open_layer(layer) as chunks:
                here = read_layer(chunks, catalogers, LayerLimits(), digest=layer.digest, diff_id=diff_id)
            with source.open_layer(layer) as chunks:
                there = worker(chunks, digest=layer.digest, diff_id=diff_id)
            assert there.to_dict() == here.to_dict()
        assert worker.pid is not None  # one child served every layer of the image


def test_large_layers_in_small_chunks_cross_the_ring_intact() -> None:
    files = [("file", f"data/{i}", os.urandom(50_000).hex()) for i in range(120)]  # ~7 MB: the ring wraps
    blob = gz(tar_bytes(files))
    pieces = [blob[i : i + 7_919] for i in range(0, len(blob), 7_919)]  # chunks that straddle slots
    here = read_layer(iter(pieces), [Everything()], LayerLimits(), digest=sha256(blob))
    with LayerWorker([Everything()], LayerLimits()) as worker:
        there = worker(iter(pieces), digest=sha256(blob))
        again = worker(iter([blob]), digest=sha256(blob))  # the same child, the next layer
    assert there.to_dict() == here.to_dict() == again.to_dict()
    assert len(blob) > 5 * SLOT_SIZE


def _refusals() -> list[tuple[str, Callable[[], Iterator[bytes]], LayerLimits, type[errors.AgentError]]]:
    corrupted = bytearray(gz(tar_bytes([("file", "a", os.urandom(20_000).hex())])))
    corrupted[len(corrupted) // 2] ^= 0xFF
    truncated = gz(tar_bytes([("file", "a", "x" * 50_000), ("file", "b", "y")]))
    return [
        (
            "traversal",
            lambda: iter([gz(tar_bytes([("file", "../../etc/evil", "x")]))]),
            LayerLimits(),
            errors.HostileLayer,
        ),
        (
            "gzip bomb",
            lambda: iter([_zero_file_tar_gz(64 << 20)]),
            LayerLimits(max_layer_bytes=16 << 20),
            errors.LayerTooLarge,
        ),
        (
            "a million entries",
            lambda: iter(_ManyEntries(1_000_000)),
            LayerLimits(max_entries=20_000),
            errors.LayerTooLarge,
        ),
        ("corrupted gzip", lambda: iter([bytes(corrupted)]), LayerLimits(), errors.CorruptLayer),
        (
            "truncated gzip",
            lambda: iter([truncated[: len(truncated) // 2]]),
            LayerLimits(),
            errors.CorruptLayer,
        ),
        ("not a tar", lambda: iter([gz(b"plain text, not a tar " * 40)]), LayerLimits(), errors.CorruptLayer),
    ]


@pytest.mark.parametrize(
    ("name", "chunks", "limits", "refusal"), _refusals(), ids=[r[0] for r in _refusals()]
)
def test_refusals_are_the_same_through_the_worker(
    name: str, chunks: Callable[[], Iterator[bytes]], limits: LayerLimits, refusal: type[errors.AgentError]
) -> None:
    with pytest.raises(refusal) as here:
        read_layer(chunks(), [Everything()], limits, digest="sha256:" + "0" * 64)
    with LayerWorker([Everything()], limits) as worker:
        with pytest.raises(refusal) as there:
            worker(chunks(), digest="sha256:" + "0" * 64)
        assert there.value.code == here.value.code
        assert worker.pid is None  # the refusing child is gone; the next layer gets a new one
        fine = gz(tar_bytes([("file", "ok", "fine")]))
        assert sorted(worker(iter([fine]), digest=sha256(fine)).values["everything"]) == ["/ok"]


def test_a_diff_id_mismatch_is_found_by_the_worker() -> None:
    blob = gz(tar_bytes([("file", "a", "x")]))
    with (
        LayerWorker([Everything()], LayerLimits()) as worker,
        pytest.raises(errors.DigestMismatch, match="diff_id"),
    ):
        worker(iter([blob]), digest=sha256(blob), diff_id=sha256(b"something else"))


def test_an_early_refusal_stops_the_download() -> None:
    # Incompressible, and much larger than the ring (8 MiB), so most of it is still to come.
    noise = [("file", f"f{i}", os.urandom(1 << 20).decode("latin-1")) for i in range(24)]
    hostile = gzip.compress(tar_bytes([("file", "../escape", "x"), *noise]), compresslevel=1)
    pieces = [hostile[i : i + 65_536] for i in range(0, len(hostile), 65_536)]
    taken = []

    def counted() -> Iterator[bytes]:
        for piece in pieces:
            taken.append(piece)
            yield piece

    with LayerWorker([Everything()], LayerLimits()) as worker, pytest.raises(errors.HostileLayer):
        worker(counted(), digest=sha256(hostile))
    assert len(taken) < len(pieces) // 2


def test_a_source_failure_mid_layer_kills_the_child() -> None:
    blob = gz(tar_bytes([("file", f"f{i}", os.urandom(4000).hex()) for i in range(200)]))
    pids = []

    def failing() -> Iterator[bytes]:
        yield blob[: len(blob) // 2]
        pids.append(worker.pid)
        raise errors.DigestMismatch("the registry sent other bytes")

    with LayerWorker([Everything()], LayerLimits()) as worker, pytest.raises(errors.DigestMismatch):
        worker(failing(), digest=sha256(blob))
    assert pids[0] is not None and not is_alive(pids[0])


def test_a_killed_child_is_a_clear_error_not_a_hang() -> None:
    blob = gz(tar_bytes([("file", f"f{i}", os.urandom(4000).hex()) for i in range(2000)]))
    pieces = [blob[i : i + 65_536] for i in range(0, len(blob), 65_536)]

    def killing() -> Iterator[bytes]:
        for index, piece in enumerate(pieces):
            if index == 2:
                assert worker.pid is not None
                os.kill(worker.pid, signal.SIGKILL)
            yield piece

    with LayerWorker([Everything()], LayerLimits()) as worker:
        with pytest.raises(errors.AgentError, match="layer worker process ended"):
            worker(killing(), digest=sha256(blob))
        assert worker.pid is None


def test_the_child_sees_nothing_of_the_agents_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_PASSWORD_FOR_THIS_TEST", "s3cret-value")
    blob = gz(tar_bytes([("file", "a", "x")]))
    with LayerWorker([Everything()], LayerLimits()) as worker:
        worker(iter([blob]), digest=sha256(blob))
        assert worker.pid is not None
        environment = Path(f"/proc/{worker.pid}/environ").read_bytes()
        command_line = Path(f"/proc/{worker.pid}/cmdline").read_bytes()
        pid = worker.pid
    assert b"s3cret-value" not in environment + command_line
    assert {entry.split(b"=")[0] for entry in environment.split(b"\0") if entry} <= {b"TMPDIR"}
    assert not is_alive(pid)  # closed: ended at the end of its input, and reaped


def test_inflate_errors_in_the_child_name_the_layer() -> None:
    blob = bytearray(gz(tar_bytes([("file", "a", os.urandom(20_000).hex())])))
    blob[len(blob) // 2] ^= 0xFF
    with LayerWorker([Everything()], LayerLimits()) as worker, pytest.raises(errors.CorruptLayer) as raised:
        worker(iter([bytes(blob)]), digest=sha256(bytes(blob)))
    assert sha256(bytes(blob)) in raised.value.message


def test_without_memfd_the_ring_is_an_unlinked_file(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(name: str, flags: int = 0) -> int:
        raise PermissionError("memfd_create refused by the sandbox")

    monkeypatch.setattr(os, "memfd_create", refused)
    blob = gz(tar_bytes([("file", "a", "x" * 3000)]))
    with LayerWorker([Everything()], LayerLimits()) as worker:
        there = worker(iter([blob]), digest=sha256(blob))
    assert (
        there.to_dict()
        == read_layer(iter([blob]), [Everything()], LayerLimits(), digest=sha256(blob)).to_dict()
    )

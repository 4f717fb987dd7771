"""The per-layer analysis cache on a real directory: faithful round trips, LRU bound, atomic writes
under concurrent scans, unreadable entries, and a key that follows the catalogers' code."""

from __future__ import annotations

import gzip
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from shared.image.cache import LayerCache, decode, encode, reader_key
from shared.image.layer import LayerAnalysis, LayerLimits
from tests.scan.layers import Everything, Wanting, analyse, gz, tar_bytes


def _analysis(digest_char: str, padding: int = 0) -> LayerAnalysis:
    blob = gz(tar_bytes([("file", "etc/os-release", "ID=x\n"), ("symlink", "lib", "usr/lib"), ("dir", "d")]))
    analysis = analyse([blob], [Everything()])[0]
    analysis.digest = "sha256:" + digest_char * 64
    analysis.values["everything"]["/pad"] = os.urandom(padding).hex()  # incompressible bulk
    return analysis


def test_round_trip_is_faithful(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path, 1 << 30)
    analysis = _analysis("a")
    odd = {"__bytes__": "not really", "t": (1, b"\x00\xff", [None, True, 1.5])}
    analysis.values["everything"]["/odd"] = odd
    assert cache.put("k", analysis)
    loaded = cache.get("k", analysis.digest)
    assert loaded == analysis
    assert loaded is not None and loaded.values["everything"]["/odd"] == odd
    assert decode(encode(odd)) == odd and isinstance(decode(encode(odd))["t"], tuple)
    assert cache.get("other-key", analysis.digest) is None


def test_values_json_cannot_hold_are_not_cached(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path, 1 << 30)
    analysis = _analysis("b")
    analysis.values["everything"]["/set"] = {1, 2}
    assert not cache.put("k", analysis)
    assert cache.get("k", analysis.digest) is None


def test_least_recently_used_entries_go_first(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path, 1 << 30)
    for char in "abc":
        assert cache.put("k", _analysis(char, padding=20_000))
    entry_size = cache.total_bytes() // 3
    now = time.time()
    for age, char in enumerate("abc"):  # a oldest, c newest
        path = tmp_path / "k" / f"sha256-{char * 64}.json.gz"
        os.utime(path, (now - 100 + age, now - 100 + age))
    assert cache.get("k", "sha256:" + "a" * 64) is not None  # a hit makes "a" the most recent
    cache.max_bytes = int(entry_size * 3.5)
    assert cache.put("k", _analysis("d", padding=20_000))
    remaining = sorted(p.name[7] for p in (tmp_path / "k").iterdir())
    assert remaining == ["a", "c", "d"]  # "b" was the least recently used
    assert cache.total_bytes() <= cache.max_bytes


def test_unreadable_entries_are_misses_and_go_away(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path, 1 << 30)
    analysis = _analysis("e")
    cache.put("k", analysis)
    path = tmp_path / "k" / f"sha256-{'e' * 64}.json.gz"
    path.write_bytes(gzip.compress(b'{"key": "k", "analysis": {"digest": "trunc'))
    assert cache.get("k", analysis.digest) is None
    assert not path.exists()
    path.write_bytes(b"not gzip at all")
    assert cache.get("k", analysis.digest) is None


def test_concurrent_writers_and_readers_see_whole_entries(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path, 1 << 30)
    analysis = _analysis("f", padding=200_000)
    seen: list[object] = []
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                cache.put("k", analysis)
                seen.append(cache.get("k", analysis.digest))
        except BaseException as failure:
            failures.append(failure)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(seen) == 30 and all(s == analysis for s in seen)
    assert [p.name for p in (tmp_path / "k").iterdir()] == [
        f"sha256-{'f' * 64}.json.gz"
    ]  # no temp files left


def test_stale_temporary_files_are_cleaned(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path, 1 << 30)
    (tmp_path / "k").mkdir()
    stale = tmp_path / "k" / ".tmp-dead-writer.json.gz"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    cache.put("k", _analysis("9"))
    assert not stale.exists()


def test_reader_key_follows_catalogers_and_limits() -> None:
    limits = LayerLimits()
    key = reader_key([Everything()], limits)
    assert key == reader_key([Everything()], limits)
    assert key != reader_key([Everything(), Wanting(frozenset())], limits)
    assert key != reader_key([Everything(name="renamed")], limits)
    assert key != reader_key([Everything()], LayerLimits(max_file_bytes=1))

    @dataclass
    class Versioned(Everything):
        version: str = "2"

    assert reader_key([Versioned()], limits) != reader_key([Versioned(version="3")], limits)


def test_turned_off_by_zero() -> None:
    assert LayerCache.under(Path("/nonexistent"), 0) is None
    cache = LayerCache.under(Path("/state"), 10)
    assert cache is not None and cache.root == Path("/state/layer-cache")

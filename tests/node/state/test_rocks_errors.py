"""RocksKV's own behaviour beyond the shared KV contract: RocksDB's failures turned into the
node's errors (corruption or other, the damaged file named without the operator's directory,
``on_error`` told which), what the LOG says was dropped from the WAL, a full checksum pass
counting what it read, flushing, and a read-only open that needs an existing store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.core.errors import StorageCorruption, StorageError
from node.state.rocks import RocksKV, WalDrop, storage_error, wal_drops

CHECKSUM = ("Corruption: block checksum mismatch: stored(context removed) = 1, computed = 2, "
            "type = 4  in /var/lib/dubhe/data/000123.sst offset 0 size 4096")


def test_rocksdbs_words_become_the_nodes_errors() -> None:
    e = storage_error(Exception(CHECKSUM), "reading")
    assert isinstance(e, StorageCorruption)
    assert str(e) == ("storage corruption while reading: Corruption: block checksum mismatch "
                      "in 000123.sst offset 0 size 4096")
    io = storage_error(Exception("IO error:  No space left   on device"), "writing")
    assert type(io) is StorageError
    assert str(io) == "storage failure while writing: IO error: No space left on device"
    lead = storage_error(Exception("IO error: lock held"), "opening", "cannot open RocksDB at x")
    assert str(lead) == "cannot open RocksDB at x: IO error: lock held"
    assert str(storage_error(Exception(CHECKSUM), "opening", "lead")).startswith(
        "lead: Corruption: block checksum mismatch")


def test_the_wal_records_rocksdb_dropped_are_read_from_its_log(tmp_path: Path) -> None:
    assert wal_drops(tmp_path) == []  # no LOG: nothing known
    (tmp_path / "LOG").write_bytes(
        b"2026/12/01 [WARN] /data/db/000004.log: dropping 319 bytes; Corruption: truncated "
        b"record body  \n"
        b"2026/12/01 [INFO] nothing to see\xff\n"
        b"x 000009.log: dropping 7 bytes; Corruption: checksum mismatch\n")
    assert wal_drops(tmp_path) == [
        WalDrop("/data/db/000004.log", 319, "Corruption: truncated record body"),
        WalDrop("000009.log", 7, "Corruption: checksum mismatch")]


class Broken:
    """Stands in for rocksdict's database: every call raises ``message``."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __getattr__(self, name: str) -> Any:
        def fail(*args: object, **kw: object) -> Any:
            raise Exception(self.message)

        return fail


@pytest.mark.parametrize(("message", "kind", "error"), [
    (CHECKSUM, "corruption", StorageCorruption),
    ("IO error: disk gone", "io", StorageError),
])
def test_every_failed_operation_says_what_it_was_doing(tmp_path: Path, message: str, kind: str,
                                                       error: type[Exception]) -> None:
    seen: list[str] = []
    kv = RocksKV(tmp_path / "db", on_error=seen.append)
    real = kv._db
    kv._db = Broken(message)
    try:
        for call, doing in ((lambda: kv.get(b"k"), "reading"),
                            (lambda: kv.get_many([b"k"]), "reading"),
                            (lambda: kv.write({b"k": b"v"}), "writing"),
                            (lambda: kv.write({b"k": None}, sync=True), "writing"),
                            (kv.flush, "flushing")):
            with pytest.raises(error) as e:
                call()
            assert type(e.value) is error and f" while {doing}: " in str(e.value)
        assert seen == [kind] * 5
    finally:
        kv._db = real
        kv.close()


def test_a_checksum_pass_counts_the_keys_it_read(tmp_path: Path) -> None:
    kv = RocksKV(tmp_path / "db")
    try:
        assert kv.verify()[0] == 0
        kv.write({bytes([i]): b"v" * i for i in range(1, 40)})
        kv.flush()  # into table files: what verify reads with checksums
        kv.write({b"\xff": b"last"}, sync=True)
        n, seconds = kv.verify()
        assert n == 40 and 0 <= seconds < 60
    finally:
        kv.close()
    again = RocksKV(tmp_path / "db")
    assert again.get(b"\xff") == b"last" and again.get_many([]) == []
    again.close()


def test_a_read_only_open_needs_an_existing_store(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"^cannot open RocksDB at .*: no store there"):
        RocksKV(tmp_path / "missing" / "db", read_only=True)
    assert not (tmp_path / "missing").exists()  # read-only: nothing created on the way
    (tmp_path / "empty").mkdir()
    with pytest.raises(StorageError, match=r"^cannot open RocksDB at .*: no store there"):
        RocksKV(tmp_path / "empty", read_only=True)
    assert list((tmp_path / "empty").iterdir()) == []
    nested = tmp_path / "a" / "b" / "db"  # a writable open creates its parents
    RocksKV(nested).close()
    assert nested.is_dir()
    ro = RocksKV(nested, read_only=True)
    assert ro.get(b"k") is None
    ro.close()

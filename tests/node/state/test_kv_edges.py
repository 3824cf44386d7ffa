"""The key-value stores one by one (MemoryKV, the reference; RocksKV): deletes of absent keys,
overwrites, prefix scans at their boundaries, empty batches and lookups, durability across a
reopen, and a clear error for a store that cannot be opened."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.core.errors import StorageError
from node.state.kv import KV, MemoryKV
from node.state.rocks import RocksKV


@pytest.fixture(params=["memory", "rocksdb"])
def kv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KV]:
    store: KV = MemoryKV() if request.param == "memory" else RocksKV(tmp_path / "db")
    yield store
    store.close()


def test_writes_overwrites_and_deletes(kv: KV) -> None:
    kv.write({b"b": b"1", b"a": b"2", b"c": b"3"})
    kv.write({b"b": b"9"})  # an overwrite is one key still
    kv.write({b"zz": None, b"c": None})  # deleting an absent key is no error
    assert list(kv.iter_prefix(b"")) == [(b"a", b"2"), (b"b", b"9")]
    assert kv.get(b"c") is None and kv.get(b"b") == b"9"
    kv.write({b"c": b"4"}, sync=True)  # back again, durably
    assert list(kv.iter_prefix(b"")) == [(b"a", b"2"), (b"b", b"9"), (b"c", b"4")]
    kv.write({})
    assert kv.get_many([]) == [] and kv.get_many([b"c", b"x", b"a"]) == [b"4", None, b"2"]


def test_prefix_scans_stop_at_the_prefix(kv: KV) -> None:
    kv.write({k: k.upper() for k in (b"a", b"ab", b"abc", b"abd", b"ac", b"b", b"\xff")})
    assert [k for k, _ in kv.iter_prefix(b"ab")] == [b"ab", b"abc", b"abd"]
    assert [k for k, _ in kv.iter_prefix(b"a")] == [b"a", b"ab", b"abc", b"abd", b"ac"]
    assert list(kv.iter_prefix(b"abz")) == [] and list(kv.iter_prefix(b"\x00")) == []
    assert list(kv.iter_prefix(b"\xff")) == [(b"\xff", b"\xff")]
    assert dict(kv.iter_prefix(b"ab"))[b"abc"] == b"ABC"


def test_a_batch_mixing_puts_and_deletes_of_one_key_set(kv: KV) -> None:
    kv.write({b"k1": b"v1", b"k2": b"v2"})
    kv.write({b"k1": None, b"k3": b"v3", b"k2": b"w2"})
    assert list(kv.iter_prefix(b"k")) == [(b"k2", b"w2"), (b"k3", b"v3")]


def test_rocksdb_keeps_what_was_written_across_a_reopen(tmp_path: Path) -> None:
    db = RocksKV(tmp_path / "db")
    db.write({b"a": b"1", b"b": b"2"}, sync=True)
    db.write({b"a": None})
    db.close()
    again = RocksKV(tmp_path / "db")
    assert list(again.iter_prefix(b"")) == [(b"b", b"2")]
    again.close()


def test_a_store_that_cannot_be_opened_says_where(tmp_path: Path) -> None:
    db = RocksKV(tmp_path / "db")  # holds the lock
    try:
        with pytest.raises(StorageError, match=rf"^cannot open RocksDB at {tmp_path / 'db'}: "):
            RocksKV(tmp_path / "db")
    finally:
        db.close()

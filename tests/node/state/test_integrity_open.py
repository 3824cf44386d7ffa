"""``open_checked``'s decisions, each reached on purpose: RocksDB's answers are replaced by a
stand-in where a real damaged directory cannot produce them on demand (a table that fails only
on the read-only reopen, say); the real damages are in test_damage.py. Checked: which refusal
each failure gives and what it says, the harmless-recovery report, the journal restarted from
the database's watermarks, and the caller's counters in use."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from node.core.block import BlockHeader, list_root
from node.core.codec import U64
from node.core.errors import StorageCorruption, StorageDamage
from node.state import integrity
from node.state import journal as jr
from node.state.chain_store import NS_HEADER, ChainStore, root_of
from node.state.integrity import OpenOptions, account, open_checked
from node.state.journal import Checkpoint, JournalContents
from node.state.kv import MemoryKV
from node.state.rocks import WalDrop
from node.state.writer import StorageStats

TABLE = StorageCorruption("storage corruption while opening: Corruption: block checksum "
                          "mismatch in 000012.sst offset 4096")


def _drop(tmp_path: Path) -> WalDrop:
    wal = tmp_path / "000009.log"
    wal.write_bytes(b"x" * 1234)
    return WalDrop(str(wal), 77, "Corruption: checksum mismatch")


def _commit(store: ChainStore, number: int) -> bytes:
    head = store.head
    acc = store.next_accumulator({})
    h = BlockHeader(number, head.hash if head else bytes(32), number, list_root([]),
                    list_root([]), root_of(acc), 0, 0)
    store.commit_block(h, [], [], {}, acc, [])
    return h.hash


class FakeRocks:
    """Stands in for RocksKV: the first (absolute-mode) open raises ``first``; a read-only open
    raises ``read_only`` or gives ``kv``; a point-in-time open gives ``kv``."""

    def __init__(self, first: Exception, read_only: Exception | None, kv: Any) -> None:
        self.first, self.read_only, self.kv = first, read_only, kv
        self.opened: list[dict[str, Any]] = []

    def __call__(self, path: Path, **kw: Any) -> Any:
        self.opened.append(kw)
        if kw.get("read_only"):
            if self.read_only is not None:
                raise self.read_only
            return self.kv
        if kw.get("recovery") == "point_in_time":
            return self.kv
        raise self.first


class ClosableKV(MemoryKV):
    def close(self) -> None:
        pass


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    def install(first: Exception, read_only: Exception | None = None, kv: Any = None,
                drops: list[WalDrop] | None = None) -> FakeRocks:
        f = FakeRocks(first, read_only, kv if kv is not None else ClosableKV())
        monkeypatch.setattr(integrity, "RocksKV", f)
        monkeypatch.setattr(integrity, "wal_drops", lambda p: drops or [])
        return f
    return install


def _refused(tmp_path: Path, opts: OpenOptions = OpenOptions()) -> str:
    with pytest.raises(StorageDamage) as exc:
        open_checked(tmp_path, opts)
    return exc.value.message


def test_a_table_failing_the_first_open_without_a_wal_loss_is_table_damage(
    tmp_path: Path, fake: Any,
) -> None:
    fake(TABLE)
    msg = _refused(tmp_path)
    assert msg == (
        f"storage damage in {tmp_path}: Corruption: block checksum mismatch in 000012.sst "
        "offset 4096, "
        "found while opening the database. The database cannot be trusted; --accept-tail-loss "
        "does not apply (this is not the end of the write-ahead log). Options: restore "
        f"{tmp_path} from a backup")


@pytest.mark.parametrize("where", ["read-only reopen", "account"])
def test_a_table_failing_after_a_wal_loss_is_table_damage_too(
    tmp_path: Path, fake: Any, monkeypatch: pytest.MonkeyPatch, where: str,
) -> None:
    drop = _drop(tmp_path)
    if where == "read-only reopen":
        fake(StorageCorruption("x: Corruption: wal"), read_only=TABLE, drops=[drop])
    else:
        fake(StorageCorruption("x: Corruption: wal"), drops=[drop])

        def broken(kv: Any, jc: Any) -> Any:
            raise TABLE
        monkeypatch.setattr(integrity, "account", broken)
    msg = _refused(tmp_path)
    assert msg.startswith(f"storage damage in {tmp_path}: Corruption: block checksum mismatch in "
                          "000012.sst offset 4096, found while opening the database.")
    assert "verify_on_open" not in msg


def test_a_wal_loss_without_a_fsynced_journal_cannot_be_proven_harmless(
    tmp_path: Path, fake: Any,
) -> None:
    drop = _drop(tmp_path)
    f = fake(StorageCorruption("x: Corruption: wal"), drops=[drop])
    msg = _refused(tmp_path, OpenOptions(sync_writes=False))
    assert msg == (
        f"storage damage in {tmp_path}: RocksDB cannot replay its write-ahead log {drop.file} "
        "(1,234 bytes, Corruption: checksum mismatch; 77 bytes unreadable where the replay "
        "stops); recovering to the last consistent write would drop nothing the node "
        "acknowledged or announced as far as can be told: there is no acknowledgement journal "
        "to compare with, but with sync_writes = false the journal is not fsync'd and cannot "
        f"prove it. Options: restore {tmp_path} from a backup, or start once with "
        "--accept-tail-loss (or [state] accept_tail_loss = true) to accept the loss (every "
        "dropped height and transaction is then logged)")
    assert f.opened[1] == {"recovery": "point_in_time", "read_only": True}


def test_a_wal_loss_that_loses_something_is_refused_without_the_sync_excuse(
    tmp_path: Path, fake: Any,
) -> None:
    j = jr.Journal(tmp_path / jr.JOURNAL_NAME)
    j.start(Checkpoint(None, bytes(32), 0))
    j.append([jr.ack_record(0, [b"\x01" * 32])], sync=True)
    j.close()
    fake(StorageCorruption("x: Corruption: wal"), drops=[_drop(tmp_path)])
    msg = _refused(tmp_path, OpenOptions(sync_writes=False))
    assert "would drop 1 acknowledged transaction." in msg and "sync_writes" not in msg


def test_a_provably_harmless_wal_loss_recovers_and_reports_it(
    tmp_path: Path, fake: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    j = jr.Journal(tmp_path / jr.JOURNAL_NAME)
    j.start(Checkpoint(None, bytes(32), 0))
    j.close()
    drop = _drop(tmp_path)
    stats = StorageStats()
    f = fake(StorageCorruption("x: Corruption: wal"), drops=[drop])
    store = open_checked(tmp_path, OpenOptions(verify_on_open=False), stats=stats)
    try:
        assert store.stats is stats  # the caller's counters (``/metrics``) are the store's
        assert f.opened[-1] == {"recovery": "point_in_time", "on_error": stats.error}
    finally:
        store.close()
    reports = list(tmp_path.glob("dubhe-recovery-*.json"))
    assert len(reports) == 1
    assert re.fullmatch(r"dubhe-recovery-\d{8}T\d{6}Z\.json", reports[0].name)
    text = reports[0].read_text()
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=1) + "\n"
    assert doc["recovery"] == "harmless" and doc["damage"].startswith(
        f"RocksDB cannot replay its write-ahead log {drop.file} (1,234 bytes, ")
    assert doc["droppedBlocks"] == [] and doc["journal"] is True
    assert any("as a power loss in the middle of a write leaves" in r.getMessage()
               for r in caplog.records)


def test_the_wal_damage_without_its_file_names_no_size(tmp_path: Path) -> None:
    gone = WalDrop(str(tmp_path / "gone.log"), 5, "Corruption: bad record length")
    assert integrity._wal_damage([gone]) == (
        f"RocksDB cannot replay its write-ahead log {gone.file} (Corruption: bad record "
        "length; 5 bytes unreadable where the replay stops)")


def test_the_journal_restarts_from_the_databases_watermarks(tmp_path: Path) -> None:
    stats = StorageStats()
    store = open_checked(tmp_path, stats=stats)
    assert store.stats is stats
    store.close()
    fresh = jr.read(tmp_path / jr.JOURNAL_NAME)
    assert fresh is not None and fresh.checkpoint == Checkpoint(None, bytes(32), 0)

    store = open_checked(tmp_path)
    _commit(store, 0)
    last = _commit(store, 1)
    store.pool_put_many([(0, b"tx-a"), (1, b"tx-b")])
    store.close()
    store = open_checked(tmp_path)
    store.close()
    again = jr.read(tmp_path / jr.JOURNAL_NAME)
    assert again is not None and again.checkpoint == Checkpoint(1, last, 2)
    assert again.acks == [] and again.blocks == []


def test_a_block_below_the_head_whose_header_is_missing_differs() -> None:
    store = ChainStore(MemoryKV())
    hashes = [_commit(store, n) for n in range(3)]
    store.kv.write({NS_HEADER + U64.pack(1): None})
    jc = JournalContents(checkpoint=Checkpoint(None, bytes(32), 0),
                         blocks=[jr.JournalBlock(1, hashes[1], ())])
    assert account(store.kv, jc).differing_blocks == [1]


def test_a_real_store_opens_with_checksums_verified(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="node.storage")
    open_checked(tmp_path).close()
    assert any(r.getMessage().startswith("storage: verified the checksums of ")
               for r in caplog.records)

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


def _store_with_blocks(tmp_path: Path, blocks: int) -> None:
    store = open_checked(tmp_path)
    for n in range(blocks):
        _commit(store, n)
    store.close()


def _behind(monkeypatch: pytest.MonkeyPatch) -> integrity.Account:
    """Make the journal say more was announced than the database holds (step 5)."""
    lost = integrity.Account(1, 0, True, dropped_blocks=[jr.JournalBlock(2, b"\x02" * 32, ())])
    monkeypatch.setattr(integrity, "account", lambda kv, jc: lost)
    return lost


def _messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "node.storage"]


def test_a_clean_open_behind_the_journal_is_refused(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _store_with_blocks(tmp_path, 2)
    _behind(monkeypatch)
    msg = _refused(tmp_path)
    assert msg == (
        f"storage damage in {tmp_path}: the database ends at block 1 and sequence number 0, "
        "behind what the acknowledgement journal records as acknowledged and announced (a "
        "write-ahead log lost or cut between records); starting on it would drop 1 announced "
        f"block (height 2). Options: restore {tmp_path} from a backup, or start once with "
        "--accept-tail-loss (or [state] accept_tail_loss = true) to accept the loss (every "
        "dropped height and transaction is then logged)")


def test_an_accepted_loss_is_logged_line_by_line_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    _store_with_blocks(tmp_path, 2)
    lost = _behind(monkeypatch)
    caplog.set_level(logging.INFO, logger="node.storage")
    open_checked(tmp_path, OpenOptions(accept_tail_loss=True)).close()
    got = _messages(caplog)
    damage = ("the database ends at block 1 and sequence number 0, behind what the "
              "acknowledgement journal records as acknowledged and announced (a write-ahead log "
              "lost or cut between records)")
    assert (logging.ERROR, f"storage: {damage}; tail loss accepted, dropped 1 announced block "
            "(height 2)") in got
    for line in lost.lines():
        assert (logging.ERROR, f"storage: {line}") in got
    (report,) = tmp_path.glob("dubhe-recovery-*.json")
    assert (logging.ERROR, f"storage: the account is also in {report}") in got
    doc = json.loads(report.read_text())
    assert doc["recovery"] == "accepted" and doc["damage"] == damage
    assert [b["number"] for b in doc["droppedBlocks"]] == [2]


def test_an_accepted_empty_store_says_it_holds_no_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    _store_with_blocks(tmp_path, 0)
    lost = integrity.Account(None, 0, True, lost_txs=[(0, b"\x01" * 32)])
    monkeypatch.setattr(integrity, "account", lambda kv, jc: lost)
    msg = _refused(tmp_path)
    assert msg.startswith(f"storage damage in {tmp_path}: the database holds no block and "
                          "sequence number 0, behind what")


def test_what_a_clean_open_says_about_its_journal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="node.storage")
    _store_with_blocks(tmp_path, 2)
    journal = tmp_path / jr.JOURNAL_NAME
    cases = {
        "missing": (None, (logging.INFO, "storage: no acknowledgement journal yet (a data "
                           "directory from before it existed): starting one")),
        "damaged": (b"garbage", (logging.WARNING, "storage: the acknowledgement journal is "
                                 "damaged (it does not start with the journal's magic bytes); "
                                 "the database passed its own checks and holds everything the "
                                 "journal's readable part records: starting a new journal")),
        "empty": (jr.MAGIC, (logging.WARNING, "storage: the acknowledgement journal is damaged "
                             "(no checkpoint); the database passed its own checks and holds "
                             "everything the journal's readable part records: starting a new "
                             "journal")),
    }
    for name, (content, expected) in cases.items():
        caplog.clear()
        if content is None:
            journal.unlink()
        else:
            journal.write_bytes(content)
        open_checked(tmp_path).close()
        assert expected in _messages(caplog), name
        fresh = jr.read(journal)
        assert fresh is not None and fresh.damage is None and fresh.checkpoint is not None
    caplog.clear()
    open_checked(tmp_path).close()  # an intact journal: nothing to say but the verification
    assert [m for _, m in _messages(caplog) if "journal" in m] == []


@pytest.mark.parametrize("where", ["verify", "account"])
def test_a_table_failing_after_a_clean_open_is_table_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str,
) -> None:
    _store_with_blocks(tmp_path, 1)

    def fail(*a: object) -> Any:
        raise TABLE
    if where == "verify":
        monkeypatch.setattr(integrity.RocksKV, "verify", fail)
    else:
        monkeypatch.setattr(integrity, "account", fail)
    msg = _refused(tmp_path)
    detail = "Corruption: block checksum mismatch in 000012.sst offset 4096"
    if where == "verify":
        assert msg == (
            f"storage damage in {tmp_path}: {detail}, found while verifying every stored block "
            "at start-up. The database cannot be trusted; --accept-tail-loss does not apply "
            "(this is not the end of the write-ahead log). Options: restore "
            f"{tmp_path} from a backup, or set [state] verify_on_open = false to start anyway "
            "and answer -32020 for reads of the damaged data")
    else:
        assert msg.startswith(f"storage damage in {tmp_path}: {detail}, found while opening "
                              "the database.")
        assert msg.endswith(f"Options: restore {tmp_path} from a backup")

"""Storage damage is never silent: a table of damages to a real RocksDB data directory, each
refused at open with one line naming it, or (with ``accept_tail_loss``) an exact logged account
of what was dropped, checked against what the store had acknowledged and announced.

The history is written through the real store (group commit, journal), then the directory is
copied while the store is open: what ``kill -9`` leaves (the WAL holds everything since the
last flush). Damages are applied to the copy.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from node.core.block import BlockHeader, list_root
from node.core.codec import sha3
from node.core.errors import StorageCorruption, StorageDamage
from node.core.execution import Receipt, TxStatus
from node.state.chain_store import ChainStore, root_of
from node.state.integrity import OpenOptions, open_checked
from node.state.journal import JOURNAL_NAME
from node.state.writer import StorageStats

SEED = 18


@dataclass
class History:
    """What the store acknowledged (tx hash -> sequence number) and announced (block number ->
    hash), and the last write's transactions."""

    acked: dict[bytes, int] = field(default_factory=dict)
    blocks: dict[int, bytes] = field(default_factory=dict)
    last_ack: list[bytes] = field(default_factory=list)


def _block(store: ChainStore, txs: list[tuple[int, bytes]], n_writes: int, rng: random.Random,
           hist: History) -> None:
    head = store.head
    number = head.number + 1 if head else 0
    writes: dict[bytes, bytes | None] = {
        b"k%d" % rng.randrange(200): rng.randbytes(40) for _ in range(n_writes)
    }
    acc = store.next_accumulator(writes)
    hashes = [sha3(raw) for _, raw in txs]
    receipts = [Receipt(h, number, i, TxStatus.SUCCESS, 1, b"", (), "")
                for i, h in enumerate(hashes)]
    header = BlockHeader(number, head.hash if head else bytes(32), 1_000 + number,
                         list_root(hashes), list_root([r.encode() for r in receipts]),
                         root_of(acc), len(txs), 0)
    store.commit_block(header, list(zip(hashes, (raw for _, raw in txs), strict=True)),
                       receipts, writes, acc, [s for s, _ in txs])
    hist.blocks[number] = header.hash


def write_history(path: Path, rounds: int, *, seed: int = SEED,
                  opts: OpenOptions = OpenOptions()) -> tuple[ChainStore, History]:
    """Blocks and acknowledgements interleaved, ending with an acknowledgement (seeded)."""
    rng = random.Random(seed)
    store = open_checked(path, opts)
    hist = History()
    pending: list[tuple[int, bytes]] = []
    seq = store.next_seq()
    _block(store, [], 3, rng, hist)
    for r in range(rounds):
        batch = [(seq + i, b"tx-%d-" % (seq + i) + rng.randbytes(60))
                 for i in range(rng.randint(1, 6))]
        seq += len(batch)
        store.pool_put_many(batch)
        for s, raw in batch:
            hist.acked[sha3(raw)] = s
        hist.last_ack = [sha3(raw) for _, raw in batch]
        pending.extend(batch)
        if r % 3 == 2 and r != rounds - 1:
            k = rng.randint(0, len(pending))
            take, pending = pending[:k], pending[k:]
            _block(store, take, rng.randint(1, 8), rng, hist)
    return store, hist


def crash_copy(path: Path, store: ChainStore, dest: Path) -> Path:
    """The directory as ``kill -9`` would leave it (copied while open), then close the store."""
    shutil.copytree(path, dest)
    store.close()
    return dest


def wal_of(d: Path) -> Path:
    logs = [p for p in d.glob("*.log") if p.stat().st_size > 0]
    assert len(logs) == 1, logs
    return logs[0]


def cut_tail(n: int) -> Callable[[Path], Path]:
    def damage(d: Path) -> Path:
        w = wal_of(d)
        os.truncate(w, w.stat().st_size - n)
        return w
    return damage


def cut_at(share: float) -> Callable[[Path], Path]:
    def damage(d: Path) -> Path:
        w = wal_of(d)
        os.truncate(w, int(w.stat().st_size * share))
        return w
    return damage


def flip(p: Path, at: float, n: int = 64) -> None:
    with open(p, "r+b") as f:
        f.seek(int(p.stat().st_size * at))
        b = f.read(n)
        f.seek(int(p.stat().st_size * at))
        f.write(bytes(x ^ 0xFF for x in b))


def flip_wal(d: Path) -> Path:
    w = wal_of(d)
    flip(w, 0.5)
    return w


def delete_wal(d: Path) -> Path:
    w = wal_of(d)
    w.unlink()
    return w


WAL_DAMAGES = {
    "WAL tail cut 16 bytes": cut_tail(16),
    "WAL cut at 90%": cut_at(0.9),
    "WAL cut at 50%": cut_at(0.5),
    "WAL 64 bytes flipped": flip_wal,
}


def truth(store: ChainStore, hist: History) -> tuple[set[int], set[bytes]]:
    """From the recovered store itself: announced blocks it lacks (or holds differently) and
    acknowledged transactions neither pending nor in a block."""
    dropped = {n for n, h in hist.blocks.items()
               if (hd := store.header(n)) is None or hd.hash != h}
    pending = {sha3(raw) for _, raw in store.pool_load()}
    lost = {h for h in hist.acked if h not in pending and store.tx_location(h) is None}
    return dropped, lost


def logged(caplog: pytest.LogCaptureFixture) -> tuple[set[int], set[bytes], list[str]]:
    lines = [r.getMessage() for r in caplog.records if r.name == "node.storage"]
    blocks = {int(m.group(1)) for line in lines
              if (m := re.match(r"storage: dropped block (\d+) 0x", line))}
    txs = {bytes.fromhex(m.group(1)) for line in lines
           if (m := re.match(r"storage: dropped acknowledged transaction 0x([0-9a-f]{64})", line))}
    return blocks, txs, lines


@pytest.mark.parametrize("damage", list(WAL_DAMAGES), ids=list(WAL_DAMAGES))
def test_wal_damage_is_refused_or_accounted_exactly(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    store, hist = write_history(tmp_path / "live", 40)
    d = crash_copy(tmp_path / "live", store, tmp_path / "crashed")
    wal = WAL_DAMAGES[damage](d)
    before = {p.name: p.read_bytes() for p in d.iterdir() if not p.name.startswith("LOG")}

    # Without the flag: refused, one line naming the damaged file and the options; no file
    # changed (RocksDB's own LOG aside), so a backup can still be taken or restored.
    with pytest.raises(StorageDamage) as refused:
        open_checked(d)
    msg = refused.value.message
    assert "\n" not in msg and wal.name in msg and "--accept-tail-loss" in msg
    assert "restore" in msg and "would drop" in msg
    assert {p.name: p.read_bytes() for p in d.iterdir() if not p.name.startswith("LOG")} == before

    # With it: started, and the log names exactly what the recovered store lacks.
    caplog.set_level(logging.INFO, "node.storage")
    store = open_checked(d, OpenOptions(accept_tail_loss=True))
    try:
        dropped, lost = truth(store, hist)
        got_blocks, got_txs, lines = logged(caplog)
        assert dropped or lost, "the damage dropped nothing: the table does not test anything"
        assert (got_blocks, got_txs) == (dropped, lost)
        assert any("tail loss accepted" in line for line in lines)
        if damage == "WAL tail cut 16 bytes":  # exactly the last write: one acknowledgement
            assert lost == set(hist.last_ack) and not dropped
        report = json.loads(next(d.glob("dubhe-recovery-*.json")).read_text())
        assert {b["number"] for b in report["droppedBlocks"]} == dropped
        assert {bytes.fromhex(t["hash"][2:]) for t in report["droppedTransactions"]} == lost
        # the new history continues from the recovered head
        head = store.head
        assert head is not None and head.number == min(dropped, default=head.number + 1) - 1
    finally:
        store.close()
    # the next start is clean: the journal now matches the recovered store
    caplog.clear()
    open_checked(d).close()
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)


def test_a_lost_wal_file_replays_cleanly_but_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # No unreadable record for RocksDB to notice: only the journal shows what is missing.
    store, hist = write_history(tmp_path / "live", 20)
    d = crash_copy(tmp_path / "live", store, tmp_path / "crashed")
    delete_wal(d)
    with pytest.raises(StorageDamage) as refused:
        open_checked(d)
    assert "behind what the acknowledgement journal records as" in refused.value.message
    caplog.set_level(logging.INFO, "node.storage")
    store = open_checked(d, OpenOptions(accept_tail_loss=True))
    try:
        dropped, lost = truth(store, hist)
        got_blocks, got_txs, _ = logged(caplog)
        assert lost and (got_blocks, got_txs) == (dropped, lost)
    finally:
        store.close()


def test_a_torn_unacknowledged_tail_recovers_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The last write acknowledges nothing (a cache entry): cutting it loses nothing the node
    # told anyone. With sync_writes the journal proves it, so the node recovers and says so;
    # without sync_writes the journal is not fsync'd and cannot prove it: refused.
    store, hist = write_history(tmp_path / "live", 10)
    store.aux_put(b"cache", bytes(500))
    d = crash_copy(tmp_path / "live", store, tmp_path / "crashed")
    cut_tail(16)(d)
    d2 = tmp_path / "crashed-nosync"
    shutil.copytree(d, d2)
    with pytest.raises(StorageDamage) as refused:
        open_checked(d2, OpenOptions(sync_writes=False))
    assert "cannot prove it" in refused.value.message
    caplog.set_level(logging.INFO, "node.storage")
    store = open_checked(d)
    try:
        assert truth(store, hist) == (set(), set())
        assert store.aux_get(b"cache") is None
        warn = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warn) == 1 and "nothing acknowledged or announced" in warn[0]
    finally:
        store.close()


def test_an_sst_with_flipped_bytes_is_refused_and_reads_of_it_fail_clearly(
    tmp_path: Path,
) -> None:
    store, _ = write_history(tmp_path / "live", 300)
    every_key = [k for k, _ in store.kv.iter_prefix(b"")]
    store.close()  # flushes everything into a table file
    d = tmp_path / "damaged"
    shutil.copytree(tmp_path / "live", d)
    (sst,) = d.glob("*.sst")
    flip(sst, 0.4)
    for accept in (False, True):  # accepting a tail loss does not apply to a table file
        with pytest.raises(StorageDamage) as refused:
            open_checked(d, OpenOptions(accept_tail_loss=accept))
        msg = refused.value.message
        assert "\n" not in msg and sst.name in msg and "checksum" in msg
        assert "verify_on_open = false" in msg and "does not apply" in msg
    # The operator's explicit choice: start anyway; reads of the damaged block fail with a
    # storage corruption error (counted), the rest are served.
    stats = StorageStats()
    store = open_checked(d, OpenOptions(verify_on_open=False), stats=stats)
    try:
        ok = bad = 0
        for k in every_key:
            try:
                store.kv.get(k)
                ok += 1
            except StorageCorruption as e:
                assert sst.name in e.message and "Corruption" in e.message
                bad += 1
        assert bad and ok
        assert stats.errors["corruption"] >= bad
    finally:
        store.close()


def test_the_journal_restarts_after_rotation_and_still_accounts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, hist = write_history(tmp_path / "live", 60, opts=OpenOptions(journal_max_bytes=4096))
    # rotation runs on its own thread: wait until the journal is small again
    for _ in range(200):
        if not store._rotating:
            break
        time.sleep(0.01)
    assert (tmp_path / "live" / JOURNAL_NAME).stat().st_size < 4096 + 2048
    d = crash_copy(tmp_path / "live", store, tmp_path / "crashed")
    cut_tail(16)(d)
    caplog.set_level(logging.INFO, "node.storage")
    store = open_checked(d, OpenOptions(accept_tail_loss=True))
    try:
        dropped, lost = truth(store, hist)
        got_blocks, got_txs, _ = logged(caplog)
        assert lost == set(hist.last_ack) and (got_blocks, got_txs) == (dropped, lost)
    finally:
        store.close()

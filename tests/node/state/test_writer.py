"""Group commit: concurrent writes share one synced write, keep their order, and fail together;
the journal records what each write acknowledged or announced."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path

import pytest

from node.core.errors import StorageError
from node.state import journal as jr
from node.state.journal import Checkpoint, Journal, ack_record, block_record
from node.state.kv import MemoryKV
from node.state.writer import GroupCommitWriter, InlineWriter


class SlowSyncKV(MemoryKV):
    """A store whose synced write takes ``delay`` seconds (an fsync); records each batch."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.batches: list[tuple[dict[bytes, bytes | None], bool]] = []
        self.fail = False

    def write(self, ops: Mapping[bytes, bytes | None], *, sync: bool = False) -> None:
        if self.fail:
            raise OSError("EIO")
        self.batches.append((dict(ops), sync))
        if sync:
            time.sleep(self.delay)
        super().write(ops, sync=sync)


def test_writes_queued_during_an_fsync_share_the_next_one(tmp_path: Path) -> None:
    kv = SlowSyncKV(0.05)
    j = Journal(tmp_path / "j")
    j.start(Checkpoint(None, bytes(32), 0))
    w = GroupCommitWriter(kv, j)
    try:
        first = w.submit({b"a": b"0"}, [ack_record(0, [b"\x00" * 32])])
        time.sleep(0.01)  # the writer is now inside the first fsync
        rest = [w.submit({b"a": b"%d" % i, b"p%d" % i: b"x"}, [ack_record(i, [bytes([i]) * 32])])
                for i in range(1, 65)]
        for f in [first, *rest]:
            f.result(timeout=5)
    finally:
        w.close()
    assert [len(b) for b, _ in kv.batches] == [1, 65]  # 64 writes, one batch, one sync
    assert all(sync for _, sync in kv.batches)
    assert kv.get(b"a") == b"64"  # submission order kept: the last write to a key wins
    assert w.stats.groups == 2 and w.stats.grouped_writes == 65
    got = jr.read(tmp_path / "j")
    assert got is not None and [s for s, _ in got.acks] == list(range(65))


def test_a_failed_group_fails_every_write_in_it_and_none_is_journaled(tmp_path: Path) -> None:
    kv = SlowSyncKV(0.05)
    j = Journal(tmp_path / "j")
    j.start(Checkpoint(None, bytes(32), 0))
    w = GroupCommitWriter(kv, j)
    try:
        w.submit({b"a": b"0"}, []).result(timeout=5)
        kv.fail = True
        fs: list[Future[None]] = [w.submit({b"k%d" % i: b"v"}, [ack_record(i, [bytes(32)])])
                                  for i in range(5)]
        for f in fs:
            with pytest.raises(StorageError, match="EIO"):
                f.result(timeout=5)
        kv.fail = False
        w.submit({b"b": b"1"}, []).result(timeout=5)  # a later write is tried again
    finally:
        w.close()
    got = jr.read(tmp_path / "j")
    assert got is not None and got.acks == []


def test_close_writes_what_is_queued() -> None:
    kv = SlowSyncKV(0.02)
    w = GroupCommitWriter(kv, None)
    fs = [w.submit({b"k%d" % i: b"v"}, []) for i in range(20)]
    w.close()
    assert all(f.done() and f.exception() is None for f in fs)
    assert w.submit({b"z": b"v"}, []).exception() is not None  # closed


def test_inline_writer_is_done_on_return(tmp_path: Path) -> None:
    kv = SlowSyncKV(1.0)
    w = InlineWriter(kv, None)
    f = w.submit({b"a": b"1"}, [])
    assert f.done() and kv.batches == [({b"a": b"1"}, False)]


def test_journal_reads_back_what_was_appended_and_ignores_a_torn_tail(tmp_path: Path) -> None:
    p = tmp_path / "j"
    j = Journal(p)
    j.start(Checkpoint(4, b"\x04" * 32, 10))
    j.append([ack_record(10, [b"\x0a" * 32, b"\x0b" * 32]),
              block_record(5, b"\x05" * 32, [b"\x0a" * 32])], sync=True)
    j.close()
    whole = p.read_bytes()
    got = jr.read(p)
    assert got is not None and got.damage is None and got.torn_bytes == 0
    assert got.checkpoint == Checkpoint(4, b"\x04" * 32, 10)
    assert got.acks == [(10, b"\x0a" * 32), (11, b"\x0b" * 32)]
    assert [(b.number, b.txs) for b in got.blocks] == [(5, (b"\x0a" * 32,))]
    assert (got.head, got.next_seq) == (5, 12)
    p.write_bytes(whole[:-10])  # a crash in the middle of the last append
    torn = jr.read(p)
    assert torn is not None and torn.damage is None and torn.torn_bytes > 0 and not torn.blocks
    flipped = bytearray(whole)
    flipped[len(jr.MAGIC) + 30] ^= 0xFF  # inside the first ack record
    p.write_bytes(bytes(flipped))
    bad = jr.read(p)
    assert bad is not None and bad.damage is not None and "damaged" in bad.damage
    assert bad.acks == []


def test_journal_rotation_keeps_what_came_after_the_rotation_point(tmp_path: Path) -> None:
    p = tmp_path / "j"
    j = Journal(p)
    j.start(Checkpoint(None, bytes(32), 0))
    j.append([ack_record(0, [b"\x01" * 32]), block_record(0, b"\x02" * 32, [])], sync=False)
    offset, mark = j.rotation_point()
    assert mark == Checkpoint(0, b"\x02" * 32, 1)
    after = threading.Thread(target=j.append,
                             args=([ack_record(1, [b"\x03" * 32])],), kwargs={"sync": False})
    after.start()
    after.join()
    j.rotate(offset, mark)
    j.append([ack_record(2, [b"\x04" * 32])], sync=False)
    j.close()
    got = jr.read(p)
    assert got is not None and got.checkpoint == mark
    assert got.acks == [(1, b"\x03" * 32), (2, b"\x04" * 32)] and got.blocks == []


async def test_a_group_from_the_event_loop_wakes_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    kv = SlowSyncKV(0.05)
    w = GroupCommitWriter(kv, None)
    loop = asyncio.get_running_loop()
    wakeups = 0
    real = loop.call_soon_threadsafe

    def counting(*args: object, **kw: object) -> object:
        nonlocal wakeups
        wakeups += 1
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    try:
        first = w.submit_aio({b"a": b"0"}, [])
        await asyncio.sleep(0.01)  # the writer is inside the first fsync
        rest = [w.submit_aio({b"k%d" % i: b"v"}, []) for i in range(64)]
        await asyncio.wait_for(asyncio.gather(first, *rest), 5)
    finally:
        w.close()
    assert [len(b) for b, _ in kv.batches] == [1, 64] and wakeups == 2

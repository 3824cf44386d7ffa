"""The writers at their edges: groups of exactly two and of ``max_group``, the journal's sync
flag per writer, how a failure reaches each future (the same StorageError, or a wrapped one),
counters for ``/metrics``, a closed writer, and the thread it runs on. Held writes wait on an
event, not on a sleep, so the grouping is exact."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from concurrent.futures import Future

import pytest

from node.core.errors import StorageError
from node.state.journal import Record, ack_record
from node.state.kv import MemoryKV
from node.state.writer import GroupCommitWriter, InlineWriter, StorageStats


class HeldKV(MemoryKV):
    """A store whose first synced write waits for ``release`` (an fsync in progress), so every
    write submitted meanwhile joins the next group. Records each batch; ``fail`` raises it."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[dict[bytes, bytes | None]] = []
        self.fail: BaseException | None = None

    def write(self, ops: Mapping[bytes, bytes | None], *, sync: bool = False) -> None:
        if self.fail is not None:
            raise self.fail
        self.batches.append(dict(ops))
        self.entered.set()
        assert self.release.wait(10), "the test never released the held write"
        super().write(ops, sync=sync)


class RecordingJournal:
    """Stands in for :class:`~node.state.journal.Journal`: what was appended, with its flag."""

    def __init__(self) -> None:
        self.appends: list[tuple[list[Record], bool]] = []

    def append(self, records: list[Record], *, sync: bool) -> None:
        self.appends.append((list(records), sync))


def _held(w: GroupCommitWriter, kv: HeldKV) -> Future[None]:
    """Submit one write and wait until the writer thread is inside it."""
    first = w.submit({b"first": b"1"}, [])
    assert kv.entered.wait(10)
    return first


def test_a_group_of_exactly_two_applies_both_writes() -> None:
    kv = HeldKV()
    w = GroupCommitWriter(kv, None)
    try:
        first = _held(w, kv)
        a = w.submit({b"a": b"1"}, [])
        b = w.submit({b"b": b"2"}, [])
        kv.release.set()
        for f in (first, a, b):
            f.result(timeout=10)
    finally:
        kv.release.set()
        w.close()
    assert kv.batches == [{b"first": b"1"}, {b"a": b"1", b"b": b"2"}]
    assert kv.get(b"a") == b"1" and kv.get(b"b") == b"2"
    assert (w.stats.groups, w.stats.grouped_writes) == (2, 3)


def test_a_group_takes_at_most_max_group_writes_by_default_4096() -> None:
    kv = HeldKV()
    w = GroupCommitWriter(kv, None)
    try:
        first = _held(w, kv)
        rest = [w.submit({b"k%d" % i: b"v"}, []) for i in range(4097)]
        kv.release.set()
        for f in (first, *rest):
            f.result(timeout=30)
    finally:
        kv.release.set()
        w.close()
    assert [len(b) for b in kv.batches] == [1, 4096, 1]
    assert (w.stats.groups, w.stats.grouped_writes) == (3, 4098)


def test_group_commit_fsyncs_the_journal_and_the_inline_writer_does_not() -> None:
    records = [ack_record(7, [bytes(32)])]
    j = RecordingJournal()
    g = GroupCommitWriter(MemoryKV(), j)  # type: ignore[arg-type]
    try:
        g.submit({b"a": b"1"}, records).result(timeout=10)
        g.submit({b"b": b"1"}, []).result(timeout=10)  # nothing to journal: no append at all
    finally:
        g.close()
    assert j.appends == [(records, True)]

    j2 = RecordingJournal()
    i = InlineWriter(MemoryKV(), j2)  # type: ignore[arg-type]
    assert i.submit({b"a": b"1"}, records).result() is None
    i.submit({b"b": b"1"}, [])
    assert j2.appends == [(records, False)]


def test_a_writer_without_a_journal_accepts_records() -> None:
    """The in-memory backend has no journal: records are dropped, the write succeeds."""
    records = [ack_record(1, [bytes(32)])]
    g = GroupCommitWriter(MemoryKV(), None)
    try:
        g.submit({b"a": b"1"}, records).result(timeout=10)
    finally:
        g.close()
    assert InlineWriter(MemoryKV(), None).submit({b"a": b"1"}, records).result() is None


@pytest.mark.parametrize("writer", ["inline", "group"])
def test_a_storage_error_reaches_the_caller_as_it_is_and_others_are_wrapped(writer: str) -> None:
    kv = HeldKV()
    kv.release.set()
    w: InlineWriter | GroupCommitWriter = (InlineWriter(kv, None) if writer == "inline"
                                           else GroupCommitWriter(kv, None))
    try:
        own = StorageError("cannot write: disk full")
        kv.fail = own
        assert w.submit({b"a": b"1"}, []).exception(timeout=10) is own
        kv.fail = OSError("EIO")
        err = w.submit({b"a": b"1"}, []).exception(timeout=10)
        assert isinstance(err, StorageError) and str(err) == "storage write failed: EIO"
    finally:
        w.close()


async def test_inline_submit_aio_resolves_at_once_with_the_write_or_its_error() -> None:
    kv = HeldKV()
    kv.release.set()
    j = RecordingJournal()
    w = InlineWriter(kv, j)  # type: ignore[arg-type]
    records = [ack_record(3, [bytes(32)])]
    ok = w.submit_aio({b"a": b"1"}, records)
    assert ok.done() and ok.result() is None and kv.get(b"a") == b"1"
    assert j.appends == [(records, False)]
    kv.fail = OSError("EIO")
    bad = w.submit_aio({b"b": b"1"}, [])
    assert bad.done()
    err = bad.exception()
    assert isinstance(err, StorageError) and "EIO" in str(err)


async def test_a_failed_group_reaches_every_loop_future_even_after_a_cancelled_one() -> None:
    kv = HeldKV()
    w = GroupCommitWriter(kv, None)
    try:
        first = w.submit_aio({b"first": b"1"}, [])
        assert await asyncio.to_thread(kv.entered.wait, 10)
        kv.fail = OSError("EIO")  # the next group fails
        futs = [w.submit_aio({b"k%d" % i: b"v"}, []) for i in range(3)]
        futs[0].cancel()  # its caller gave up: skipped, the others still settled
        kv.release.set()
        await asyncio.wait_for(first, 10)
        done, _ = await asyncio.wait(futs[1:], timeout=10)
        assert len(done) == 2
        for f in futs[1:]:
            err = f.exception()
            assert isinstance(err, StorageError) and "EIO" in str(err)
    finally:
        kv.release.set()
        w.close()


def test_a_closed_writer_refuses_with_a_clear_error() -> None:
    w = GroupCommitWriter(MemoryKV(), None)
    w.close()
    err = w.submit({b"a": b"1"}, []).exception(timeout=1)
    assert isinstance(err, StorageError) and str(err) == "the store is closed"


def test_the_writer_runs_on_a_daemon_thread_named_group_commit() -> None:
    """Named for py-spy and ``ps -L``; a daemon so a process that never closes its store can
    still exit."""
    before = {t for t in threading.enumerate() if t.name == "group-commit"}
    w = GroupCommitWriter(MemoryKV(), None)
    try:
        mine = [t for t in threading.enumerate() if t.name == "group-commit" and t not in before]
        assert len(mine) == 1 and mine[0].daemon
    finally:
        w.close()
    assert not mine[0].is_alive()


def test_stats_count_errors_by_kind_and_add_up_group_time() -> None:
    s = StorageStats()
    s.error("io")
    s.error("io")
    s.error("checksum")  # a kind not listed up front starts at one
    assert s.errors == {"corruption": 0, "io": 2, "checksum": 1}
    s.group(3, 0.5)
    s.group(2, 0.25)
    assert (s.groups, s.grouped_writes, s.group_seconds) == (2, 5, 0.75)


def test_a_groups_time_is_its_own_duration() -> None:
    kv = HeldKV()
    kv.release.set()
    w = GroupCommitWriter(kv, None)
    try:
        w.submit({b"a": b"1"}, []).result(timeout=10)
    finally:
        w.close()
    assert 0 < w.stats.group_seconds < 10

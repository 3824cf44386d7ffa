"""How the chain store's writes reach the disk: inline, or fsync'd with group commit.

Every write is a batch of key operations plus the journal records it makes true
(:mod:`node.state.journal`); the writer applies the batch to the key-value store, then appends
the records, and resolves the returned future only then. The store does not acknowledge or
announce anything before the future resolves.

- :class:`InlineWriter` writes on the caller's thread without fsync (``[state] sync_writes =
  false``, and the in-memory backend): a write survives a process kill, not an OS crash.
- :class:`GroupCommitWriter` (the default, ``sync_writes = true``) hands writes to one writer
  thread. While it fsyncs a group, new writes queue; the next group takes all of them in **one**
  RocksDB batch, one WAL fsync and one journal fdatasync, so concurrent submissions share the
  cost of durability (group commit, as in databases' commit logs). Writes submitted from the
  event loop (:meth:`~GroupCommitWriter.submit_aio`) get asyncio futures, and a finished group
  wakes the loop once for all of them. Writes keep their order: the
  merged batch applies them in submission order (a later write to the same key wins), so a block
  that includes a transaction is never durable before the transaction's own acknowledgement.

A failed write fails its whole group (every caller gets the StorageError; nothing in it is
acknowledged). Later writes are tried again: RocksDB itself refuses every write after a failed
one (with ``paranoid_checks`` it turns read-only), so on a real failure nothing is acknowledged
after it either.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Protocol

from node.core.errors import StorageError
from node.state.journal import Journal, Record
from node.state.kv import KV

Ops = Mapping[bytes, bytes | None]


class StorageStats:
    """Counters for ``/metrics``: storage errors by kind, fsync'd groups and the writes they
    carried. Updated from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.errors: dict[str, int] = {"corruption": 0, "io": 0}
        self.groups = 0  # synced writes to the store (each: one WAL fsync)
        self.grouped_writes = 0  # writes those groups carried
        self.group_seconds = 0.0

    def error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def group(self, writes: int, seconds: float) -> None:
        with self._lock:
            self.groups += 1
            self.grouped_writes += writes
            self.group_seconds += seconds


class Writer(Protocol):
    def submit(self, ops: Ops, records: list[Record]) -> Future[None]:
        """Apply ``ops`` then append ``records``; the future resolves once both are done (and
        fsync'd, for a syncing writer), or fails with StorageError. Any thread."""
        ...

    def submit_aio(self, ops: Ops, records: list[Record]) -> asyncio.Future[None]:
        """:meth:`submit` from the running event loop: an asyncio future of that loop."""
        ...

    def close(self) -> None: ...


def _as_storage_error(e: BaseException) -> StorageError:
    return e if isinstance(e, StorageError) else StorageError(f"storage write failed: {e}")


class InlineWriter:
    """Writes on the calling thread, no fsync; the future is already resolved on return."""

    def __init__(self, kv: KV, journal: Journal | None) -> None:
        self.kv = kv
        self.journal = journal

    def _write(self, ops: Ops, records: list[Record]) -> StorageError | None:
        try:
            self.kv.write(ops)
            if self.journal is not None and records:
                self.journal.append(records, sync=False)
        except Exception as e:
            return _as_storage_error(e)
        return None

    def submit(self, ops: Ops, records: list[Record]) -> Future[None]:
        fut: Future[None] = Future()
        err = self._write(ops, records)
        if err is None:
            fut.set_result(None)
        else:
            fut.set_exception(err)
        return fut

    def submit_aio(self, ops: Ops, records: list[Record]) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        err = self._write(ops, records)
        if err is None:
            fut.set_result(None)
        else:
            fut.set_exception(err)
        return fut

    def close(self) -> None:
        pass


AnyFuture = Future[None] | asyncio.Future[None]


def _settle(futs: list[asyncio.Future[None]], err: StorageError | None) -> None:
    """On the loop: resolve a finished group's futures (a cancelled waiter is skipped)."""
    for f in futs:
        if f.done():
            continue
        if err is None:
            f.set_result(None)
        else:
            f.set_exception(err)


class GroupCommitWriter:
    """One writer thread; every write queued while a group is being synced joins the next group.
    ``max_group`` bounds the writes merged into one batch."""

    def __init__(
        self,
        kv: KV,
        journal: Journal | None,
        *,
        stats: StorageStats | None = None,
        max_group: int = 4096,
    ) -> None:
        self.kv = kv
        self.journal = journal
        self.stats = stats or StorageStats()
        self.max_group = max_group
        self._cv = threading.Condition()
        self._queue: list[tuple[Ops, list[Record], AnyFuture]] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def _enqueue(self, ops: Ops, records: list[Record], fut: AnyFuture) -> None:
        with self._cv:
            if self._closed:
                fut.set_exception(StorageError("the store is closed"))
                return
            self._queue.append((ops, records, fut))
            self._cv.notify()

    def submit(self, ops: Ops, records: list[Record]) -> Future[None]:
        fut: Future[None] = Future()
        self._enqueue(ops, records, fut)
        return fut

    def submit_aio(self, ops: Ops, records: list[Record]) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._enqueue(ops, records, fut)
        return fut

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if not self._queue:
                    return
                group = self._queue[: self.max_group]
                del self._queue[: self.max_group]
            self._commit(group)

    def _commit(self, group: list[tuple[Ops, list[Record], AnyFuture]]) -> None:
        t0 = time.perf_counter()
        if len(group) == 1:
            merged = group[0][0]
            records = group[0][1]
        else:
            merged_d: dict[bytes, bytes | None] = {}
            records = []
            for ops, recs, _ in group:
                merged_d.update(ops)
                records.extend(recs)
            merged = merged_d
        err: StorageError | None = None
        try:
            self.kv.write(merged, sync=True)
            if self.journal is not None and records:
                self.journal.append(records, sync=True)
        except Exception as e:
            err = _as_storage_error(e)
        else:
            self.stats.group(len(group), time.perf_counter() - t0)
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for _, _, f in group:
            if isinstance(f, Future):
                if err is None:
                    f.set_result(None)
                else:
                    f.set_exception(err)
            else:
                by_loop.setdefault(f.get_loop(), []).append(f)
        for loop, futs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, futs, err)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join()

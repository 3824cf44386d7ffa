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
  cost of durability (group commit, as in databases' commit logs). Writes keep their order: the
  merged batch applies them in submission order (a later write to the same key wins), so a block
  that includes a transaction is never durable before the transaction's own acknowledgement.

A failed write fails its whole group (every caller gets the StorageError; nothing in it is
acknowledged). Later writes are tried again: RocksDB itself refuses every write after a failed
one (with ``paranoid_checks`` it turns read-only), so on a real failure nothing is acknowledged
after it either.
"""

from __future__ import annotations

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
        fsync'd, for a syncing writer), or fails with StorageError."""
        ...

    def close(self) -> None: ...


def _as_storage_error(e: BaseException) -> StorageError:
    return e if isinstance(e, StorageError) else StorageError(f"storage write failed: {e}")


class InlineWriter:
    """Writes on the calling thread, no fsync; the future is already resolved on return."""

    def __init__(self, kv: KV, journal: Journal | None) -> None:
        self.kv = kv
        self.journal = journal

    def submit(self, ops: Ops, records: list[Record]) -> Future[None]:
        fut: Future[None] = Future()
        try:
            self.kv.write(ops)
            if self.journal is not None and records:
                self.journal.append(records, sync=False)
        except Exception as e:
            fut.set_exception(_as_storage_error(e))
            return fut
        fut.set_result(None)
        return fut

    def close(self) -> None:
        pass


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
        self._queue: list[tuple[Ops, list[Record], Future[None]]] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def submit(self, ops: Ops, records: list[Record]) -> Future[None]:
        fut: Future[None] = Future()
        with self._cv:
            if self._closed:
                fut.set_exception(StorageError("the store is closed"))
                return fut
            self._queue.append((ops, records, fut))
            self._cv.notify()
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

    def _commit(self, group: list[tuple[Ops, list[Record], Future[None]]]) -> None:
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
        try:
            self.kv.write(merged, sync=True)
            if self.journal is not None and records:
                self.journal.append(records, sync=True)
        except Exception as e:
            err = _as_storage_error(e)
            for _, _, f in group:
                f.set_exception(err)
            return
        self.stats.group(len(group), time.perf_counter() - t0)
        for _, _, f in group:
            f.set_result(None)

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join()

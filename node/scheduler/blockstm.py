"""AptosBlockSTM: optimistic parallel execution with a multi-version memory (Block-STM).

Gelashvili et al., "Block-STM: Scaling Blockchain Execution by Turning Ordering Curse to a
Performance Blessing" (PPoPP'23), Algorithms 1-5, as in aptos-core's ``block-executor``:

* :class:`MVMemory` keeps, per key, the value written by each transaction's latest incarnation;
  a read by transaction k returns the write of the highest j < k (or storage), or an
  ``ESTIMATE`` marker left by an aborted incarnation of j.
* An *incarnation* is one (re-)execution of a transaction; a version is ``(txn_idx,
  incarnation)``. Each incarnation records its read set (key, version read) and write set.
* Validation re-reads the read set; a changed version aborts the incarnation, turns its writes
  into ESTIMATEs and schedules a re-execution. A reader that meets an ESTIMATE stops and
  waits for the blocking transaction (``add_dependency``).
* :class:`Scheduler` is the collaborative scheduler: shared ``execution_idx`` and
  ``validation_idx`` (lowest index first), per-transaction status READY_TO_EXECUTE ->
  EXECUTING -> EXECUTED -> ABORTING, ``num_active_tasks`` for ``check_done`` (which runs under
  the one scheduler lock, so the paper's ``decrease_cnt`` double-collect is not needed).

Block-STM needs no declared sets: it discovers reads and writes by executing. Declarations are
still enforced by the executor (``TxState``), so an undeclared access ends the transaction with
UNDECLARED_ACCESS exactly as under Serial.

The committed outcome of each transaction is that of its last incarnation, and the block's net
write set is folded from those outcomes in block order, as Serial does.

On CPython the worker threads share the GIL: Block-STM scales here only with executors that
release it (unicorn emulation, hashing). One scheduler lock stands in for the paper's atomic
counters and per-transaction mutexes; MVMemory relies on the GIL's atomic dict/list operations
(see :meth:`MVMemory.read`), which holds on CPython 3.11 (not on free-threaded builds).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left, insort
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from node.core.access import Overlay
from node.core.execution import (
    PATH_CONTENTION_FALLBACK,
    PATH_STRATEGY,
    BlockContext,
    BlockExecution,
    BlockStats,
    StateReader,
    TxExecutor,
    TxOutcome,
)
from node.core.tx import Transaction
from node.scheduler._common import fold_writes
from node.scheduler.serial import run_in_order
from node.scheduler.substrate import COORDINATOR

# -- multi-version memory ----------------------------------------------------------------------

#: Version of a read: (writer txn_idx, writer incarnation), or None for a read from storage.
Version = tuple[int, int] | None


class _Estimate:
    """Marker left in MVMemory by an aborted incarnation's writes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ESTIMATE"


ESTIMATE = _Estimate()


class ReadError(Exception):
    """A read met an ESTIMATE written by ``blocking``."""

    def __init__(self, blocking: int) -> None:
        super().__init__(blocking)
        self.blocking = blocking


class MVMemory:
    """Multi-version memory: key -> {txn_idx: (incarnation, value) | ESTIMATE}."""

    def __init__(self, n: int) -> None:
        self._data: dict[bytes, dict[int, tuple[int, bytes | None] | _Estimate]] = {}
        self._writers: dict[bytes, list[int]] = {}  # sorted txn indices with an entry
        self._last_written: list[frozenset[bytes]] = [frozenset()] * n
        self._last_read: list[list[tuple[bytes, Version]]] = [[] for _ in range(n)]

    def read(self, key: bytes, txn_idx: int) -> tuple[Version, bytes | None] | None:
        """The latest write to ``key`` below ``txn_idx``: ``(version, value)``, or ``None`` when
        no transaction below wrote it (read storage). Raises :class:`ReadError` on ESTIMATE."""
        # Lock-free: under the GIL each dict/list/bisect call is atomic, and record() publishes
        # an entry before its index (and unpublishes the index before the entry), so a reader
        # can only race with a removal, which it detects (KeyError/IndexError) and retries.
        while True:
            ws = self._writers.get(key)
            if not ws:
                return None
            try:
                p = bisect_left(ws, txn_idx)
                if p == 0:
                    return None
                j = ws[p - 1]
                e = self._data[key][j]
            except (KeyError, IndexError):
                continue
            if e is ESTIMATE:
                raise ReadError(j)
            return (j, e[0]), e[1]  # type: ignore[index]

    def record(
        self,
        txn_idx: int,
        incarnation: int,
        read_set: list[tuple[bytes, Version]],
        writes: dict[bytes, bytes | None],
    ) -> bool:
        """Store an incarnation's read and write sets; True if it wrote a key that the previous
        incarnation did not (then higher transactions must be revalidated)."""
        # No lock: only the thread running txn_idx writes its entries (an incarnation is
        # recorded before the status moves to EXECUTED, and only then may a validation turn
        # them into ESTIMATEs); entries of different transactions share dicts and lists, whose
        # single setdefault/insort/del calls are atomic under the GIL.
        prev = self._last_written[txn_idx]
        data, writers = self._data, self._writers
        for k, v in writes.items():
            entries = data.get(k)
            if entries is None:
                entries = data.setdefault(k, {})
            new = txn_idx not in entries
            entries[txn_idx] = (incarnation, v)  # publish the entry, then its index
            if new:
                insort(writers.setdefault(k, []), txn_idx)
        now = frozenset(writes)
        if prev:
            for k in prev - now:  # the new incarnation no longer writes k
                ws = writers[k]
                del ws[bisect_left(ws, txn_idx)]  # unpublish the index, then the entry
                del data[k][txn_idx]
        self._last_written[txn_idx] = now
        self._last_read[txn_idx] = read_set
        return not now <= prev

    def convert_writes_to_estimates(self, txn_idx: int) -> None:
        data = self._data
        for k in self._last_written[txn_idx]:
            data[k][txn_idx] = ESTIMATE

    def validate_read_set(self, txn_idx: int) -> bool:
        """Whether every recorded read would still see the same version."""
        for key, version in self._last_read[txn_idx]:
            try:
                r = self.read(key, txn_idx)
            except ReadError:
                return False
            if (None if r is None else r[0]) != version:
                return False
        return True


# -- collaborative scheduler -------------------------------------------------------------------

#: Default speculation window per worker thread (measured: see docs/scheduler-strategies.md).
DEFAULT_WINDOW_PER_WORKER = 4
#: How often a worker blocked by the speculation window looks again.
WINDOW_POLL_SECONDS = 0.0005

READY_TO_EXECUTE, EXECUTING, EXECUTED, ABORTING = range(4)

#: A task: (kind, txn_idx, incarnation) with kind EXECUTE or VALIDATE.
EXECUTE, VALIDATE = 0, 1
Task = tuple[int, int, int]


class Scheduler:
    """The collaborative execution/validation scheduler (paper Algorithms 4 and 5)."""

    def __init__(
        self, n: int, window: int | None = None, *, contention_fallback: bool = True,
        fallback_after: int | None = None,
    ) -> None:
        """``window``: the largest speculation window, or ``None`` for none (the paper as is).
        ``contention_fallback``: whether a contended block may be abandoned (see below); it
        applies only with a window. ``fallback_after``: the abort count that abandons it
        (default: 0.5% of the block, at least 32); a lever for tests and tuning."""
        self.n = n
        # Speculation window (not in the paper): execution tasks are handed out only below
        # frontier + window, where the frontier is the lowest transaction not EXECUTED. With
        # real parallel threads speculation is naturally bounded by the thread count; under
        # the GIL one thread can run for a whole switch interval (5 ms: hundreds of short
        # transactions) past a transaction another thread is still executing, and the first
        # incarnation of that one leaves no ESTIMATE to stop them, so they would all read
        # stale values and abort in a cascade when it commits.
        # The window adapts like TCP's congestion window: halved by every validation abort,
        # grown by one whenever a window's worth of transactions has passed the frontier.
        self.adaptive = window is not None
        self.max_window = n if window is None else max(1, window)
        self.window = self.max_window
        self._credit = 0
        self.frontier = 0
        self.execution_idx = 0
        self.validation_idx = 0
        self.num_active_tasks = 0
        self.done_marker = n == 0
        self.incarnation = [0] * n
        self.status = [READY_TO_EXECUTE] * n
        self.dependencies: list[list[int]] = [[] for _ in range(n)]
        self._lock = threading.Lock()
        # Idle workers sleep here instead of spinning (a spinning thread holds the GIL).
        self._changed = threading.Condition(self._lock)
        self._sleepers = 0
        self.aborts = 0  # aborted incarnations (failed validation or blocked on ESTIMATE)
        # Contention fallback (not in the paper; with a window only, and only when
        # ``contention_fallback``: the node's ``[scheduler] contention_fallback``): if aborted
        # incarnations reach 0.5% of the block (at least 32) while the frontier is still in the
        # block's first quarter, the block is contended enough to run nearly in order anyway and
        # the multi-version bookkeeping is pure overhead (15-20 us a transaction in Python), so the
        # run is abandoned and the block executed in order, which is what the paper's worst case
        # approaches. Later, re-running would waste more than it saves, so it never happens
        # then. Low-contention blocks stay far below the threshold (p2p over 1,000 accounts:
        # 0.2%).
        self.fallback_after = (
            (max(32, n // 200) if fallback_after is None else fallback_after)
            if self.adaptive and contention_fallback else None
        )
        self.abandoned = False

    def _count_abort(self) -> None:
        self.aborts += 1
        if (
            self.fallback_after is not None
            and self.aborts >= self.fallback_after
            and self.frontier < self.n // 4
        ):
            self.abandoned = True
            self.done_marker = True
            self._wake()

    def _wake(self) -> None:
        if self._sleepers:  # Condition.notify_all is Python code: skip it when nobody waits
            self._changed.notify_all()

    # Every method below runs under self._lock (the paper's atomics and per-txn mutexes).
    def _decrease_execution_idx(self, target: int) -> None:
        if target < self.execution_idx:
            self.execution_idx = target
        self._wake()

    def _decrease_validation_idx(self, target: int) -> None:
        if target < self.validation_idx:
            self.validation_idx = target
        self._wake()

    def _check_done(self) -> None:
        if (
            min(self.execution_idx, self.validation_idx) >= self.n
            and self.num_active_tasks == 0
        ):
            self.done_marker = True
            self._wake()

    def _try_incarnate(self, idx: int) -> Task | None:
        if idx < self.n and self.status[idx] == READY_TO_EXECUTE:
            self.status[idx] = EXECUTING
            return (EXECUTE, idx, self.incarnation[idx])
        self.num_active_tasks -= 1
        return None

    def _advance_frontier(self) -> None:
        f, status, n = self.frontier, self.status, self.n
        while f < n and status[f] == EXECUTED:
            f += 1
        if f != self.frontier:
            self._credit += f - self.frontier
            if self._credit >= self.window and self.window < self.max_window:
                self.window += 1
                self._credit = 0
            self.frontier = f  # window-blocked workers poll (see next_task): no notify

    def _next_version_to_execute(self) -> Task | None:
        if self.execution_idx >= self.n:
            self._check_done()
            return None
        self.num_active_tasks += 1
        idx = self.execution_idx
        self.execution_idx += 1
        return self._try_incarnate(idx)

    def _next_version_to_validate(self) -> Task | None:
        if self.validation_idx >= self.n:
            self._check_done()
            return None
        self.num_active_tasks += 1
        idx = self.validation_idx
        self.validation_idx += 1
        if idx < self.n and self.status[idx] == EXECUTED:
            return (VALIDATE, idx, self.incarnation[idx])
        self.num_active_tasks -= 1
        return None

    def next_task(self) -> Task | None:
        """A task for an idle worker; ``None`` when done (after waiting for work to appear)."""
        with self._lock:
            while not self.done_marker:
                if self.validation_idx < self.execution_idx:
                    task = self._next_version_to_validate()
                elif self.n > self.execution_idx >= self.frontier + self.window:
                    task = None  # wait for the frontier to move (see __init__)
                else:
                    task = self._next_version_to_execute()
                if task is not None:
                    return task
                if min(self.execution_idx, self.validation_idx) >= self.n:
                    # Nothing to take until an active task finishes or lowers an index.
                    self._sleepers += 1
                    self._changed.wait(0.01)
                    self._sleepers -= 1
                elif self.n > self.execution_idx >= self.frontier + self.window:
                    # Blocked by the window: poll instead of being notified at every frontier
                    # step. At a hot key the window is 1 and one thread does the work; waking
                    # the other at each transaction would cost a GIL hand-off per transaction.
                    self._changed.wait(WINDOW_POLL_SECONDS)
            return None

    def add_dependency(self, txn_idx: int, blocking: int) -> bool:
        """Park ``txn_idx`` until ``blocking`` finishes; False if it already has (retry now)."""
        with self._lock:
            if self.status[blocking] == EXECUTED:
                return False
            self.status[txn_idx] = ABORTING
            self.dependencies[blocking].append(txn_idx)
            self.num_active_tasks -= 1
            self._count_abort()
            return True

    def _set_ready_status(self, idx: int) -> None:
        self.incarnation[idx] += 1
        self.status[idx] = READY_TO_EXECUTE

    def finish_execution(self, idx: int, incarnation: int, wrote_new_location: bool) -> Task | None:
        with self._lock:
            self.status[idx] = EXECUTED
            if idx == self.frontier:
                self._advance_frontier()
            deps, self.dependencies[idx] = self.dependencies[idx], []
            if deps:
                for d in deps:
                    self._set_ready_status(d)
                self._decrease_execution_idx(min(deps))
            if self.validation_idx > idx:
                if wrote_new_location:
                    self._decrease_validation_idx(idx)
                else:
                    return (VALIDATE, idx, incarnation)
            self.num_active_tasks -= 1
            self._wake()
            return None

    def try_validation_abort(self, idx: int, incarnation: int) -> bool:
        with self._lock:
            if self.incarnation[idx] == incarnation and self.status[idx] == EXECUTED:
                self.status[idx] = ABORTING
                if idx < self.frontier:
                    self.frontier = idx
                if self.adaptive:
                    self.window = max(1, self.window // 2)
                    self._credit = 0
                self._count_abort()
                return True
            return False

    def finish_validation(self, idx: int, aborted: bool) -> Task | None:
        with self._lock:
            if aborted:
                self._set_ready_status(idx)
                self._decrease_validation_idx(idx + 1)
                if self.execution_idx > idx:
                    task = self._try_incarnate(idx)
                    if task is not None:
                        return task
                    self._wake()
                    return None
            self.num_active_tasks -= 1
            self._wake()
            return None


# -- execution -----------------------------------------------------------------------------------



class _Blocked(BaseException):
    """Raised through the executor when a read meets an ESTIMATE. BaseException so executors
    that catch ``Exception`` around state access cannot turn it into an outcome."""

    def __init__(self, blocking: int) -> None:
        super().__init__(blocking)
        self.blocking = blocking


class _MVView:
    """The state view of one incarnation: MVMemory below ``idx``, else storage; records reads."""

    __slots__ = ("_idx", "_mv", "_storage", "reads")

    def __init__(self, mv: MVMemory, idx: int, storage: StateReader) -> None:
        self._mv = mv
        self._idx = idx
        self._storage = storage
        self.reads: list[tuple[bytes, Version]] = []

    def get(self, key: bytes) -> bytes | None:
        try:
            r = self._mv.read(key, self._idx)
        except ReadError as e:
            raise _Blocked(e.blocking) from None
        if r is None:
            self.reads.append((key, None))
            return self._storage.get(key)
        self.reads.append((key, r[0]))
        return r[1]


@dataclass(slots=True)
class _Raised:
    """The executor raised (a bug, not an outcome): re-raised if this incarnation commits."""

    error: BaseException


class AptosBlockSTM:
    """Block-STM over ``workers`` threads (the calling thread when ``workers == 1``).

    Block-STM runs on threads only: its multi-version memory is read at every access, which a
    worker process could only do by a round trip to the coordinator (see
    docs/scheduler-strategies.md).
    """

    name = "AptosBlockSTM"

    def __init__(
        self, executor: TxExecutor, workers: int = 1, *, window: int | None = None,
        contention_fallback: bool = True, fallback_after: int | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.executor = executor
        self.workers = workers
        #: Speculation window (see :class:`Scheduler`); ``0`` disables it (the paper as is).
        self.window = DEFAULT_WINDOW_PER_WORKER * workers if window is None else window
        #: Whether a heavily contended block is abandoned and run in order (see
        #: :class:`Scheduler`); False always finishes the Block-STM run (``[scheduler]
        #: contention_fallback = false``).
        self.contention_fallback = contention_fallback
        #: The abort count that abandons a block (see :class:`Scheduler`; None: its default).
        self.fallback_after = fallback_after
        self._numbers: dict[int, int] = {}  # pool thread ident -> worker number (1..workers)
        self._numbers_lock = threading.Lock()
        # Persistent threads: executors keep per-thread state (the VM's warm instance pools),
        # which fresh threads per block would rebuild cold every block.
        self._pool: ThreadPoolExecutor | None = None

    def execute_block(
        self, txs: Sequence[Transaction], state: StateReader, ctx: BlockContext
    ) -> BlockExecution:
        t0 = time.perf_counter()
        n = len(txs)
        mv = MVMemory(n)
        sched = Scheduler(n, self.window or None, contention_fallback=self.contention_fallback,
                          fallback_after=self.fallback_after)
        results: list[TxOutcome | _Raised | None] = [None] * n
        # per worker run: [executions, busy seconds, worker number (0: the coordinator)]
        tallies: list[list[float]] = []
        execute = self.executor.execute

        def try_execute(idx: int, incarnation: int, tally: list[float]) -> Task | None:
            while True:
                view = _MVView(mv, idx, state)
                t1 = time.perf_counter()
                o: TxOutcome | _Raised
                try:
                    out = execute(txs[idx], view, ctx)
                    o, writes = out, dict(out.writes)
                except _Blocked as b:
                    tally[0] += 1
                    tally[1] += time.perf_counter() - t1
                    if not sched.add_dependency(idx, b.blocking):
                        continue  # the blocking transaction finished meanwhile: retry now
                    return None
                except Exception as e:
                    o, writes = _Raised(e), {}
                tally[0] += 1
                tally[1] += time.perf_counter() - t1
                results[idx] = o
                wrote_new = mv.record(idx, incarnation, view.reads, writes)
                return sched.finish_execution(idx, incarnation, wrote_new)

        def needs_reexecution(idx: int, incarnation: int) -> Task | None:
            valid = mv.validate_read_set(idx)
            aborted = not valid and sched.try_validation_abort(idx, incarnation)
            if aborted:
                mv.convert_writes_to_estimates(idx)
            return sched.finish_validation(idx, aborted)

        errors: list[BaseException] = []

        def worker(on_pool: bool) -> None:
            tally = [0.0, 0.0, float(self._number() if on_pool else COORDINATOR)]
            tallies.append(tally)
            try:
                task: Task | None = None
                while True:
                    if task is None:
                        task = sched.next_task()
                        if task is None:
                            return
                    kind, idx, inc = task
                    if kind == EXECUTE:
                        task = try_execute(idx, inc, tally)
                    else:
                        task = needs_reexecution(idx, inc)
            except BaseException as e:  # a scheduler bug: stop everyone, report it
                errors.append(e)
                with sched._lock:
                    sched.done_marker = True
                    sched._changed.notify_all()

        if self.workers == 1 or n < 2:
            worker(False)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="blockstm")
                self._numbers = {}
            futures = [self._pool.submit(worker, True) for _ in range(min(self.workers, n))]
            for f in futures:
                f.result()
        if errors:
            raise errors[0]
        if sched.abandoned:
            return self._sequential(txs, state, ctx, t0, tallies, sched.aborts)

        outcomes: list[TxOutcome] = []
        for r in results:
            if isinstance(r, _Raised):
                raise r.error
            assert r is not None
            outcomes.append(r)
        stats = BlockStats(
            strategy=self.name, workers=self.workers, txs=n,
            exec_seconds=time.perf_counter() - t0,
            serial_equivalent_seconds=sum(t[1] for t in tallies),
            executions=int(sum(t[0] for t in tallies)), aborts=sched.aborts,
            path=PATH_STRATEGY,
        )
        self._account(stats, tallies)
        return BlockExecution(tuple(outcomes), fold_writes(outcomes), stats)

    def _number(self) -> int:
        """This pool thread's worker number (1..workers, stable while the pool lives)."""
        ident = threading.get_ident()
        k = self._numbers.get(ident)
        if k is None:
            with self._numbers_lock:
                k = self._numbers.setdefault(ident, len(self._numbers) + 1)
        return k

    def _account(
        self, stats: BlockStats, tallies: list[list[float]], in_order: int = 0
    ) -> None:
        """Executions per worker (``in_order`` more on the coordinator) and worker runs."""
        per = [0] * (1 + (self.workers if self.workers > 1 else 0))
        per[COORDINATOR] += in_order
        for execs, _busy, number in tallies:
            k = int(number)
            while k >= len(per):
                per.append(0)
            per[k] += int(execs)
            if k != COORDINATOR and execs:
                stats.chunks += 1
        stats.worker_txs = per

    def _sequential(
        self, txs: Sequence[Transaction], state: StateReader, ctx: BlockContext, t0: float,
        tallies: list[list[float]], aborts: int,
    ) -> BlockExecution:
        """The contention fallback: the whole block in order over a plain overlay, exactly as
        Serial does (the abandoned speculative work is discarded)."""
        view = Overlay(state)
        t1 = time.perf_counter()
        outcomes = run_in_order(self.executor, txs, view, ctx)
        serial = time.perf_counter() - t1
        stats = BlockStats(
            strategy=self.name, workers=self.workers, txs=len(txs),
            exec_seconds=time.perf_counter() - t0,
            serial_equivalent_seconds=sum(t[1] for t in tallies) + serial,
            executions=int(sum(t[0] for t in tallies)) + len(txs), aborts=aborts,
            sequential_fallback=True, path=PATH_CONTENTION_FALLBACK,
        )
        self._account(stats, tallies, in_order=len(txs))
        return BlockExecution(tuple(outcomes), dict(view.writes), stats)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

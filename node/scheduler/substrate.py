"""Where transactions run: inline, on a thread pool, or on a pool of worker processes.

A *substrate* runs chunks of transactions for a coordinating strategy (Sealevel, the object DAG):
the strategy decides *which* transactions may run together and against which view; the substrate
only runs them and hands back outcomes. All three substrates give identical outcomes; they differ
in what scales on CPython (see docs/scheduler-strategies.md for the measurements):

* ``inline``: the coordinator's own thread (``workers == 1``);
* ``threads``: a thread pool sharing the coordinator's view. Scales only when the executor
  releases the GIL (unicorn emulation, hashing); Python-level executors do not scale;
* ``processes``: persistent worker processes, each building its executor from a picklable
  *executor factory*. The coordinator ships each transaction with the values of the keys it
  declared (prefetched from the view at dispatch time, which is exactly the state the
  transaction must see) and gets compact outcomes back. A read of a key that was not shipped
  makes the worker hand the transaction back, and the coordinator runs it itself.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from node.core import keys
from node.core.execution import BlockContext, Event, StateReader, TxExecutor, TxOutcome, TxStatus
from node.core.tx import Transaction

#: Builds a TxExecutor inside a worker process. Must be picklable: a module-level function or a
#: small dataclass with ``__call__`` (it is sent to each worker once, at start).
ExecutorFactory = Callable[[], TxExecutor]

SubstrateKind = Literal["threads", "processes"]
SUBSTRATES: tuple[SubstrateKind, ...] = ("threads", "processes")

#: One transaction to run: (block index, transaction, every key it declared).
Item = tuple[int, Transaction, tuple[bytes, ...]]


#: Worker number of the coordinator (the thread that called ``execute_block``) in
#: ``ChunkResult.worker`` and ``BlockStats.worker_txs``.
COORDINATOR = 0


@dataclass(slots=True)
class ChunkResult:
    """Outcomes of one chunk. An outcome of ``None`` means the worker could not run the
    transaction (it read a key that was not shipped, or the executor raised): the coordinator
    must run it itself, against the view the chunk was dispatched with.

    ``worker`` says who ran it: :data:`COORDINATOR` (0), or a worker thread or process numbered
    from 1 (stable for the substrate's life)."""

    outcomes: list[tuple[int, TxOutcome | None]]
    busy_seconds: float
    worker: int = COORDINATOR


class WorkerTally:
    """Per-block accounting of where transactions ran (``BlockStats.worker_txs``, ``chunks``,
    ``handed_back``), for a coordinator and ``workers`` other workers."""

    __slots__ = ("chunks", "handed_back", "txs")

    def __init__(self, workers: int) -> None:
        self.txs = [0] * (1 + workers)
        self.chunks = 0
        self.handed_back = 0

    def chunk(self, res: ChunkResult) -> None:
        """Count a finished chunk: its executed transactions to its worker; handed-back ones
        are counted when the coordinator runs them (:meth:`ran_here`)."""
        ran = sum(1 for _, o in res.outcomes if o is not None)
        if res.worker != COORDINATOR:
            self.chunks += 1
            self.handed_back += len(res.outcomes) - ran
        self._add(res.worker, ran)

    def ran_here(self, n: int = 1) -> None:
        """``n`` transactions executed on the coordinator outside any chunk."""
        self.txs[COORDINATOR] += n

    def _add(self, worker: int, n: int) -> None:
        while worker >= len(self.txs):
            self.txs.append(0)
        self.txs[worker] += n


class Substrate(Protocol):
    """Runs chunks of transactions; at most ``slots`` chunks are in flight at a time, on
    ``workers`` workers besides the coordinator (0 for inline)."""

    kind: str
    slots: int
    workers: int
    #: Smallest chunk worth dispatching: a smaller set of transactions costs more to hand to
    #: a worker (a thread wake-up, or a pipe round trip) than to run on the coordinator.
    min_chunk: int

    def idle(self) -> int:
        """Free slots (chunks that may be started now)."""
        ...

    def start(self, items: Sequence[Item], view: StateReader, ctx: BlockContext) -> None:
        """Start running ``items`` against ``view``; needs a free slot."""
        ...

    def wait_any(self) -> list[ChunkResult]:
        """Block until at least one started chunk has finished; return every finished chunk."""
        ...

    def close(self) -> None: ...


def run_chunk(
    executor: TxExecutor, items: Sequence[Item], view: StateReader, ctx: BlockContext
) -> ChunkResult:
    """Run ``items`` on the calling thread (what :class:`Inline` does)."""
    t0 = time.perf_counter()
    execute = executor.execute
    out: list[tuple[int, TxOutcome | None]] = [(i, execute(tx, view, ctx)) for i, tx, _ in items]
    return ChunkResult(out, time.perf_counter() - t0)


class Inline:
    """Runs each chunk on the calling thread, at ``start``."""

    kind = "inline"
    slots = 1
    workers = 0
    min_chunk = 1

    def __init__(self, executor: TxExecutor) -> None:
        self._executor = executor
        self._done: list[ChunkResult] = []

    def idle(self) -> int:
        return 0 if self._done else 1

    def start(self, items: Sequence[Item], view: StateReader, ctx: BlockContext) -> None:
        self._done.append(run_chunk(self._executor, items, view, ctx))

    def wait_any(self) -> list[ChunkResult]:
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        pass


class Threads:
    """A thread pool of ``workers`` threads sharing one executor instance (which must be
    thread-safe, as the TxExecutor protocol requires). Threads are created on first use."""

    kind = "threads"
    min_chunk = 8

    def __init__(self, executor: TxExecutor, workers: int) -> None:
        self._executor = executor
        self.slots = workers
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._running: set[Future[ChunkResult]] = set()
        self._numbers: dict[int, int] = {}  # pool thread ident -> worker number (1..workers)
        self._numbers_lock = threading.Lock()

    def idle(self) -> int:
        return self.slots - len(self._running)

    def _number(self) -> int:
        ident = threading.get_ident()
        n = self._numbers.get(ident)
        if n is None:
            with self._numbers_lock:
                n = self._numbers.setdefault(ident, len(self._numbers) + 1)
        return n

    def _run(self, items: Sequence[Item], view: StateReader, ctx: BlockContext) -> ChunkResult:
        res = run_chunk(self._executor, items, view, ctx)
        res.worker = self._number()
        return res

    def start(self, items: Sequence[Item], view: StateReader, ctx: BlockContext) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.slots, thread_name_prefix="dubhe-sched")
            self._numbers = {}
        self._running.add(self._pool.submit(self._run, items, view, ctx))

    def wait_any(self) -> list[ChunkResult]:
        done, pending = wait(self._running, return_when=FIRST_COMPLETED)
        self._running = set(pending)
        return [f.result() for f in done]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


# -- processes ---------------------------------------------------------------------------------
class _Missing(BaseException):
    """A worker read a key that was not shipped. BaseException so that executors which catch
    ``Exception`` around their syscalls do not turn it into an outcome."""


class _Prefetched:
    """The worker-side state view: exactly the shipped values, nothing else."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[bytes, bytes | None]) -> None:
        self._values = values

    def get(self, key: bytes) -> bytes | None:
        try:
            return self._values[key]
        except KeyError:
            raise _Missing() from None


#: TxOutcome as plain tuples: pickles several times faster than the dataclasses.
_Wire = tuple[
    int, int, bytes, tuple[tuple[bytes, tuple[bytes, ...], bytes], ...],
    tuple[tuple[bytes, bytes | None], ...], tuple[bytes, ...], str,
]


def _encode(o: TxOutcome) -> _Wire:
    return (
        int(o.status), o.gas_used, o.return_data,
        tuple((e.address, e.topics, e.data) for e in o.events),
        tuple(o.writes.items()), o.reads, o.reason,
    )


_STATUS = {int(s): s for s in TxStatus}


def _decode(w: _Wire) -> TxOutcome:
    st, gas, ret, evs, writes, reads, reason = w
    events = tuple(Event(a, t, d) for a, t, d in evs) if evs else ()
    return TxOutcome(_STATUS[st], gas, ret, events, dict(writes), reads, reason)


def _worker_main(conn: multiprocessing.connection.Connection, factory: ExecutorFactory) -> None:
    """Worker process: build the executor once, then run chunks until told to stop (``None``)."""
    executor = factory()
    execute = executor.execute
    while True:
        msg = conn.recv()
        if msg is None:
            return
        ctx, items = msg
        t0 = time.perf_counter()
        out: list[tuple[int, _Wire | None]] = []
        for i, tx, values in items:
            try:
                out.append((i, _encode(execute(tx, _Prefetched(values), ctx))))
            except (_Missing, Exception):
                # Hand it back: the coordinator runs it against the real view (and raises the
                # executor's exception there, where Serial would raise it too).
                out.append((i, None))
        conn.send((out, time.perf_counter() - t0))


class Processes:
    """Worker processes, each with its own executor from ``factory``, plus the coordinator.

    With ``workers`` workers, ``workers - 1`` are processes and the coordinator itself is the
    last one (``coordinator_executes``, the default): on CPython the coordinator is busy
    anyway (prefetching, pickling, decoding, committing cost it ~10-15 us per shipped
    transaction), so a separate process for every worker would need a core more than there
    are workers. The coordinator runs one chunk inline per :meth:`wait_any` cycle, once the
    processes' slots are full, so the processes are never starved by it for long.

    Each process has two slots: while it runs one chunk, the next one already waits in its pipe.
    A feeder thread per process does the sends: a coordinator blocked sending to a worker that
    is itself blocked sending a result back would deadlock.

    Started lazily on first use (so constructing a strategy is cheap); ``close()`` stops them.
    ``mp_context`` is a :mod:`multiprocessing` start method; ``forkserver`` (the default) is
    safe in a threaded server, ``fork`` starts fastest.
    """

    kind = "processes"
    min_chunk = 32
    PER_WORKER = 2

    def __init__(
        self,
        factory: ExecutorFactory,
        workers: int,
        *,
        executor: TxExecutor | None = None,
        mp_context: str = "forkserver",
        coordinator_executes: bool = True,
    ) -> None:
        self._factory = factory
        self._executor = executor if executor is not None else factory()
        self._inline = coordinator_executes and workers > 1
        self.workers = workers - 1 if self._inline else workers
        self.slots = self.workers * self.PER_WORKER + (1 if self._inline else 0)
        self._mp_context = mp_context
        self._procs: list[Any] = []
        self._conns: list[multiprocessing.connection.Connection] = []
        self._outboxes: list[queue.SimpleQueue[object]] = []
        self._feeders: list[threading.Thread] = []
        self._outstanding: list[int] = []
        self._done: list[ChunkResult] = []  # the coordinator's own chunk, until wait_any

    def _ensure_started(self) -> None:
        if self._procs:
            return
        mp: Any = multiprocessing.get_context(self._mp_context)
        # All workers first, then the feeder threads: a fork copies only the forking thread,
        # so no worker should be forked while a feeder might hold a lock.
        for _ in range(self.workers):
            parent, child = mp.Pipe()
            p = mp.Process(target=_worker_main, args=(child, self._factory), daemon=True)
            p.start()
            child.close()
            self._procs.append(p)
            self._conns.append(parent)
            self._outstanding.append(0)
        for k, conn in enumerate(self._conns):
            box: queue.SimpleQueue[object] = queue.SimpleQueue()
            feeder = threading.Thread(
                target=_feed, args=(box, conn), name=f"dubhe-sched-feed-{k}", daemon=True
            )
            feeder.start()
            self._outboxes.append(box)
            self._feeders.append(feeder)

    def idle(self) -> int:
        return self.slots - sum(self._outstanding) - len(self._done)

    def start(self, items: Sequence[Item], view: StateReader, ctx: BlockContext) -> None:
        self._ensure_started()
        if self.workers:
            k = min(range(self.workers), key=self._outstanding.__getitem__)
        if not self.workers or self._outstanding[k] >= self.PER_WORKER:
            # The processes are fed: the coordinator takes this chunk itself.
            self._done.append(run_chunk(self._executor, items, view, ctx))
            return
        get = view.get
        shipped = []
        for i, tx, may_read in items:
            values = {k: get(k) for k in may_read}
            # The contract code key is not declared but a VM reads it for every call; ship it
            # too so such reads do not bounce back to the coordinator.
            ck = keys.code_key(tx.to)
            values[ck] = get(ck)
            shipped.append((i, tx, values))
        self._outboxes[k].put((ctx, shipped))
        self._outstanding[k] += 1

    def wait_any(self) -> list[ChunkResult]:
        busy = [c for c, n in zip(self._conns, self._outstanding, strict=True) if n]
        results, self._done = self._done, []
        # With the coordinator's own chunk done, only collect what is ready; else block.
        ready = multiprocessing.connection.wait(busy, 0 if results else None) if busy else []
        for k, conn in enumerate(self._conns):
            if conn in ready:
                try:
                    out, secs = conn.recv()
                except EOFError:
                    raise RuntimeError("scheduler worker process died") from None
                self._outstanding[k] -= 1
                results.append(
                    ChunkResult(
                        [(i, None if w is None else _decode(w)) for i, w in out], secs, k + 1
                    )
                )
        return results

    def close(self) -> None:
        for box in self._outboxes:
            box.put(None)
        for t in self._feeders:
            t.join(timeout=5)
        for conn in self._conns:
            conn.close()
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        self._procs, self._conns, self._outboxes, self._feeders, self._outstanding = (
            [],
            [],
            [],
            [],
            [],
        )


def _feed(box: queue.SimpleQueue[object], conn: multiprocessing.connection.Connection) -> None:
    """Feeder thread: sends queued chunks to one worker; ``None`` tells it (and then us) to stop."""
    while True:
        msg = box.get()
        try:
            conn.send(msg)
        except (OSError, ValueError):
            return
        if msg is None:
            return


def make_substrate(
    executor: TxExecutor,
    workers: int,
    kind: SubstrateKind,
    factory: ExecutorFactory | None,
    *,
    mp_context: str = "forkserver",
    min_chunk: int | None = None,
) -> Substrate:
    """The substrate for ``workers`` workers of ``kind``; one worker always runs inline."""
    sub = _make(executor, workers, kind, factory, mp_context)
    if min_chunk is not None:
        sub.min_chunk = max(1, min_chunk)
    return sub


def _make(
    executor: TxExecutor,
    workers: int,
    kind: SubstrateKind,
    factory: ExecutorFactory | None,
    mp_context: str,
) -> Substrate:
    if workers <= 1:
        return Inline(executor)
    if kind == "threads":
        return Threads(executor, workers)
    if kind == "processes":
        if factory is None:
            raise ValueError(
                "substrate 'processes' needs executor_factory: a picklable callable that builds "
                "the TxExecutor inside each worker process"
            )
        return Processes(factory, workers, executor=executor, mp_context=mp_context)
    raise ValueError(f"unknown substrate {kind!r}; choose one of {', '.join(SUBSTRATES)}")


class SubstrateStrategy:
    """What SolanaParallel and SuiObjectDAG share: ``workers`` workers on a substrate, and
    ``close()`` to stop them. ``executor_factory`` is needed only for ``substrate="processes"``;
    ``min_chunk`` overrides the substrate's smallest dispatched chunk (tests use 1 to force every
    set onto workers)."""

    def __init__(
        self,
        executor: TxExecutor,
        workers: int = 1,
        *,
        executor_factory: ExecutorFactory | None = None,
        substrate: SubstrateKind = "threads",
        mp_context: str = "forkserver",
        min_chunk: int | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.executor = executor
        self.workers = workers
        self.substrate = make_substrate(
            executor, workers, substrate, executor_factory, mp_context=mp_context,
            min_chunk=min_chunk,
        )

    def close(self) -> None:
        self.substrate.close()

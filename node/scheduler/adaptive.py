"""Adaptive parallelism: a parallel strategy runs a block in parallel only where that pays.

Whether a parallel strategy beats block order depends on the machine and on the block's
transactions, not on the algorithm alone. On this project's reference machine (CPython, 2
cores) a short VM transfer spends most of its ~28 us in Python under the GIL: threads cannot
overlap that part, processes cost the coordinator 10-15 us per shipped transaction, and
Block-STM's bookkeeping 15-20 us; so every parallel strategy is *slower* than block order on
transfers (0.3-0.8x), while a compute-heavy contract, which spends >95% of its time inside
unicorn without the GIL, runs 1.8x faster on two workers. Production executors make the same
trade (aptos-core runs blocks sequentially below its concurrency threshold and falls back to
sequential execution when the parallel run cannot proceed).

:class:`Adaptive` wraps a parallel strategy. For each block, :class:`ParallelGate` (pure logic,
fed with measurements) chooses:

* **sequential**: the block runs in block order on the calling thread, exactly Serial's loop;
* **parallel**: the first ``sample`` transactions run in block order (timed: the block's own
  sequential cost per transaction), the rest through the wrapped strategy against the state they
  leave (timed too). The ratio is the block's measured *gain*.

The gate keeps an exponentially weighted gain. While it is >= 1 blocks run in parallel; below,
they run in order, and the gate probes parallel again after 4, 8, ... up to 128 blocks (a
losing probe costs one slower block, so probing costs a few percent at most), or at once when
the sequential cost per transaction has moved by more than 2x for 3 blocks in a row (the
workload changed: compute-heavy calls arrived; blocks of under 16 transactions do not count). The
first parallel block after start is a warm-up (worker pools start, VM
instances warm) and is not measured.

Outcomes never depend on the choice: both paths produce Serial's outcomes and write set (the
wrapped strategy is diff-tested against Serial; a block split at any point and run as "prefix
in order, then the rest" is Serial's computation). Only timing fields of ``BlockStats`` differ:
``mode`` says which path ran, ``gain`` what a probe measured.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from node.core.access import Overlay
from node.core.execution import (
    BlockContext,
    BlockExecution,
    BlockExecutor,
    BlockStats,
    StateReader,
    TxExecutor,
)
from node.core.tx import Transaction
from node.scheduler.serial import run_in_order

PARALLEL = "parallel"
SEQUENTIAL = "sequential"


@dataclass
class ParallelGate:
    """The decision rule of :class:`Adaptive`, free of clocks and threads (unit-testable).

    ``force`` pins the choice (``"parallel"`` or ``"sequential"``; tests and benchmarks).
    Call :meth:`decide` before a block and one of :meth:`observe_parallel` /
    :meth:`observe_sequential` after it.
    """

    force: str | None = None
    #: Smallest block run in parallel: below this, dispatch cannot pay for itself.
    min_txs: int = 16
    #: Share of a parallel block run in order first, to measure its sequential cost.
    sample_fraction: float = 1 / 32
    min_sample: int = 8
    max_sample: int = 256
    alpha: float = 0.5  # EWMA weight of the newest gain
    first_backoff: int = 4
    max_backoff: int = 128
    drift: float = 2.0  # a change of the sequential cost per tx by this factor ...
    drift_blocks: int = 3  # ... in this many blocks in a row triggers a probe

    gain: float | None = None
    warmed_up: bool = False
    probes: int = 0
    blocks: dict[str, int] = field(default_factory=lambda: {PARALLEL: 0, SEQUENTIAL: 0})
    _backoff: int = 0
    _countdown: int = 0
    _ref_cost: float | None = None  # sequential seconds per tx when the gain was measured
    _drifted: int = 0  # consecutive in-order blocks whose cost per tx drifted from _ref_cost

    def __post_init__(self) -> None:
        if self.force not in (None, PARALLEL, SEQUENTIAL):
            raise ValueError(
                f"force must be {PARALLEL!r}, {SEQUENTIAL!r} or None, not {self.force!r}"
            )
        self._backoff = self.first_backoff

    @property
    def settled(self) -> bool:
        """Whether the gate has measured a gain (its choices now follow measurements)."""
        return self.force is not None or self.gain is not None

    def sample_size(self, n: int) -> int:
        """Transactions of an ``n``-transaction parallel block to run in order first."""
        return max(self.min_sample, min(self.max_sample, int(n * self.sample_fraction)))

    def decide(self, n: int) -> str:
        """``"parallel"`` or ``"sequential"`` for a block of ``n`` transactions."""
        if self.force is not None:
            mode = self.force
        elif n < self.min_txs:
            mode = SEQUENTIAL
        elif self.gain is None or self.gain >= 1.0:
            mode = PARALLEL
        elif self._countdown <= 0:
            mode = PARALLEL  # probe
        else:
            self._countdown -= 1
            mode = SEQUENTIAL
        self.blocks[mode] += 1
        return mode

    def observe_parallel(self, seq_per_tx: float, par_per_tx: float) -> None:
        """A parallel block ran: ``seq_per_tx`` seconds per transaction for the sample in
        order, ``par_per_tx`` for the rest through the strategy."""
        if not self.warmed_up:
            self.warmed_up = True  # pools started, caches filled during this one: not measured
            return
        if seq_per_tx <= 0 or par_per_tx <= 0:
            return
        g = seq_per_tx / par_per_tx
        self.probes += 1
        self.gain = g if self.gain is None else self.alpha * g + (1 - self.alpha) * self.gain
        self._ref_cost = seq_per_tx
        self._drifted = 0
        if self.gain >= 1.0:
            self._backoff = self.first_backoff
        else:
            self._countdown = self._backoff
            self._backoff = min(self.max_backoff, self._backoff * 2)

    def observe_sequential(self, seq_per_tx: float, n: int) -> None:
        """A block of ``n`` transactions ran in order at ``seq_per_tx`` seconds per transaction."""
        ref = self._ref_cost
        if ref is None or n < self.min_txs or seq_per_tx <= 0:
            return  # small blocks are too noisy to say the workload changed
        if seq_per_tx > ref * self.drift or seq_per_tx * self.drift < ref:
            self._drifted += 1
            if self._drifted >= self.drift_blocks:
                # The workload changed since the gain was measured, and stayed changed: measure
                # again now. (Blocks that merely alternate between two mixes never get here, so
                # they cannot make the gate probe more often than its back-off allows.)
                self._countdown = 0
                self._drifted = 0
        else:
            self._drifted = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "force": self.force,
            "gain": None if self.gain is None else round(self.gain, 4),
            "probes": self.probes,
            "parallelBlocks": self.blocks[PARALLEL],
            "sequentialBlocks": self.blocks[SEQUENTIAL],
        }


class Adaptive:
    """Wraps a parallel ``BlockExecutor`` with a :class:`ParallelGate` (see the module docstring).

    ``executor`` must be the ``TxExecutor`` the wrapped strategy uses. ``name`` and ``workers``
    are the wrapped strategy's; ``inner`` is the strategy itself and ``gate`` its gate.
    """

    def __init__(
        self, inner: BlockExecutor, executor: TxExecutor, gate: ParallelGate | None = None
    ) -> None:
        self.inner = inner
        self.executor = executor
        self.gate = gate if gate is not None else ParallelGate()
        self.name = inner.name
        self.workers: int = getattr(inner, "workers", 1)

    def execute_block(
        self, txs: Sequence[Transaction], state: StateReader, ctx: BlockContext
    ) -> BlockExecution:
        t0 = time.perf_counter()
        n = len(txs)
        gate = self.gate
        mode = gate.decide(n)
        p = n if mode == SEQUENTIAL else min(n, gate.sample_size(n))
        view = Overlay(state)
        outcomes = run_in_order(self.executor, txs[:p] if p < n else txs, view, ctx)
        t1 = time.perf_counter()
        seq = t1 - t0
        if mode == SEQUENTIAL or p >= n:
            if p:
                gate.observe_sequential(seq / p, n)
            stats = BlockStats(
                strategy=self.name, workers=1, txs=n, exec_seconds=seq,
                serial_equivalent_seconds=seq, executions=n, mode=SEQUENTIAL, worker_txs=[n],
            )
            return BlockExecution(tuple(outcomes), view.writes, stats)
        rest = self.inner.execute_block(txs[p:], view, ctx)
        t2 = time.perf_counter()
        if p:
            gate.observe_parallel(seq / p, (t2 - t1) / (n - p))
        outcomes.extend(rest.outcomes)
        net = view.writes
        net.update(rest.writes)
        st = rest.stats
        st.txs = n
        st.executions += p
        st.serial_equivalent_seconds += seq
        st.exec_seconds = t2 - t0
        st.mode = PARALLEL
        if st.worker_txs:
            st.worker_txs[0] += p  # the sample ran in order on the coordinator
        st.gain = (seq / p) / ((t2 - t1) / (n - p)) if p else 0.0
        return BlockExecution(tuple(outcomes), net, st)

    def close(self) -> None:
        self.inner.close()

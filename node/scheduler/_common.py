"""Helpers shared by the strategies: declared sets, the net write set, the declaration guard
and the block's finish under it.

Nothing here schedules anything; each strategy module owns its algorithm.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from node.core import keys
from node.core.execution import (
    PATH_GUARD_RERUN,
    BlockContext,
    BlockExecution,
    BlockStats,
    StateReader,
    TxExecutor,
    TxOutcome,
)
from node.core.tx import Transaction
from node.scheduler.serial import Serial
from node.scheduler.substrate import WorkerTally

#: A transaction's declared keys as ``(read_only, writes)``: ``writes`` is
#: ``tx.declared_writes()`` and ``read_only + writes`` is ``tx.declared_reads()``, as tuples
#: (building frozensets costs more than the schedulers' few lookups in them).
Declared = tuple[tuple[bytes, ...], tuple[bytes, ...]]


def declared_sets(txs: Sequence[Transaction]) -> list[Declared]:
    """The declared keys of each transaction, computed once per block (see :data:`Declared`)."""
    out: list[Declared] = []
    implicit = keys.implicit_keys
    for tx in txs:
        ws = tx.write_set + implicit(tx.sender)
        rs = tx.read_set
        if rs:
            rs = tuple(k for k in rs if k not in ws)
        out.append((rs, ws))
    return out


def fold_writes(outcomes: Sequence[TxOutcome]) -> dict[bytes, bytes | None]:
    """The block's net write set: every outcome's writes applied in block order (later wins).

    Built exactly as Serial builds it, so the mapping (and even its key order) is identical.
    """
    net: dict[bytes, bytes | None] = {}
    for o in outcomes:
        net.update(o.writes)
    return net


def declarations_held(decl: Sequence[Declared], outcomes: Sequence[TxOutcome]) -> bool:
    """Whether the executions stayed inside what the declaration-based schedule assumed.

    Sealevel and the object DAG order transactions by their *declared* sets only. The executor
    enforces declarations for contract storage through ``TxState``, but an executor may touch
    system keys on its own (the VM reads the contract code key, say). That is harmless when no
    transaction of the block writes such a key, and the schedule is then still exact. This check
    returns False when an outcome wrote outside its declared writes, or read an undeclared key
    that some transaction of the block wrote; the strategy then re-runs the block in block order,
    so the result is Serial's whatever the executor does.
    """
    written: set[bytes] = set()
    for o in outcomes:
        written.update(o.writes)
    for (read_only, may_write), o in zip(decl, outcomes, strict=True):
        for k in o.writes:
            if k not in may_write:
                return False
        for k in o.reads:
            if k not in may_write and k not in read_only and k in written:
                return False
    return True


def finish_guarded(
    executor: TxExecutor,
    txs: Sequence[Transaction],
    state: StateReader,
    ctx: BlockContext,
    decl: Sequence[Declared],
    done: list[TxOutcome],
    net: dict[bytes, bytes | None],
    stats: BlockStats,
    tally: WorkerTally,
    t0: float,
) -> BlockExecution:
    """A declaration-scheduled block's result (Sealevel, the object DAG): ``done`` and ``net``
    as the strategy committed them when :func:`declarations_held`, else Serial's re-run of the
    block (``stats.path`` = ``PATH_GUARD_RERUN``, its executions and time added). Fills the
    worker accounting and ``exec_seconds`` (from ``t0``, a ``perf_counter`` reading)."""
    if not declarations_held(decl, done):
        # The executor touched undeclared system keys that the block also writes: the
        # schedule was not exact. Re-run in block order (Serial's result by construction).
        n = len(txs)
        again = Serial(executor).execute_block(txs, state, ctx)
        done, net = list(again.outcomes), dict(again.writes)
        stats.executions += n
        stats.serial_equivalent_seconds += again.stats.serial_equivalent_seconds
        stats.path = PATH_GUARD_RERUN
        tally.ran_here(n)
    stats.worker_txs, stats.chunks, stats.handed_back = (
        tally.txs, tally.chunks, tally.handed_back,
    )
    stats.exec_seconds = time.perf_counter() - t0
    return BlockExecution(tuple(done), net, stats)

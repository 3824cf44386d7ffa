"""SuiObjectDAG: dependency-driven execution over a DAG of objects (keys); no speculation.

Sui versions every object and runs a transaction as soon as every input object is available at
the version it needs (``TransactionManager``). Here the "objects" are state keys and the
versions are positions in the block: transaction i depends on

* the last earlier writer of every key it declares (read-after-write, write-after-write), and
* for every key it writes, every earlier reader since that writer (write-after-read),

and it is dispatched the moment all its dependencies have committed. Unlike Sealevel there are
no batch barriers: a long chain on a hot key does not hold back independent transactions.

Sui distinguishes *owned* objects (one owner, no consensus needed: the fast path) from *shared*
ones. In a block, a key that only one sender's transactions declare is owned: those
transactions are already ordered by the sender's nonce, so the only edges they add run along
that sender's chain. :func:`build` reports how many transactions touch owned keys only.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from node.core.access import Overlay
from node.core.execution import (
    PATH_STRATEGY,
    BlockContext,
    BlockExecution,
    BlockStats,
    StateReader,
    TxExecutor,
    TxOutcome,
)
from node.core.tx import Transaction
from node.scheduler._common import Declared, declared_sets, finish_guarded
from node.scheduler.substrate import Item, SubstrateStrategy, WorkerTally, run_chunk

#: Largest chunk handed to one worker at once (keeps workers fed while the DAG unfolds).
MAX_CHUNK = 512


@dataclass(slots=True)
class Dag:
    """The block's dependency DAG: successors, in-degrees, and its shape."""

    successors: list[list[int]]
    indegree: list[int]
    depth: int  # longest dependency chain, in transactions
    width: int  # most transactions on one level of the chain
    fast_path: int  # transactions whose keys are all owned (declared by one sender only)


def build(txs: Sequence[Transaction], decl: Sequence[Declared]) -> Dag:
    """Dependency DAG of ``txs`` from their declared sets (edges point forward in the block)."""
    n = len(decl)
    succ: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    level = [0] * n
    last_writer: dict[bytes, int] = {}
    readers: dict[bytes, list[int]] = {}
    owner: dict[bytes, bytes | None] = {}  # key -> its only sender, or None once shared
    for i, (read_only, writes) in enumerate(decl):
        deps: set[int] = set()
        for k in read_only:
            w = last_writer.get(k)
            if w is not None:
                deps.add(w)
            readers.setdefault(k, []).append(i)
        for k in writes:
            w = last_writer.get(k)
            if w is not None:
                deps.add(w)
            rs = readers.pop(k, None)
            if rs:
                deps.update(rs)
            last_writer[k] = i
        lv = 0
        for d in deps:
            succ[d].append(i)
            if level[d] + 1 > lv:
                lv = level[d] + 1
        level[i] = lv
        indeg[i] = len(deps)
        sender = txs[i].sender
        for ks in (read_only, writes):
            for k in ks:
                o = owner.get(k, sender)
                if o is None or o != sender:
                    owner[k] = None
                elif k not in owner:
                    owner[k] = sender
    fast = sum(
        1
        for ro, ws in decl
        if all(owner[k] is not None for k in ro) and all(owner[k] is not None for k in ws)
    )
    counts: dict[int, int] = {}
    for lv in level:
        counts[lv] = counts.get(lv, 0) + 1
    return Dag(succ, indeg, max(level, default=-1) + 1, max(counts.values(), default=0), fast)


class SuiObjectDAG(SubstrateStrategy):
    """Object-DAG execution over a substrate of ``workers`` threads or processes.

    ``executor_factory`` is needed only for ``substrate="processes"``. ``min_chunk`` overrides
    the substrate's smallest dispatched chunk (tests use 1 to force every set onto workers).
    ``last_dag`` keeps the
    last block's DAG shape (including the owned-only fast-path count) for diagnostics.
    """

    name = "SuiObjectDAG"

    def __init__(self, executor: TxExecutor, workers: int = 1, **kw: Any) -> None:
        super().__init__(executor, workers, **kw)
        self.last_dag: Dag | None = None

    def execute_block(
        self, txs: Sequence[Transaction], state: StateReader, ctx: BlockContext
    ) -> BlockExecution:
        t0 = time.perf_counter()
        n = len(txs)
        decl = declared_sets(txs)
        dag = build(txs, decl)
        self.last_dag = dag
        succ, indeg = dag.successors, list(dag.indegree)

        view = Overlay(state)
        outcomes: list[TxOutcome | None] = [None] * n
        ready = deque(i for i in range(n) if indeg[i] == 0)
        sub = self.substrate
        tally = WorkerTally(sub.workers)
        execute = self.executor.execute
        busy = 0.0
        committed = 0
        in_flight = 0
        min_chunk = sub.min_chunk
        while committed < n:
            # Dispatch: share big ready sets among the free slots.
            while len(ready) >= min_chunk and sub.idle():
                size = min(MAX_CHUNK, max(min_chunk, -(-len(ready) // sub.idle())))
                chunk: list[Item] = []
                for _ in range(min(size, len(ready))):
                    i = ready.popleft()
                    chunk.append((i, txs[i], decl[i][0] + decl[i][1]))
                sub.start(chunk, view, ctx)
                in_flight += 1
            if ready and len(ready) < min_chunk:
                # A few ready transactions (a dependency chain): run them here, now.
                items = [(i, txs[i], decl[i][0] + decl[i][1]) for i in ready]
                ready.clear()
                finished = [run_chunk(self.executor, items, view, ctx)]
            elif in_flight:
                finished = sub.wait_any()
                in_flight -= len(finished)
            else:
                raise AssertionError("object DAG stalled: no transaction ready")  # a bug
            # Commit what finished; a commit releases successors. Writes of one key commit in
            # block order (write-after-write edges), so the view is exact for every dispatch.
            for res in finished:
                busy += res.busy_seconds
                tally.chunk(res)
                for i, o in res.outcomes:
                    if o is None:  # handed back by a worker: run it here, same view
                        t1 = time.perf_counter()
                        o = execute(txs[i], view, ctx)
                        busy += time.perf_counter() - t1
                        tally.ran_here()
                    outcomes[i] = o
                    view.writes.update(o.writes)
                    committed += 1
                    for s in succ[i]:
                        indeg[s] -= 1
                        if indeg[s] == 0:
                            ready.append(s)

        done = [o for o in outcomes if o is not None]
        # Writes to one key committed in block order (write-after-write edges): Serial's map.
        net = view.writes
        stats = BlockStats(
            strategy=self.name, workers=self.workers, txs=n,
            serial_equivalent_seconds=busy, executions=n,
            dag_depth=dag.depth, dag_width=dag.width, path=PATH_STRATEGY,
        )
        return finish_guarded(self.executor, txs, state, ctx, decl, done, net, stats, tally, t0)

"""SolanaParallel: Sealevel-style batches of non-conflicting transactions, by declared sets.

Solana's runtime locks every account a transaction declares: many readers or one writer per key
(``AccountLocks``). A batch is a set of transactions whose locks are compatible; a transaction
whose locks conflict is deferred to a later batch. To keep block-order semantics, a transaction
is also deferred when it conflicts with an *earlier deferred* one, so conflicting transactions
always run in block order.

Scanning the block greedily batch after batch with those rules puts each transaction in batch
``1 + max(batch of the earlier transactions it conflicts with)``, so the batches are computed in
one pass (:func:`batches`). Each batch runs in parallel on the substrate against the state left
by the previous batches, then its writes are applied in block order. Pessimistic: no aborts, no
re-execution; parallelism comes only from the declared sets.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from node.core.access import Overlay
from node.core.execution import (
    PATH_STRATEGY,
    BlockContext,
    BlockExecution,
    BlockStats,
    StateReader,
    TxOutcome,
)
from node.core.tx import Transaction
from node.scheduler._common import Declared, declared_sets, finish_guarded
from node.scheduler.substrate import Item, SubstrateStrategy, WorkerTally, run_chunk


def batches(decl: Sequence[Declared]) -> list[int]:
    """Batch number of each transaction under Sealevel's read/write locks in block order.

    A writer of key k goes after the last writer of k and after every reader of k since then; a
    reader goes after the last writer.
    """
    last_write: dict[bytes, int] = {}
    last_read: dict[bytes, int] = {}  # highest batch holding a read lock (monotone per key)
    out: list[int] = []
    for read_only, writes in decl:
        b = 0
        for k in writes:
            w = last_write.get(k, -1) + 1
            r = last_read.get(k, -1) + 1
            if w > b:
                b = w
            if r > b:
                b = r
        for k in read_only:
            w = last_write.get(k, -1) + 1
            if w > b:
                b = w
        for k in writes:
            last_write[k] = b
        for k in read_only:
            if last_read.get(k, -1) < b:
                last_read[k] = b
        out.append(b)
    return out


class SolanaParallel(SubstrateStrategy):
    """Sealevel batches over a substrate of ``workers`` threads or processes.

    ``executor_factory`` is needed only for ``substrate="processes"``. ``min_chunk`` overrides
    the substrate's smallest dispatched chunk (tests use 1 to force every set onto workers).
    """

    name = "SolanaParallel"


    def execute_block(
        self, txs: Sequence[Transaction], state: StateReader, ctx: BlockContext
    ) -> BlockExecution:
        t0 = time.perf_counter()
        n = len(txs)
        decl = declared_sets(txs)
        level = batches(decl)
        groups: list[list[Item]] = [[] for _ in range(max(level, default=-1) + 1)]
        for i, tx in enumerate(txs):
            groups[level[i]].append((i, tx, decl[i][0] + decl[i][1]))

        view = Overlay(state)
        outcomes: list[TxOutcome | None] = [None] * n
        busy = 0.0
        sub = self.substrate
        tally = WorkerTally(sub.workers)
        execute = self.executor.execute
        for group in groups:
            if len(group) < 2 * sub.min_chunk:
                # Too small to split: run it here (a chain on a hot key is all such batches).
                results = [run_chunk(self.executor, group, view, ctx)]
            else:
                # Two contiguous chunks per slot: few, large messages, yet whoever finishes
                # first (a worker or the coordinator) picks up the rest, which balances them.
                size = max(sub.min_chunk, -(-len(group) // (2 * sub.slots)))
                chunks = [group[j : j + size] for j in range(0, len(group), size)]
                results = []
                for chunk in chunks:
                    while not sub.idle():
                        results.extend(sub.wait_any())
                    sub.start(chunk, view, ctx)
                while len(results) < len(chunks):
                    results.extend(sub.wait_any())
            for res in results:
                busy += res.busy_seconds
                tally.chunk(res)
                for i, o in res.outcomes:
                    outcomes[i] = o
            # Commit the batch in block order. A handed-back transaction runs here: its batch
            # mates wrote none of its declared keys, so the view is still the one it must see.
            for i, tx, _reads in group:
                o = outcomes[i]
                if o is None:
                    t1 = time.perf_counter()
                    o = outcomes[i] = execute(tx, view, ctx)
                    busy += time.perf_counter() - t1
                    tally.ran_here()
                view.writes.update(o.writes)

        done = [o for o in outcomes if o is not None]
        assert len(done) == n
        net = view.writes  # batches committed conflicting writes in block order: Serial's map
        stats = BlockStats(
            strategy=self.name, workers=self.workers, txs=n,
            serial_equivalent_seconds=busy, executions=n,
            deferrals=sum(1 for b in level if b > 0),
            dag_depth=len(groups), dag_width=max((len(g) for g in groups), default=0),
            path=PATH_STRATEGY,
        )
        return finish_guarded(self.executor, txs, state, ctx, decl, done, net, stats, tally, t0)

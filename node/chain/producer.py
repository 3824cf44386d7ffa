"""Block building: execute pending transactions, compute roots, commit atomically.

:meth:`BlockProducer.build` is synchronous and may run on a worker thread; it reads committed
state and writes only through :meth:`ChainStore.commit_block` (one atomic batch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from node.chain.mempool import PoolEntry
from node.core.access import Overlay
from node.core.block import ZERO_HASH, BlockHeader, list_root
from node.core.execution import BlockContext, BlockExecutor, BlockStats, Receipt, StateReader
from node.core.tx import Transaction
from node.state.chain_store import ChainStore, root_of


@dataclass(frozen=True, slots=True)
class ProducedBlock:
    header: BlockHeader
    txs: tuple[Transaction, ...]
    receipts: tuple[Receipt, ...]
    stats: BlockStats


class BlockProducer:
    def __init__(self, store: ChainStore, executor: BlockExecutor, *, chain_id: int) -> None:
        self.store = store
        self.executor = executor
        self.chain_id = chain_id

    def genesis(self, writes: Mapping[bytes, bytes | None], timestamp_ms: int) -> BlockHeader:
        """Commit block 0 with the genesis state, unless the store already has a chain."""
        head = self.store.head
        if head is not None:
            return head
        acc = self.store.next_accumulator(writes)

        header = BlockHeader(
            0, ZERO_HASH, timestamp_ms, list_root([]), list_root([]), root_of(acc), 0, 0
        )
        self.store.commit_block(header, [], [], writes, acc, [])
        return header

    def build(
        self,
        entries: list[PoolEntry],
        now_ms: int,
        system_writes: Mapping[bytes, bytes | None] | None = None,
    ) -> ProducedBlock:
        """Execute ``entries`` on top of committed state and commit the block.

        ``system_writes`` (admin deploys) apply at the start of the block, before its
        transactions, so a transaction in the same block already sees the new code."""
        parent = self.store.head
        if parent is None:
            raise RuntimeError("no genesis block: call genesis() first")
        number = parent.number + 1
        timestamp_ms = max(now_ms, parent.timestamp_ms + 1)
        txs = [e.tx for e in entries]
        ctx = BlockContext(number=number, timestamp_ms=timestamp_ms, chain_id=self.chain_id)
        base: StateReader = self.store
        if system_writes:
            overlay = Overlay(self.store)
            overlay.apply(system_writes)
            base = overlay
        result = self.executor.execute_block(txs, base, ctx)
        writes: Mapping[bytes, bytes | None] = result.writes
        if system_writes:
            writes = {**system_writes, **result.writes}
        receipts = [
            Receipt.from_outcome(tx.hash, number, i, o)
            for i, (tx, o) in enumerate(zip(txs, result.outcomes, strict=True))
        ]
        acc = self.store.next_accumulator(writes)

        header = BlockHeader(
            number=number,
            parent_hash=parent.hash,
            timestamp_ms=timestamp_ms,
            tx_root=list_root(tx.raw for tx in txs),
            receipts_root=list_root(r.encode() for r in receipts),
            state_root=root_of(acc),
            tx_count=len(txs),
            gas_used=sum(r.gas_used for r in receipts),
        )
        self.store.commit_block(
            header,
            [(tx.hash, tx.raw) for tx in txs],
            receipts,
            writes,
            acc,
            [e.seq for e in entries],
            stats=orjson.dumps(result.stats.as_dict()),
        )
        return ProducedBlock(header, tuple(txs), tuple(receipts), result.stats)

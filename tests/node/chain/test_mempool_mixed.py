"""Blocking and event-loop submissions of one transaction at once: the blocking call cannot wait
for a write the loop started, so it is refused with a clear error and changes nothing."""

from __future__ import annotations

import asyncio
import threading

import pytest
from timing import wait_until  # type: ignore[import-not-found]

from node.chain.mempool import Mempool
from node.core import keys
from node.core.tx import Signer, Transaction, sign_tx
from node.state.chain_store import ChainStore
from node.state.kv import MemoryKV

A = Signer.from_seed(b"mixed-a")
B = Signer.from_seed(b"mixed-b")


def tx(s: Signer, nonce: int) -> Transaction:
    return sign_tx(s, chain_id=9, nonce=nonce, to=keys.COUNTER_DEMO, method="increment",
                   args=b"k", write_set=(keys.storage_key(keys.COUNTER_DEMO, b"k"),))


class HeldKV(MemoryKV):
    """MemoryKV whose writes wait for ``gate``: a write stays in flight until it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.waiting = 0

    def write(self, ops: dict[bytes, bytes | None], *, sync: bool = False) -> None:  # type: ignore[override]
        self.waiting += 1
        self.gate.wait(30)
        self.waiting -= 1
        super().write(ops, sync=sync)


def test_a_blocking_submit_of_a_tx_the_loop_is_writing_is_refused_and_changes_nothing() -> None:
    async def main() -> None:
        kv = HeldKV()
        store = ChainStore(kv, sync_writes=True)
        p = Mempool(store, chain_id=9, max_txs=100)
        try:
            first = asyncio.create_task(p.asubmit_tx(tx(A, 0)))
            await wait_until(lambda: kv.waiting, what="the loop's write held")
            before = (p.next_nonce(B.address), len(p.pending(100)))
            # B's transaction comes first in the list: it must not be admitted either
            with pytest.raises(RuntimeError, match=r"being written by an event-loop submission"):
                p.submit_many([tx(B, 0), tx(A, 0)])
            assert (p.next_nonce(B.address), len(p.pending(100))) == before
            kv.gate.set()
            assert await first == tx(A, 0).hash
            # once durable, the blocking call acknowledges it like any pending transaction
            assert p.submit_many([tx(B, 0), tx(A, 0)]) == [tx(B, 0).hash, tx(A, 0).hash]
            assert [e.tx.hash for e in p.pending(100)] == [tx(A, 0).hash, tx(B, 0).hash]
        finally:
            kv.gate.set()
            store.close()

    asyncio.run(main())

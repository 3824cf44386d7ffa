"""What reading from the chain store costs, as its docstrings promise (a receipt: three keys
whatever the block's size; a block's receipts: 2 + 2 x transactions; a stored digest: one key),
what it answers when part of a block is missing, and the mempool's sequence numbers."""

from __future__ import annotations

import asyncio

import pytest

from node.core.block import ZERO_HASH, BlockHeader, execution_digest, list_root
from node.core.execution import Event, Receipt, TxStatus
from node.state.chain_store import ChainStore, root_of
from node.state.kv import MemoryKV


class CountingKV(MemoryKV):
    """MemoryKV counting the keys read."""

    def __init__(self) -> None:
        super().__init__()
        self.keys_read = 0

    def get(self, key: bytes) -> bytes | None:
        self.keys_read += 1
        return super().get(key)

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        self.keys_read += len(keys)
        return super().get_many(keys)


def block_of(store: ChainStore, n: int) -> list[Receipt]:
    """Commit genesis and block 1 with ``n`` transactions (gas 10 each, one event each)."""
    for number in (0, 1):
        hashes = [bytes([number * 100 + i + 1]) * 32 for i in range(n if number else 0)]
        rcs = [Receipt(h, number, i, TxStatus.SUCCESS, 10, b"", (Event(bytes(20), (), b""),), "")
               for i, h in enumerate(hashes)]
        acc = store.next_accumulator({})
        head = store.head
        header = BlockHeader(number, head.hash if head else ZERO_HASH, number, list_root([]),
                             list_root([]), root_of(acc), len(hashes), 0)
        store.commit_block(header, [(h, b"raw") for h in hashes], rcs, {}, acc, [])
    return rcs


@pytest.mark.parametrize("n", [1, 5, 40])
def test_reading_costs_what_the_docstrings_say(n: int) -> None:
    kv = CountingKV()
    store = ChainStore(kv)
    rcs = block_of(store, n)
    kv.keys_read = 0
    last = store.stored_receipt(rcs[-1].tx_hash)
    assert last is not None and (last.cumulative_gas, last.first_log_index) == (10 * n, n - 1)
    assert kv.keys_read == 3  # whatever the block's size
    kv.keys_read = 0
    assert store.block_receipts(1) is not None and kv.keys_read == 1 + 2 * n
    kv.keys_read = 0
    assert store.execution_digest(1) == execution_digest(rcs) and kv.keys_read == 1


def test_a_receipt_without_its_transaction_is_not_served() -> None:
    store = ChainStore(MemoryKV())
    rcs = block_of(store, 3)
    store.kv.write({b"T" + rcs[1].tx_hash: None})  # the location (and raw tx) is gone
    assert store.stored_receipt(rcs[1].tx_hash) is None
    assert store.stored_receipt(rcs[0].tx_hash) is not None
    with pytest.raises(LookupError, match=r"^block 1: a receipt or transaction is missing$"):
        store.block_receipts(1)
    store2 = ChainStore(MemoryKV())
    rcs2 = block_of(store2, 2)
    store2.kv.write({b"R" + rcs2[0].tx_hash: None})  # the receipt is gone, the location is not
    assert store2.stored_receipt(rcs2[0].tx_hash) is None
    with pytest.raises(LookupError):
        store2.block_receipts(1)


def test_sequence_numbers_go_on_after_the_last_one_ever_stored() -> None:
    store = ChainStore(MemoryKV())
    assert store.next_seq() == 0
    store.pool_put_many([(5, b"a"), (6, b"b")])
    assert store.next_seq() == 7
    store.pool_delete([5, 6])  # deleting the rows does not reuse their numbers
    assert store.next_seq() == 7 and ChainStore(store.kv).next_seq() == 7
    store.pool_put(7, b"c")
    assert store.next_seq() == 8 and store.pool_load() == [(7, b"c")]
    done = store.pool_put_many_async([])
    assert done.done() and done.result() is None and store.next_seq() == 8


def test_the_event_loop_form_of_pool_writes() -> None:
    async def main() -> None:
        store = ChainStore(MemoryKV())
        empty = store.pool_put_many_aio([])
        assert empty.done()
        await empty
        await store.pool_put_many_aio([(0, b"x"), (1, b"y")])
        assert store.pool_load() == [(0, b"x"), (1, b"y")] and store.next_seq() == 2

    asyncio.run(main())

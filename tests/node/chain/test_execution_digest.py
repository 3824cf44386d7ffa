"""The per-block execution digest: equal across strategies and block numbers for the same
ordered transactions, different when an outcome differs; the receipts root is not."""

from __future__ import annotations

import random

import pytest

from node.chain.mempool import PoolEntry
from node.chain.producer import BlockProducer, ProducedBlock
from node.core import keys
from node.core.block import execution_digest
from node.core.codec import pack_u64
from node.core.tx import Signer, Transaction, sign_tx
from node.scheduler import registry
from node.state.chain_store import ChainStore
from node.state.kv import MemoryKV
from node.vm.reference import MINT_AUTHORITY_SEED, ReferenceExecutor

CHAIN_ID = 7
AUTHORITY = Signer.from_seed(MINT_AUTHORITY_SEED)
SEED = 1717


def workload(seed: int, n_accounts: int = 12, n_txs: int = 160) -> list[Transaction]:
    """Mints, then transfers (some over the balance: reverts; some with an undeclared write)
    and increments of a hot counter slot: contention, reverts and failures."""
    rng = random.Random(seed)
    accts = [Signer.from_seed(b"digest-%d" % i) for i in range(n_accounts)]
    nonces: dict[bytes, int] = {}

    def nxt(s: Signer) -> int:
        nonces[s.address] = nonces.get(s.address, -1) + 1
        return nonces[s.address]

    txs = [sign_tx(AUTHORITY, chain_id=CHAIN_ID, nonce=nxt(AUTHORITY), to=keys.NATIVE_TOKEN,
                   method="mint", args=a.address + pack_u64(1_000),
                   write_set=(keys.balance_key(a.address),)) for a in accts]
    for _ in range(n_txs):
        a, b = rng.sample(accts, 2)
        if rng.random() < 0.3:
            slot = b"hot"
            txs.append(sign_tx(a, chain_id=CHAIN_ID, nonce=nxt(a), to=keys.COUNTER_DEMO,
                               method="increment", args=slot + pack_u64(rng.randrange(1, 5)),
                               write_set=(keys.storage_key(keys.COUNTER_DEMO, slot),)))
            continue
        ws = (keys.balance_key(a.address), keys.balance_key(b.address))
        if rng.random() < 0.05:
            ws = ws[:1]
        txs.append(sign_tx(a, chain_id=CHAIN_ID, nonce=nxt(a), to=keys.NATIVE_TOKEN,
                           method="transfer", args=b.address + pack_u64(rng.randrange(1, 1_200)),
                           write_set=ws))
    return txs


def run(strategy: str, txs: list[Transaction], empty_blocks_first: int) -> ProducedBlock:
    """``txs`` as one block on a fresh chain, after ``empty_blocks_first`` empty blocks."""
    store = ChainStore(MemoryKV())
    executor = ReferenceExecutor(AUTHORITY.address)
    block_executor = registry.create(strategy, executor, 2, adaptive=False,
                                     contention_fallback=False)
    try:
        producer = BlockProducer(store, block_executor, chain_id=CHAIN_ID)
        producer.genesis({}, 1_000)
        for i in range(empty_blocks_first):
            producer.build([], 2_000 + i)
        return producer.build([PoolEntry(i, tx) for i, tx in enumerate(txs)], 9_000)
    finally:
        block_executor.close()


@pytest.mark.parametrize("strategy", ["SolanaParallel", "AptosBlockSTM", "SuiObjectDAG"])
def test_digests_equal_across_strategies_and_block_numbers(strategy: str) -> None:
    print(f"workload seed {SEED}")
    txs = workload(SEED)
    serial = run("Serial", txs, empty_blocks_first=0)
    other = run(strategy, txs, empty_blocks_first=3)
    assert {r.status.name for r in serial.receipts} >= {"SUCCESS", "REVERT", "UNDECLARED_ACCESS"}
    assert other.header.number == serial.header.number + 3
    # the receipts root commits to block numbers: it differs; the digest does not
    assert other.header.receipts_root != serial.header.receipts_root
    d_serial = execution_digest(serial.receipts)
    assert execution_digest(other.receipts) == d_serial


def test_the_stored_digest_is_the_blocks_and_an_outcome_change_changes_it() -> None:
    txs = workload(SEED, n_txs=40)
    store = ChainStore(MemoryKV())
    producer = BlockProducer(store, registry.create("Serial", ReferenceExecutor(AUTHORITY.address),
                                                    1), chain_id=CHAIN_ID)
    producer.genesis({}, 1_000)
    b = producer.build([PoolEntry(i, tx) for i, tx in enumerate(txs)], 2_000)
    assert store.execution_digest(b.header.number) == execution_digest(b.receipts)
    assert store.execution_digest(0) == execution_digest([])  # genesis: no transactions
    assert store.execution_digest(9) is None
    # the same transactions with one fewer: a different execution, a different digest
    assert execution_digest(b.receipts[:-1]) != execution_digest(b.receipts)
    swapped = list(b.receipts)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    assert execution_digest(swapped) != execution_digest(b.receipts)  # order matters

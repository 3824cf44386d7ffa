"""Scenario: the same signed workload through nodes running each scheduler strategy ends in the
same state root, receipts and balances as the Serial node.

Description: `dubhe-node` processes (Serial, SolanaParallel, AptosBlockSTM, SuiObjectDAG on threads,
and SolanaParallel and SuiObjectDAG on worker processes, all with the parallel algorithm always
running; Block-STM behind the default adaptive gate; two workers each, RISC-V VM) receive an
identical, seeded workload of mints, transfers over a small
account set (contention) and counter increments, submitted in the same order while block
production is paused, then released. Role: determinism of the scheduler strategies end to end
(mempool, VM, strategy, commit).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from timing import wait_until  # type: ignore[import-not-found]

from lab.clients.rpc import HttpRpc
from lab.orchestrate.node_proc import NodeProcess, default_config
from node.core import keys
from node.core.codec import pack_u64
from node.core.hexutil import data
from node.core.tx import Signer, Transaction, sign_tx

#: (strategy, substrate, adaptive): every strategy on threads, and the two that can use worker
#: processes, with the parallel algorithm always running (``adaptive`` and Block-STM's
#: ``contention_fallback`` off); and one node as configured by default (behind the adaptive
#: gate, which may run blocks in order, and with the fallback on).
STRATEGIES = [
    ("Serial", "threads", False),
    ("SolanaParallel", "threads", False),
    ("AptosBlockSTM", "threads", False),
    ("SuiObjectDAG", "threads", False),
    ("SolanaParallel", "processes", False),
    ("SuiObjectDAG", "processes", False),
    ("AptosBlockSTM", "threads", True),
]
TOKEN = "scenario-token"
CHAIN = 0x44554248
SEED = 20261125


def accounts(seed: int, n: int) -> list[Signer]:
    return [Signer.from_seed(f"strat-{seed}-{i}".encode()) for i in range(n)]


def workload(seed: int, n_accounts: int = 600, n_transfers: int = 300) -> list[Transaction]:
    """Accounts are funded at genesis (so most senders are distinct and batches are wide enough
    to reach worker processes); a few mints, transfers (some over the balance: reverts; some with
    an undeclared write), and increments of one hot counter."""
    rng = random.Random(seed)
    auth = Signer.from_seed(b"mint-authority")
    accts = accounts(seed, n_accounts)
    nonces: dict[bytes, int] = {}

    def nxt(s: Signer) -> int:
        n = nonces.get(s.address, 0)
        nonces[s.address] = n + 1
        return n

    txs = [
        sign_tx(
            auth,
            chain_id=CHAIN,
            nonce=nxt(auth),
            to=keys.NATIVE_TOKEN,
            method="mint",
            args=a.address + pack_u64(10_000),
            write_set=(keys.balance_key(a.address),),
        )
        for a in accts[:5]
    ]
    for _ in range(n_transfers):
        a, b = rng.sample(accts, 2)
        if rng.random() < 0.05:
            slot = b"hot"
            txs.append(
                sign_tx(
                    a,
                    chain_id=CHAIN,
                    nonce=nxt(a),
                    to=keys.COUNTER_DEMO,
                    method="increment",
                    args=slot + pack_u64(rng.randrange(1, 5)),
                    write_set=(keys.storage_key(keys.COUNTER_DEMO, slot),),
                )
            )
            continue
        amount = rng.randrange(1, 12_000)  # sometimes more than the balance: a revert
        ws = (keys.balance_key(a.address), keys.balance_key(b.address))
        if rng.random() < 0.05:
            ws = ws[:1]  # undeclared write: fails identically everywhere
        txs.append(sign_tx(a, chain_id=CHAIN, nonce=nxt(a), to=keys.NATIVE_TOKEN, method="transfer",
                           args=b.address + pack_u64(amount), write_set=ws))
    return txs


async def run_node(
    tmp: Path, strategy: str, substrate: str, adaptive: bool, txs: list[Transaction]
) -> tuple[str, list[dict[str, object]]]:
    wd = tmp / f"{strategy}-{substrate}-{'gated' if adaptive else 'always'}"
    funded = {"0x" + a.address.hex(): 10_000 for a in accounts(SEED, 600)}
    cfg = default_config(
        wd,
        scheduler={
            "strategy": strategy,
            "worker_threads": 2,
            "substrate": substrate,
            "adaptive": adaptive,
            "contention_fallback": adaptive,
        },
        security={"admin_token": TOKEN},
        node={"block_time_ms": 100, "genesis_balances": funded},
    )
    node = NodeProcess(wd, cfg)
    await node.astart()
    try:
        async with HttpRpc(node.rpc_url, token=TOKEN) as rpc:
            await rpc.call("dubhe_admin_pauseProduction")
            for tx in txs:
                await rpc.call("dubhe_sendTransaction", data(tx.raw))
            await rpc.call("dubhe_admin_resumeProduction")

            async def drained() -> bool:
                return bool((await rpc.call("dubhe_status"))["mempoolSize"] == 0)

            await wait_until(drained, what="every transaction included")
            receipts = [await rpc.call("dubhe_getReceipt", data(tx.hash)) for tx in txs]
            root = (await rpc.call("dubhe_status"))["stateRoot"]
    finally:
        await node.astop()
    for r in receipts:
        assert r is not None
        r.pop("blockNumber")  # block boundaries may differ between runs; outcomes may not
        r.pop("index")
    return root, receipts


@pytest.mark.timeout(300)
async def test_every_strategy_matches_serial(tmp_path: Path) -> None:
    print(f"workload seed {SEED}")
    txs = workload(SEED)
    results = {s: await run_node(tmp_path, *s, txs) for s in STRATEGIES}
    serial_root, serial_receipts = results[STRATEGIES[0]]
    statuses = {r["status"] for r in serial_receipts}
    assert {"success", "revert", "undeclared_access"} <= statuses, (
        statuses
    )  # the workload exercises them
    for s in STRATEGIES[1:]:
        root, receipts = results[s]
        for i, (a, b) in enumerate(zip(serial_receipts, receipts, strict=True)):
            assert a == b, f"{s}: receipt {i} differs from Serial: {a} != {b}"
        assert root == serial_root, f"{s}: state root differs from Serial"

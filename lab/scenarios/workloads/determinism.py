"""``determinism``: the same seeded workload through nodes running each scheduler strategy, each
behind its own lab (nginx, links), must end in byte-identical receipts and state roots.

The case's own lab runs the first strategy; the others get labs of their own (the same spec with
``node.scheduler`` overridden, the adaptive gate off so the parallel algorithm always runs).
Each node gets the same signed transactions in the same order over https through nginx while
its block production is paused (admin calls), then production resumes and every receipt is read.
Receipts are compared without ``blockNumber``, ``index`` and ``blockStats`` (block boundaries
may differ; outcomes may not); the block stats prove which path ran (:func:`_parallel`).
"""

from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lab.clients.rpc import HttpRpc
from lab.orchestrate.lab import Lab
from lab.scenarios.context import RunContext
from lab.scenarios.fleet import batch_all
from lab.scenarios.waits import poll
from lab.scenarios.workloads import workload
from node.core import keys
from node.core.codec import pack_u64
from node.core.hexutil import data, parse_qty
from node.core.tx import Signer, Transaction, sign_tx

Strategy = Literal["Serial", "SolanaParallel", "AptosBlockSTM", "SuiObjectDAG"]
ALL: tuple[Strategy, ...] = ("Serial", "SolanaParallel", "AptosBlockSTM", "SuiObjectDAG")


class DeterminismParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    strategies: list[Strategy] = Field(default_factory=lambda: list(ALL), min_length=2)
    workers: int = Field(2, ge=2, le=64)
    substrate: Literal["threads", "processes"] = "threads"
    accounts: int = Field(40, ge=2, le=10_000)
    transfers: int = Field(200, ge=1, le=100_000)


def _figures(p: DeterminismParams) -> list[str]:
    out = ["determinism.receipts_equal", "determinism.roots_equal", "determinism.txs",
           "determinism.statuses", "determinism.parallel_strategies"]
    for s in p.strategies:
        out += [f"{s}.receipts_equal", f"{s}.root_equal", f"{s}.parallel_blocks",
                f"{s}.fallback_blocks", f"{s}.blocks", f"{s}.included"]
    return out


def make_workload(seed: int, chain_id: int, n_accounts: int, n_transfers: int) -> list[Transaction]:
    """Mints to every account (by the dev mint authority), then seeded transfers among them
    (some over the balance: reverts; some with an undeclared write) and increments of one hot
    counter: contention, reverts and failures, identical everywhere."""
    rng = random.Random(seed)
    auth = Signer.from_seed(b"mint-authority")
    accts = [Signer.from_seed(f"determinism-{seed}-{i}".encode()) for i in range(n_accounts)]
    nonces: dict[bytes, int] = {}

    def nxt(s: Signer) -> int:
        n = nonces.get(s.address, 0)
        nonces[s.address] = n + 1
        return n

    txs = [sign_tx(auth, chain_id=chain_id, nonce=nxt(auth), to=keys.NATIVE_TOKEN, method="mint",
                   args=a.address + pack_u64(10_000), write_set=(keys.balance_key(a.address),))
           for a in accts]
    for _ in range(n_transfers):
        a, b = rng.sample(accts, 2)
        if rng.random() < 0.05:
            slot = b"hot"
            txs.append(sign_tx(a, chain_id=chain_id, nonce=nxt(a), to=keys.COUNTER_DEMO,
                               method="increment", args=slot + pack_u64(rng.randrange(1, 5)),
                               write_set=(keys.storage_key(keys.COUNTER_DEMO, slot),)))
            continue
        ws: tuple[bytes, ...] = (keys.balance_key(a.address), keys.balance_key(b.address))
        if rng.random() < 0.05:
            ws = ws[:1]  # an undeclared write: fails identically everywhere
        txs.append(sign_tx(a, chain_id=chain_id, nonce=nxt(a), to=keys.NATIVE_TOKEN,
                           method="transfer", args=b.address + pack_u64(rng.randrange(1, 12_000)),
                           write_set=ws))
    return txs


async def _run(lab: Lab, seed: int, p: DeterminismParams) -> tuple[str, list[dict[str, Any]]]:
    async with HttpRpc(lab.endpoints["https"], token=lab.admin_token, ssl=lab.ssl_context(),
                       timeout_s=20) as rpc:
        chain_id = parse_qty(await rpc.call("eth_chainId"))
        txs = make_workload(seed, chain_id, p.accounts, p.transfers)
        await rpc.call("dubhe_admin_pauseProduction")
        for lo in range(0, len(txs), 50):
            res = await rpc.batch(
                [("dubhe_sendTransaction", [data(t.raw)]) for t in txs[lo : lo + 50]]
            )
            bad = [r for r in res if not isinstance(r, str)]
            if bad:
                raise RuntimeError(f"submission refused: {bad[0]}")
        await rpc.call("dubhe_admin_resumeProduction")

        async def all_receipts() -> list[dict[str, Any]] | None:
            # (an empty mempool is not enough: the last block may still be executing)
            res = await batch_all(
                rpc, [("dubhe_getReceipt", [data(t.hash), {"blockStats": True}]) for t in txs],
                chunk=50)
            return res if all(isinstance(r, dict) for r in res) else None

        receipts = await poll(all_receipts, timeout_s=120, interval_s=0.2)
        if receipts is None:
            raise TimeoutError(f"not every one of the {len(txs)} transactions had a receipt "
                               "within 120 s")
        root = str((await rpc.call("dubhe_status"))["stateRoot"])
    return root, receipts


def _parallel(stats: dict[str, Any] | None, strategy: str) -> bool:
    """The block ran through the strategy's parallel machinery: its stats name the strategy, with
    more than one worker, not sent down the sequential path by the gate. A Block-STM block that
    hit the algorithm's own contention fallback counts when it aborted incarnations first (only
    the multi-version run aborts); ``<strategy>.fallback_blocks`` says how many did."""
    if not (stats and stats.get("strategy") == strategy and int(stats.get("workers", 1)) > 1
            and stats.get("mode") != "sequential"):
        return False
    return not stats.get("sequentialFallback") or int(stats.get("aborts", 0)) > 0


@workload("determinism", DeterminismParams, _figures)
async def determinism(ctx: RunContext, p: DeterminismParams) -> dict[str, Any]:
    seed = ctx.derived_seed("determinism/workload")
    ctx.progress(f"   workload seed {seed}")
    results: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for i, strategy in enumerate(p.strategies):
        scheduler = {"strategy": strategy, "adaptive": False, "worker_threads": p.workers,
                     "substrate": p.substrate}
        lab = ctx.lab if i == 0 else await ctx.another_lab(
            ctx.case.spec.overlay({"name": f"s10-{strategy}", "node": {"scheduler": scheduler}}))
        if i == 0:
            status = await _status(lab)
            if status["strategy"] != strategy:
                raise ValueError(f"the case's own lab runs {status['strategy']}, not "
                                 f"{strategy}: set lab.node.scheduler.strategy to the first "
                                 "of params.strategies")
        results[strategy] = await _run(lab, seed, p)
        ctx.progress(f"   {strategy}: state root {results[strategy][0][:18]}...")
    base_root, base = results[p.strategies[0]]
    figures: dict[str, Any] = {"determinism.txs": len(base)}

    def outcome(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r.items() if k not in ("blockNumber", "index", "blockStats")}

    statuses = sorted({str(r.get("status")) for r in base})
    figures["determinism.statuses"] = len(statuses)
    ctx.details["statuses"] = statuses
    diffs: dict[str, Any] = {}
    for s, (root, receipts) in results.items():
        same = [outcome(a) == outcome(b) for a, b in zip(base, receipts, strict=True)]
        figures[f"{s}.receipts_equal"] = int(all(same))
        figures[f"{s}.root_equal"] = int(root == base_root)
        figures[f"{s}.included"] = sum(1 for r in receipts if "missing" not in r)
        blocks = {r["blockNumber"]: r.get("blockStats") for r in receipts if "blockNumber" in r}
        figures[f"{s}.blocks"] = len(blocks)
        figures[f"{s}.parallel_blocks"] = sum(1 for st in blocks.values() if _parallel(st, s))
        figures[f"{s}.fallback_blocks"] = sum(1 for st in blocks.values()
                                              if st and st.get("sequentialFallback"))
        ctx.details[f"block_stats.{s}"] = blocks
        if not all(same):
            i = same.index(False)
            diffs[s] = {
                "first_difference": i,
                "serial": outcome(base[i]),
                "this": outcome(receipts[i]),
            }
    figures["determinism.receipts_equal"] = sum(
        figures[f"{s}.receipts_equal"] for s in p.strategies
    )
    figures["determinism.roots_equal"] = sum(figures[f"{s}.root_equal"] for s in p.strategies)
    figures["determinism.parallel_strategies"] = sum(
        1 for s in p.strategies if s != "Serial" and figures[f"{s}.parallel_blocks"] > 0)
    ctx.details["differences"] = diffs
    ctx.details["state_roots"] = {s: r for s, (r, _) in results.items()}
    return figures


async def _status(lab: Lab) -> dict[str, Any]:
    async with HttpRpc(lab.endpoints["node_rpc"]) as rpc:
        return dict(await rpc.call("dubhe_status"))

"""``l1_failover``: the node's primary Ethereum endpoint fails (the variant's fault timeline on
``node-l1-eth``: a black hole, then resets) while a fallback endpoint (``node-l1-eth-2``) of the
same mock chain stays healthy. With a single endpoint (no fallback: the incident before its
fix, scenarios/incidents/l1-outage.toml) the fallback's figures are 0.

Observed from outside, through ``dubhe_status`` (sampled every ``sample_every_s``) and the mock:

* failover: the primary's failures grow and its state leaves ``up`` while the fallback's
  successes grow;
* heads without gaps: the adapter applies every L1 block exactly once (its ``heads`` counter
  grows by exactly as much as its head number), its head catches up with the mock's and has the
  mock's hash;
* loading keeps working: a contract deployed on the mock ``load_at_s`` into the fault is loaded
  by the first transaction that calls it (receipt ``success``);
* recovery: once the fault is over, RPC traffic goes back to the primary (its successes grow
  again and it is ``up``) within ``recover_within_s``, and so does the WebSocket subscription
  (``dubhe_status`` ``serving.ws``);
* head lag in time: the mock's and the node's heads are polled every 25 ms; a block's lag is the
  instant the node first showed it minus the instant the mock first did (p50/p99 over the blocks
  the mock made during the fault, and after it);
* block production: the gaps between the node's blocks made during the fault (``timestampMs``),
  p99 and its ratio to the lab's ``block_time_ms`` (a block never waits long on an L1 fetch).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lab.clients.rpc import HttpRpc
from lab.scenarios.context import RunContext
from lab.scenarios.waits import poll
from lab.scenarios.workloads import workload
from node.core.hexutil import data, parse_qty
from node.core.tx import Signer, sign_tx

CONTRACT = Path(__file__).resolve().parents[3] / "contracts" / "build" / "compute.elf"
_U64 = struct.Struct(">Q")


class FailoverParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    load_at_s: float = Field(2.0, ge=0)
    recover_within_s: float = Field(40.0, gt=0)
    sample_every_s: float = Field(0.25, gt=0)


def _figures(p: FailoverParams) -> list[str]:
    return ["failover.*", "l1.*", "loading.*", "recovery.*", "node.blocks_during_fault",
            "node.block_interval_p99_ms", "node.block_interval_ratio"]


class _Lag:
    """First-seen wall-clock instants of each L1 block number on the mock and on the node."""

    def __init__(self) -> None:
        self.mock: dict[int, float] = {}
        self.node: dict[int, float] = {}

    async def run(self, node: HttpRpc, l1: HttpRpc) -> None:
        mock_head = node_head = -1
        while True:
            got = await asyncio.gather(l1.call("eth_blockNumber"),
                                       node.call("dubhe_getL1Head", "ethereum"),
                                       return_exceptions=True)
            now = time.time()
            if not isinstance(got[0], BaseException):
                n = parse_qty(got[0])
                for k in range(max(mock_head + 1, n - 50), n + 1):
                    self.mock.setdefault(k, now)
                mock_head = max(mock_head, n)
            head = got[1]
            if isinstance(head, dict):
                n = int(head["number"])
                for k in range(max(node_head + 1, n - 50), n + 1):
                    self.node.setdefault(k, now)
                node_head = max(node_head, n)
            await asyncio.sleep(0.025)

    def lags_ms(self, t0: float, t1: float) -> list[float]:
        """Lags of the blocks the mock showed within ``[t0, t1)`` (wall clock) and the node too."""
        return [(self.node[n] - t) * 1000 for n, t in self.mock.items()
                if t0 <= t < t1 and n in self.node]


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))], 1)


async def _block_gaps(node: HttpRpc, first: int, last: int, t0: float, t1: float) -> list[float]:
    """Gaps between consecutive node blocks whose later block was made within ``[t0, t1)``."""
    stamps: list[int] = []
    for n in range(max(0, first - 1), last + 1):
        b = await node.call("eth_getBlockByNumber", hex(n), False)
        if b is not None:
            stamps.append(parse_qty(b["timestampMs"]))
    return [float(b - a) for a, b in itertools.pairwise(stamps) if t0 * 1000 <= b < t1 * 1000]


_NO_FALLBACK = {"state": "none", "score": 0, "successes": 0, "failures": 0}


class _Probe:
    def __init__(self, ctx: RunContext, node: HttpRpc, l1: HttpRpc) -> None:
        self.ctx, self.node, self.l1 = ctx, node, l1
        self.samples: list[dict[str, Any]] = []

    async def sample(self, phase: str) -> dict[str, Any]:
        status = await self.node.call("dubhe_status")
        eth = status["l1"]["chains"]["ethereum"]
        primary = eth["endpoints"][0]
        # one endpoint (no fallback configured): its figures stay 0
        fallback = eth["endpoints"][1] if len(eth["endpoints"]) > 1 else _NO_FALLBACK
        s = {"t": time.time(), "phase": phase, "height": status["height"],
             "head": eth["head"]["number"] if eth["head"] else None,
             "head_hash": eth["head"]["hash"] if eth["head"] else None,
             "heads": eth["stats"].get("heads", 0), "backfilled": eth["stats"].get("backfilled", 0),
             "mock": parse_qty(await self.l1.call("eth_blockNumber")),
             "primary": {k: primary[k] for k in ("state", "score", "successes", "failures")},
             "fallback": {k: fallback[k] for k in ("state", "score", "successes", "failures")},
             "ws": eth.get("ws_connected"),
             "ws_serving": eth.get("serving", {}).get("ws"), "primary_ws": primary["ws_url"]}
        self.samples.append(s)
        return s


async def _deploy(ctx: RunContext, address: str) -> None:
    import aiohttp

    body = {"cmd": "deploy", "code": data(CONTRACT.read_bytes()), "address": address}
    async with aiohttp.ClientSession() as http, http.post(ctx.lab.endpoints["l1_eth_admin"],
                                                          json=body) as r:
        if r.status != 200:
            raise RuntimeError(f"mock deploy failed: HTTP {r.status}: {await r.text()}")


class _Sender:
    def __init__(self, node: HttpRpc, chain_id: int) -> None:
        self.node, self.chain_id = node, chain_id
        self.signer = Signer.from_seed(b"scenario-l1-user")
        self.nonce = 0

    async def call(self, target: str) -> dict[str, Any]:
        tx = sign_tx(self.signer, chain_id=self.chain_id, nonce=self.nonce,
                     to=bytes.fromhex(target[2:]), method="hash_loop", args=_U64.pack(50))
        self.nonce += 1
        h = await self.node.call("dubhe_sendTransaction", data(tx.raw))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            rc = await self.node.call("dubhe_getReceipt", h)
            if rc is not None:
                return dict(rc)
            await asyncio.sleep(0.1)
        return {"status": "no receipt within 15 s"}


@workload("l1_failover", FailoverParams, _figures)
async def l1_failover(ctx: RunContext, p: FailoverParams) -> dict[str, Any]:
    if "node-l1-eth" not in ctx.lab.link_names:
        raise ValueError("l1_failover needs [[l1]] chain = 'eth'")
    figures: dict[str, Any] = {}
    async with HttpRpc(ctx.lab.endpoints["node_rpc"], timeout_s=10) as node, \
            HttpRpc(ctx.lab.endpoints["l1_eth"], timeout_s=5) as l1:
        probe = _Probe(ctx, node, l1)
        sender = _Sender(node, parse_qty(await node.call("eth_chainId")))

        async def following() -> bool:
            return (await probe.sample("start"))["head"] is not None

        if not await poll(following, timeout_s=15):
            raise TimeoutError("the node did not follow the L1 within 15 s")
        await _deploy(ctx, "0x" + "5a" * 20)
        before = await sender.call("0x" + "5a" * 20)
        figures["loading.before"] = int(before.get("status") == "success")
        start = await probe.sample("before")
        loaded: dict[str, Any] = {}

        async def load_during() -> None:
            await asyncio.sleep(p.load_at_s)
            await _deploy(ctx, "0x" + "5b" * 20)
            t0 = time.monotonic()
            loaded.update(await sender.call("0x" + "5b" * 20))
            loaded["_took_ms"] = round((time.monotonic() - t0) * 1000, 1)

        lag = _Lag()
        lag_task = asyncio.create_task(lag.run(node, l1))
        fault_start = time.time()
        async with ctx.nemesis() as nemesis:
            loader = asyncio.create_task(load_during())
            done = asyncio.create_task(nemesis.done())
            while not done.done():
                await probe.sample("fault")
                await asyncio.sleep(p.sample_every_s)
            fault_end = time.time()
            await loader
        figures["loading.during_fault"] = int(loaded.get("status") == "success")
        ctx.details["loading_during_fault"] = loaded
        end_fault = probe.samples[-1]
        # recovery: the primary serves RPC again, and the subscription moves back to it
        back_s = ws_back_s = None
        deadline = time.monotonic() + p.recover_within_s
        while time.monotonic() < deadline:
            s = await probe.sample("after")
            if back_s is None and (s["primary"]["state"] == "up"
                                   and s["primary"]["successes"]
                                   > end_fault["primary"]["successes"]):
                back_s = s["t"] - fault_end
            if ws_back_s is None and s["ws_serving"] == s["primary_ws"]:
                ws_back_s = s["t"] - fault_end
            if back_s is not None and ws_back_s is not None:
                break
            await asyncio.sleep(p.sample_every_s)
        with contextlib.suppress(Exception):
            await asyncio.sleep(0.5)
        final = await probe.sample("end")
        lag_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lag_task
        mock_hash = (await l1.call("eth_getBlockByNumber", hex(final["head"]), False))["hash"]
        fault_samples = [s for s in probe.samples if s["phase"] == "fault"]
        gaps = await _block_gaps(node, start["height"], end_fault["height"], fault_start,
                                 fault_end) if fault_samples else []
    fault = [s for s in probe.samples if s["phase"] == "fault"]
    figures.update(
        {
            "failover.primary_failures": end_fault["primary"]["failures"]
            - start["primary"]["failures"],
            "failover.fallback_successes": (
                end_fault["fallback"]["successes"] - start["fallback"]["successes"]
            ),
            "failover.primary_left_up": int(any(s["primary"]["state"] != "up" for s in fault)),
            "l1.heads_applied": final["heads"] - start["heads"],
            "l1.head_advance": final["head"] - start["head"],
            "l1.gaps": (final["head"] - start["head"]) - (final["heads"] - start["heads"]),
            "l1.lag_max_blocks": max(
                (s["mock"] - s["head"] for s in fault if s["head"] is not None), default=None
            ),
            "l1.lag_end_blocks": final["mock"] - final["head"],
            "l1.hash_ok": int(mock_hash == final["head_hash"]),
            "l1.backfilled": final["backfilled"] - start["backfilled"],
            "recovery.primary_back": int(back_s is not None),
            "recovery.primary_back_s": None if back_s is None else round(back_s, 2),
            "recovery.ws_back": int(ws_back_s is not None),
            "recovery.ws_back_s": None if ws_back_s is None else round(ws_back_s, 2),
            "l1.lag_p50_ms": _pct(lag.lags_ms(fault_start, fault_end), 0.5),
            "l1.lag_p99_ms": _pct(lag.lags_ms(fault_start, fault_end), 0.99),
            "l1.lag_p99_ms_after": _pct(lag.lags_ms(fault_end, final["t"]), 0.99),
            "l1.lag_blocks_timed": len(lag.lags_ms(fault_start, fault_end)),
            "node.block_interval_p99_ms": _pct(gaps, 0.99),
            "node.block_interval_ratio": (
                None if not gaps else round((_pct(gaps, 0.99) or 0.0) / ctx.lab.spec.block_time_ms,
                                            2)
            ),
            "loading.during_fault_ms": loaded.get("_took_ms"),
            "node.blocks_during_fault": (fault[-1]["height"] - fault[0]["height"]) if fault else 0,
        }
    )
    ctx.details["samples"] = probe.samples
    return figures

"""``dubhe-bench l1-faults``: how a node follows its L1s and keeps producing blocks while its
primary L1 endpoint fails, for Ethereum, Sui over JSON-RPC and Sui over GraphQL side by side.

For each chain: a mock L1 with two endpoints (in this process; it produces a block every
``--l1-block-time-ms`` and records the instant), the lab's fault proxy in front of each endpoint,
and a ``dubhe-node`` (a subprocess) following the chain through the proxies, the primary first.
Phases of ``--phase-s`` seconds each, the proxy's toxic on the primary only:

* ``none`` - no fault (the baseline of the same run);
* ``reset`` - every connection to the primary reset (``reset_peer``);
* ``slow`` - the primary answers 2 s late (``latency`` 2000 ms), from a healthy start;
* ``blackhole`` - the primary accepts and never answers (``timeout`` 0);
* ``recovery`` - the phase right after the black hole is lifted: the node moves back to the
  primary (the times until HTTP and the WebSocket serve from it again are reported).

Between phases the toxic is removed and the node is given up to 30 s to serve from the primary
again (a healthy start for the next phase). In every phase a contract never called before is
called once (its code is fetched from the L1 through the faulty endpoint's adapter).

Figures per chain and phase: head lag (the instant the node's ``dubhe_getL1Head`` first shows a
block, polled every 20 ms, minus the instant the mock produced it) p50/p99, and the node's block
interval p99 (consecutive ``timestampMs`` of its blocks in the phase). Targets under every phase:
lag p99 < 1 s and block-interval p99 <= 1.5 x the node's ``block_time_ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    BenchResult,
    NodeServer,
    add_json_option,
    bench_parser,
    pct,
    progress,
    table,
)
from lab.clients.rpc import HttpRpc
from lab.l1.harness import admin, mock_l1
from lab.l1.server import ChainKind, MockL1
from lab.proxy import ProxyServer
from lab.proxy.client import Proxy, ToxiproxyClient
from node.core.codec import pack_u64
from node.core.hexutil import data, parse_qty
from node.core.tx import Signer, sign_tx

CONTRACT = Path(__file__).resolve().parents[1] / "contracts" / "build" / "compute.elf"
PHASES = ("none", "reset", "slow", "blackhole", "recovery")
TOXICS: dict[str, tuple[str, dict[str, Any]]] = {
    "reset": ("reset_peer", {"timeout": 0}),
    "slow": ("latency", {"latency": 2000}),
    "blackhole": ("timeout", {"timeout": 0}),
}
LAG_TARGET_MS = 1000.0
INTERVAL_FACTOR = 1.5
MIN_SAMPLES = 8  # fewer L1 blocks in a phase: its lag p99 is not judged
#: --chains names: (mock kind, the node's chain name, Sui protocol)
CHAINS: dict[str, tuple[ChainKind, str, str | None]] = {
    "ethereum": ("eth", "ethereum", None),
    "sui": ("sui", "sui", "jsonrpc"),
    "sui-graphql": ("sui", "sui", "graphql"),
}


@dataclass
class PhaseResult:
    phase: str
    lags_ms: list[float] = field(default_factory=list)
    intervals_ms: list[float] = field(default_factory=list)
    load_status: str = "-"
    load_ms: float | None = None
    back_http_s: float | None = None
    back_ws_s: float | None = None
    settle_s: float | None = None
    failovers: int = 0
    recoveries: int = 0


class _Follow:
    """Production instants of L1 blocks (this process) and the instants the node showed them."""

    def __init__(self) -> None:
        self.produced: dict[int, float] = {}
        self.seen: dict[int, float] = {}
        self.node_head = -1

    def lags_ms(self, t0: float, t1: float) -> list[float]:
        return [(self.seen[n] - t) * 1000 for n, t in self.produced.items()
                if t0 <= t < t1 and n in self.seen]


async def _produce(l1: MockL1, follow: _Follow, period_s: float) -> None:
    next_at = time.monotonic()
    while True:
        next_at += period_s
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        for b in l1.produce(1):
            follow.produced[b.number] = time.monotonic()


async def _watch(node: HttpRpc, chain: str, follow: _Follow) -> None:
    while True:
        with contextlib.suppress(Exception):
            head = await node.call("dubhe_getL1Head", chain)
            if head is not None:
                n = int(head["number"])
                now = time.monotonic()
                for k in range(follow.node_head + 1, n + 1):
                    follow.seen.setdefault(k, now)
                follow.node_head = max(follow.node_head, n)
        await asyncio.sleep(0.02)


async def _serving(node: HttpRpc, chain: str) -> dict[str, Any]:
    st = await node.call("dubhe_status")
    c: dict[str, Any] = st["l1"]["chains"][chain]
    return c


class _Sender:
    def __init__(self, node: HttpRpc, chain_id: int) -> None:
        self.node, self.chain_id = node, chain_id
        self.signer = Signer.from_seed(b"bench-l1-faults")
        self.nonce = 0

    async def call(self, to: bytes) -> tuple[str, float]:
        """Call ``hash_loop`` on ``to``; (receipt status or why none, seconds to the receipt)."""
        tx = sign_tx(self.signer, chain_id=self.chain_id, nonce=self.nonce, to=to,
                     method="hash_loop", args=pack_u64(5))
        self.nonce += 1
        t0 = time.monotonic()
        h = await self.node.call("dubhe_sendTransaction", data(tx.raw))
        while time.monotonic() - t0 < 20:
            rc = await self.node.call("dubhe_getReceipt", h)
            if rc is not None:
                status = str(rc["status"])
                if status != "success":
                    status += f" ({str(rc.get('reason', ''))[:60]})"
                return status, time.monotonic() - t0
            await asyncio.sleep(0.05)
        return "no receipt", time.monotonic() - t0


def _proxied(url: str, proxy: Proxy) -> str:
    """``url`` (a mock endpoint's) with the proxy's listen address as host and port."""
    scheme, rest = url.split("://", 1)
    path = rest.split("/", 1)[1] if "/" in rest else ""
    return f"{scheme}://{proxy.listen}/{path}"


async def run_chain(name: str, args: argparse.Namespace) -> list[PhaseResult]:
    kind, chain, protocol = CHAINS[name]
    results: list[PhaseResult] = []
    async with mock_l1(kind, seed=args.seed, endpoints=2) as l1, \
            ProxyServer(port=0, seed=args.seed) as proxy_server, \
            ToxiproxyClient(proxy_server.base_url) as toxi:
        primary_ep, fallback_ep = l1.endpoints
        primary = await toxi.create_proxy(f"{kind}-primary", f"127.0.0.1:{primary_ep.port}")
        fallback = await toxi.create_proxy(f"{kind}-fallback", f"127.0.0.1:{fallback_ep.port}")
        code = data(CONTRACT.read_bytes())
        targets: list[bytes] = []
        packages: list[str] = []
        for i in range(len(PHASES)):
            if kind == "eth":
                addr = bytes([0x70 + i]) * 20
                await admin(fallback_ep.admin_url, {"cmd": "deploy", "code": code,
                                                    "address": data(addr)})
                targets.append(addr)
            else:
                d = await admin(fallback_ep.admin_url, {"cmd": "deploy",
                                                        "modules": {"dubhe": code}})
                packages.append(d["package_id"])
        l1.produce(1)
        if kind == "sui":
            from node.server.l1 import sui_module_address

            targets = [sui_module_address(p, "dubhe") for p in packages]
        common: dict[str, Any] = {
            "rpc_url": _proxied(primary_ep.http_url, primary),
            "ws_url": _proxied(primary_ep.ws_url, primary),
            "endpoints": [{"rpc_url": _proxied(fallback_ep.http_url, fallback),
                           "ws_url": _proxied(fallback_ep.ws_url, fallback)}],
        }
        if protocol == "graphql":
            common = {"protocol": "graphql", "rpc_url": _proxied(primary_ep.graphql_url, primary),
                      "endpoints": [{"rpc_url": _proxied(fallback_ep.graphql_url, fallback)}]}
        transports = 1 if protocol == "graphql" else 2  # no subscription over GraphQL
        section = ({**common, "chain_id": 1337} if kind == "eth"
                   else {**common, "package_ids": packages})
        progress(f"{name}: starting the node (block time {args.block_time_ms} ms)")
        node_proc = await asyncio.to_thread(
            NodeServer, {"node": {"block_time_ms": args.block_time_ms},
                         "adapters": {chain: section}})
        follow = _Follow()
        tasks: list[asyncio.Task[None]] = []
        pending: list[tuple[PhaseResult, asyncio.Task[tuple[str, float]]]] = []
        try:
            async with HttpRpc(node_proc.rpc_url, timeout_s=30) as node:
                sender = _Sender(node, parse_qty(await node.call("eth_chainId")))
                tasks.append(asyncio.create_task(_produce(l1, follow, args.l1_block_ms / 1000)))
                tasks.append(asyncio.create_task(_watch(node, chain, follow)))
                await _until(lambda: follow.node_head >= 0, 20, f"{name}: node following")
                if kind == "sui":
                    await _sui_mapped(node, targets)
                await asyncio.sleep(1.0)
                lifted: float | None = None
                for i, phase in enumerate(PHASES):
                    r = PhaseResult(phase)
                    if phase != "recovery":
                        r.settle_s = await _settle(node, chain, primary, transports)
                    before = await _serving(node, chain)
                    toxic = TOXICS.get(phase)
                    if toxic is not None:
                        await primary.add_toxic(toxic[0], name="fault", attributes=toxic[1])
                    progress(f"{name}: phase {phase} ({args.phase_s:g} s)")
                    # "recovery" starts the instant the black hole was lifted
                    t0 = lifted if phase == "recovery" and lifted is not None else time.monotonic()
                    h0 = await _node_height_at(node, t0)
                    load = asyncio.create_task(_load_later(sender, targets[i], 1.0))
                    back = asyncio.create_task(
                        _back_times(node, chain, primary, t0, args.phase_s)
                        if phase == "recovery" else _none())
                    await asyncio.sleep(max(0.0, t0 + args.phase_s - time.monotonic()))
                    t1 = time.monotonic()
                    if toxic is not None:
                        await primary.remove_toxic("fault")
                        lifted = time.monotonic()
                    h1 = parse_qty(await node.call("eth_blockNumber"))
                    if phase != "blackhole":
                        r.load_status, r.load_ms = await load
                        r.back_http_s, r.back_ws_s = await back
                        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - t1)))
                    else:
                        pending.append((r, load))
                    r.lags_ms = follow.lags_ms(t0, t1)
                    r.intervals_ms = await _intervals(node, h0, h1, t0, t1)
                    after = await _serving(node, chain)
                    r.failovers = int(after["failovers"]) - int(before["failovers"])
                    r.recoveries = int(after["recoveries"]) - int(before["recoveries"])
                    results.append(r)
                for r, load in pending:
                    r.load_status, r.load_ms = await load
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(node_proc.stop)
    return results


async def _none() -> tuple[None, None]:
    return None, None


async def _until(pred: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:g} s")
        await asyncio.sleep(0.05)


async def _sui_mapped(node: HttpRpc, targets: list[bytes]) -> None:
    deadline = time.monotonic() + 20
    want = {"0x" + t.hex() for t in targets}
    while time.monotonic() < deadline:
        mods = (await node.call("dubhe_status"))["l1"]["suiModules"]
        if want <= set(mods):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("sui: the node did not map the packages' modules within 20 s")


async def _settle(node: HttpRpc, chain: str, primary: Proxy, transports: int) -> float | None:
    """Wait (at most 30 s) until HTTP (and the WebSocket, if used) are served by the primary;
    seconds."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30:
        s = (await _serving(node, chain))["serving"]
        if all(primary.listen in str(u) for u in s.values()) and len(s) == transports:
            return round(time.monotonic() - t0, 2)
        await asyncio.sleep(0.2)
    return None


async def _back_times(node: HttpRpc, chain: str, primary: Proxy, t0: float,
                      within_s: float) -> tuple[float | None, float | None]:
    back: dict[str, float] = {}
    while time.monotonic() - t0 < within_s and len(back) < 2:
        with contextlib.suppress(Exception):
            s = (await _serving(node, chain))["serving"]
            for transport, url in s.items():
                if primary.listen in str(url):
                    back.setdefault(transport, round(time.monotonic() - t0, 2))
        await asyncio.sleep(0.1)
    return back.get("http"), back.get("ws")


async def _load_later(sender: _Sender, to: bytes, after_s: float) -> tuple[str, float]:
    await asyncio.sleep(after_s)
    status, took = await sender.call(to)
    return status, round(took * 1000, 1)


async def _node_height_at(node: HttpRpc, t0: float) -> int:
    """The node's height now, or (for an instant in the past) a block or two before it: the
    blocks are read by number afterwards and only their timestamps count."""
    h = parse_qty(await node.call("eth_blockNumber"))
    return max(0, h - 1 - int(max(0.0, time.monotonic() - t0) * 10))


async def _intervals(node: HttpRpc, first: int, last: int, t0: float, t1: float) -> list[float]:
    """Gaps between consecutive node blocks ``first..last`` whose later block was made within
    the monotonic window ``[t0, t1)`` (block timestamps are wall-clock ms)."""
    skew = time.time() - time.monotonic()
    lo, hi = (t0 + skew) * 1000, (t1 + skew) * 1000
    stamps: list[int] = []
    for n in range(first, last + 1):
        b = await node.call("eth_getBlockByNumber", hex(n), False)
        if b is not None:
            stamps.append(parse_qty(b["timestampMs"]))
    return [float(b - a) for a, b in itertools.pairwise(stamps) if lo <= b < hi]


def main(argv: list[str]) -> int:
    ap = bench_parser("l1-faults", __doc__)
    ap.add_argument("--chains", default="ethereum,sui,sui-graphql",
                    help="comma-separated: ethereum, sui (JSON-RPC + WebSocket), sui-graphql "
                    "(the node's Sui adapter over GraphQL); default: all three")
    ap.add_argument("--phase-s", type=float, default=8.0, help="seconds per phase")
    ap.add_argument("--l1-block-time-ms", dest="l1_block_ms", type=int, default=500, metavar="MS",
                    help="the mock L1's block period in ms")
    ap.add_argument("--l1-block-ms", dest="l1_block_ms", type=int, help=argparse.SUPPRESS,
                    default=argparse.SUPPRESS)  # the old spelling (docs/cli.md)
    ap.add_argument("--block-time-ms", type=int, default=500, metavar="MS",
                    help="the node's block period in ms ([node] block_time_ms)")
    ap.add_argument("--seed", type=int, default=20, help="mock chains' and proxy's seed")
    add_json_option(ap)
    args = ap.parse_args(argv)
    chains = [c.strip() for c in args.chains.split(",") if c.strip()]
    bad = [c for c in chains if c not in CHAINS]
    if bad or not chains:
        ap.error(f"--chains: unknown chain(s) {bad}; choose from {', '.join(CHAINS)}")
    res = BenchResult("l1-faults", argv)
    print(f"dubhe-bench l1-faults: {', '.join(chains)}; phases of {args.phase_s:g} s; L1 block "
          f"{args.l1_block_ms} ms, node block {args.block_time_ms} ms; seed {args.seed}")
    by_chain = {c: asyncio.run(run_chain(c, args)) for c in chains}
    headers = ["phase"]
    for c in chains:
        headers += [f"{c} lag p50 ms", "lag p99 ms", "interval p99 ms", "load"]
    rows = []
    for i, phase in enumerate(PHASES):
        row: list[Any] = [phase]
        for c in chains:
            r = by_chain[c][i]
            row += [pct(r.lags_ms, 0.5), pct(r.lags_ms, 0.99), pct(r.intervals_ms, 0.99),
                    r.load_status.split(" ")[0]]
        rows.append(row)
    print(table(headers, rows))
    limit = INTERVAL_FACTOR * args.block_time_ms
    extras: dict[str, Any] = {}
    for c in chains:
        for r in by_chain[c]:
            key = f"{c}.{r.phase}"
            base = {"none": by_chain[c][0]}
            res.figure(f"{key}.lag_p50_ms", pct(r.lags_ms, 0.5))
            res.figure(f"{key}.lag_max_ms", max(r.lags_ms) if r.lags_ms else None)
            res.figure(f"{key}.blocks_followed", len(r.lags_ms))
            res.figure(f"{key}.load_ms", r.load_ms)
            res.figure(f"{key}.failovers", r.failovers)
            res.figure(f"{key}.recoveries", r.recoveries)
            if r.phase == "recovery":
                res.figure(f"{key}.back_http_s", r.back_http_s)
                res.figure(f"{key}.back_ws_s", r.back_ws_s)
            small = len(r.lags_ms) < MIN_SAMPLES
            res.target(f"{key}.lag_p99_ms", target=LAG_TARGET_MS, value=pct(r.lags_ms, 0.99),
                       direction="lower", unit="ms", passed=pct(r.lags_ms, 0.99) < LAG_TARGET_MS,
                       judged=not small,
                       note=f"fewer than {MIN_SAMPLES} L1 blocks in the phase" if small else "")
            res.target(f"{key}.block_interval_p99_ms", target=limit,
                       value=pct(r.intervals_ms, 0.99), direction="lower", unit="ms")
            p99_none = pct(base["none"].lags_ms, 0.99)
            extras[key] = {
                "lag_p99_vs_none": (pct(r.lags_ms, 0.99) / p99_none) if p99_none else None,
                "load": r.load_status, "settle_s": r.settle_s,
                "back_http_s": r.back_http_s, "back_ws_s": r.back_ws_s,
                "intervals_ms": r.intervals_ms,
            }
        rec = by_chain[c][-1]
        ws = ("no subscription over GraphQL" if CHAINS[c][2] == "graphql"
              else f"the WebSocket in {_s(rec.back_ws_s)}")
        print(f"{c}: after the black hole, HTTP back on the primary in "
              f"{_s(rec.back_http_s)}, {ws}; "
              f"lag p99 vs no fault: " + ", ".join(
                  f"{r.phase} {_ratio(pct(r.lags_ms, 0.99), pct(by_chain[c][0].lags_ms, 0.99))}"
                  for r in by_chain[c][1:]))
    res.extra(phases=extras, phase_s=args.phase_s, l1_block_ms=args.l1_block_ms,
              block_time_ms=args.block_time_ms, seed=args.seed, chains=chains)
    print(f"targets: lag p99 < {LAG_TARGET_MS:.0f} ms, block interval p99 <= {limit:.0f} ms "
          f"({INTERVAL_FACTOR:g} x block_time_ms)")
    res.print_targets()
    res.write(args.json)
    return res.exit_code()


def _s(v: float | None) -> str:
    return "not within the phase" if v is None else f"{v:.2f} s"


def _ratio(a: float, b: float) -> str:
    return "n/a" if not b or a != a or b != b else f"{a / b:.1f}x"

"""``dubhe-bench submit``: acknowledged (durable) tx/s by submission path, and what fsync costs.

Paths, against the same node in one run: ``dubhe_sendTransactions`` lists over HTTP (one
keep-alive connection, one list at a time) and over one WebSocket (lists pipelined), and single
``dubhe_sendTransaction`` requests over one keep-alive connection (the baseline).

Fsync comparison (group commit): ``--submitters`` (64) concurrent submitters, each on its own
keep-alive connection sending single ``dubhe_sendTransaction`` requests one after the other,
against a node with ``sync_writes = true`` (the default: every acknowledgement fsync'd, with
group commit) and one with ``sync_writes = false`` (WAL in the page cache), the same signed
transactions on fresh nodes, in ABBA order over ``--group-rounds`` pairs so a drifting machine
load weighs on both. Target: fsync >= 0.5x the no-fsync rate. The writes each fsync carried
come from the node's ``/metrics``.

The node runs as configured by default where it matters: RocksDB state (every acknowledged
transaction is in the WAL, fsync'd, before the reply; ``--no-sync-writes`` for the paths'
node), the RISC-V VM, 1 s blocks produced while the load runs (``--block-time-ms``), and the
default per-connection limits (so the run also shows that they let a load generator through).
Transactions are native-token transfers between funded accounts, signed before the clock starts
(seeded; the seed is printed). Each path gets its own senders, so no path's nonces wait on
another's.

After the load, every acknowledged transaction must end in a block: the benchmark waits for the
mempool to drain and counts the included transactions (an acknowledged transaction missing is an
error, whatever the rate). Target: >= 10,000 acknowledged tx/s with lists (each list path).
``--paused`` pauses block production during the load: admission alone (the node then builds the
blocks after it), which shows how much of the machine block production takes from admission.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.common import (
    BenchResult,
    NodeServer,
    add_json_option,
    bench_parser,
    progress,
    table,
    verdict,
)
from bench.scheduler import LoadProbe
from node.core import keys
from node.core.codec import pack_u64
from node.core.hexutil import data, parse_qty
from node.core.tx import Signer, sign_tx

TARGET_TPS = 10_000.0
TARGET_FSYNC_RATIO = 0.5
CHAIN_ID = 0x44554248
PATHS = ("single", "http-batch", "ws-batch")
SYNC_MODES = ("fsync", "no-fsync")
GROUP = len(PATHS)  # the signing group of the fsync comparison's senders
ADMIN_TOKEN = "dubhe-bench-submit"


@dataclass
class PathResult:
    """What one path did: transactions sent and acknowledged, errors by code, wall seconds."""

    name: str
    sent: int = 0
    acked: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    others: float = 0.0  # CPU share of other processes on the machine meanwhile

    @property
    def tps(self) -> float:
        return len(self.acked) / self.seconds if self.seconds > 0 else 0.0


def _sign_chunk(args: tuple[int, int, int, int, int]) -> list[str]:
    """Transfers for senders ``lo..hi`` of a path (nonces 0..rounds-1, round by round), as raw
    hex; runs in a worker process."""
    seed, group, lo, hi, rounds = args
    rng = random.Random(f"{seed}/{group}/{lo}")
    signers = [Signer.from_seed(b"submit-%d-%d-%d" % (seed, group, i)) for i in range(lo, hi)]
    out = []
    for nonce in range(rounds):
        for s in signers:
            to = signers[rng.randrange(len(signers))].address
            if to == s.address:
                to = bytes(20)
            tx = sign_tx(s, chain_id=CHAIN_ID, nonce=nonce, to=keys.NATIVE_TOKEN,
                         method="transfer", args=to + pack_u64(1),
                         write_set=(keys.balance_key(s.address), keys.balance_key(to)))
            out.append(data(tx.raw))
    return out


def sender_addresses(seed: int, group: int, n: int) -> list[str]:
    return [data(Signer.from_seed(b"submit-%d-%d-%d" % (seed, group, i)).address)
            for i in range(n)]


def sign_path(seed: int, group: int, senders: int, count: int, pool: Any) -> list[str]:
    """``count`` signed transfers (round-robin over ``senders``, nonces in order)."""
    rounds = -(-count // senders)
    step = max(1, senders // (2 * (os.cpu_count() or 2)))
    chunks = [(seed, group, lo, min(senders, lo + step), rounds) for lo in range(0, senders, step)]
    per_chunk = pool.map(_sign_chunk, chunks)
    # interleave the chunks back into round order: round r of every sender, then round r + 1
    out: list[str] = []
    for r in range(rounds):
        for c, (_, _, lo, hi, _) in zip(per_chunk, chunks, strict=True):
            out.extend(c[r * (hi - lo):(r + 1) * (hi - lo)])
    return out[:count]


def _tally(res: PathResult, replies: list[Any]) -> None:
    for r in replies:
        if isinstance(r, str):
            res.acked.append(r)
        else:
            res.errors[str(r.get("error", {}).get("code", "?"))] += 1


async def run_single(url: str, txs: list[str]) -> PathResult:
    res = PathResult("single", sent=len(txs))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as s:
        t0 = time.perf_counter()
        for i, raw in enumerate(txs):
            body = orjson.dumps({"jsonrpc": "2.0", "id": i, "method": "dubhe_sendTransaction",
                                 "params": [raw]})
            async with s.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                msg = orjson.loads(await r.read())
            _tally(res, [msg["result"]] if "result" in msg else [msg])
        res.seconds = time.perf_counter() - t0
    return res


async def run_http_batch(url: str, txs: list[str], batch: int) -> PathResult:
    res = PathResult("http-batch", sent=len(txs))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as s:
        t0 = time.perf_counter()
        for i in range(0, len(txs), batch):
            body = orjson.dumps({"jsonrpc": "2.0", "id": i, "method": "dubhe_sendTransactions",
                                 "params": [txs[i:i + batch]]})
            async with s.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                msg = orjson.loads(await r.read())
            if "result" not in msg:
                res.errors[str(msg["error"]["code"])] += len(txs[i:i + batch])
                continue
            _tally(res, msg["result"])
        res.seconds = time.perf_counter() - t0
    return res


async def run_ws_batch(url: str, txs: list[str], batch: int, in_flight: int) -> PathResult:
    res = PathResult("ws-batch", sent=len(txs))
    lists = [txs[i:i + batch] for i in range(0, len(txs), batch)]
    async with aiohttp.ClientSession() as s, s.ws_connect(url, max_msg_size=0) as ws:
        t0 = time.perf_counter()
        sent = done = 0
        while done < len(lists):
            while sent < len(lists) and sent - done < in_flight:
                await ws.send_bytes(orjson.dumps({"jsonrpc": "2.0", "id": sent,
                                                  "method": "dubhe_sendTransactions",
                                                  "params": [lists[sent]]}))
                sent += 1
            msg = orjson.loads((await ws.receive()).data)
            done += 1
            if "result" not in msg:
                res.errors[str(msg["error"]["code"])] += len(lists[msg.get("id") or 0])
                continue
            _tally(res, msg["result"])
        res.seconds = time.perf_counter() - t0
    return res


async def run_concurrent(url: str, per_submitter: list[list[str]], name: str) -> PathResult:
    """Each submitter on its own keep-alive connection, one request at a time (waiting for
    each acknowledgement), all submitters at once."""
    res = PathResult(name, sent=sum(len(t) for t in per_submitter))
    conn = aiohttp.TCPConnector(limit=len(per_submitter))
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=conn) as s:

        async def submitter(txs: list[str]) -> None:
            for i, raw in enumerate(txs):
                body = orjson.dumps({"jsonrpc": "2.0", "id": i,
                                     "method": "dubhe_sendTransaction", "params": [raw]})
                async with s.post(url, data=body, headers=headers) as r:
                    msg = orjson.loads(await r.read())
                _tally(res, [msg["result"]] if "result" in msg else [msg])

        t0 = time.perf_counter()
        await asyncio.gather(*(submitter(t) for t in per_submitter))
        res.seconds = time.perf_counter() - t0
    return res


async def storage_counters(url: str) -> tuple[float, float]:
    """(fsync'd groups, writes they carried) from the node's /metrics."""
    async with aiohttp.ClientSession() as s, s.get(url.rstrip("/") + "/metrics") as r:
        text = await r.text()
    got = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("dubhe_storage_syncs_total", "dubhe_storage_synced_writes_total"):
            got[name] = float(value)
    return got.get("dubhe_storage_syncs_total", 0.0), got.get(
        "dubhe_storage_synced_writes_total", 0.0)


@dataclass
class SyncRun:
    """One node of the fsync comparison: its mode, the load's result, fsyncs, writes per fsync
    and acknowledged transactions missing from the blocks after the drain."""

    mode: str
    result: PathResult
    syncs: float
    synced_writes: float
    missing: int


def run_sync_mode(mode: str, per_submitter: list[list[str]], funded: dict[str, int],
                  block_time_ms: int, drain_timeout: float) -> SyncRun:
    node = NodeServer({
        "state": {"sync_writes": mode == "fsync"},
        "node": {"genesis_balances": funded, "block_time_ms": block_time_ms},
    })
    try:
        url = node.rpc + "/"
        res = asyncio.run(run_concurrent(url, per_submitter, mode))
        syncs, writes = asyncio.run(storage_counters(url))
        seen, _ = asyncio.run(included(url, drain_timeout))
    finally:
        node.stop()
    return SyncRun(mode, res, syncs, writes, sum(1 for h in res.acked if h not in seen))


def compare_sync(args: argparse.Namespace, seed: int, pool: Any,
                 result: BenchResult) -> tuple[float | None, int]:
    """The fsync comparison; returns (fsync / no-fsync rate, acknowledged transactions
    missing)."""
    n = args.submitters
    txs = sign_path(seed, GROUP, n, args.group_txs, pool)
    per_submitter = [txs[i::n] for i in range(n)]
    funded = dict.fromkeys(sender_addresses(seed, GROUP, n), 10**9)
    order = [m for r in range(args.group_rounds)
             for m in (SYNC_MODES if r % 2 == 0 else SYNC_MODES[::-1])]
    runs: list[SyncRun] = []
    for k, mode in enumerate(order, 1):
        progress(f"fsync comparison {k}/{len(order)}: {mode}, {n} concurrent submitters, "
                 f"{len(txs):,} transactions")
        runs.append(run_sync_mode(mode, per_submitter, funded, args.block_time_ms,
                                  args.drain_timeout))
    rows = []
    for k, r in enumerate(runs, 1):
        per_sync = r.synced_writes / r.syncs if r.syncs else None
        errors = ", ".join(f"{c} x {m:,}" for c, m in sorted(r.result.errors.items())) or "-"
        rows.append([k, r.mode, r.result.sent, len(r.result.acked), errors, r.result.seconds,
                     r.result.tps, int(r.syncs),
                     "-" if per_sync is None else f"{per_sync:.1f}", r.missing])
    print(f"\nfsync comparison: {n} concurrent submitters (single requests, one connection "
          f"each), same transactions on fresh nodes, ABBA order")
    print(table(["run", "mode", "sent", "acked", "errors", "seconds", "acked tx/s", "fsyncs",
                 "writes per fsync", "missing after drain"], rows))
    tps: dict[str, float] = {}
    for mode in SYNC_MODES:
        mine = [r for r in runs if r.mode == mode]
        acked = sum(len(r.result.acked) for r in mine)
        secs = sum(r.result.seconds for r in mine)
        tps[mode] = acked / secs if secs > 0 else 0.0
        result.figure(f"{mode}.tps", tps[mode])
        result.figure(f"{mode}.acked", acked)
        result.figure(f"{mode}.errors", sum(sum(r.result.errors.values()) for r in mine))
    f = [r for r in runs if r.mode == "fsync"]
    syncs, writes = sum(r.syncs for r in f), sum(r.synced_writes for r in f)
    result.figure("fsync.writes_per_fsync", writes / syncs if syncs else None)
    ratio = tps["fsync"] / tps["no-fsync"] if tps["no-fsync"] > 0 else None
    result.figure("fsync.ratio_vs_no_fsync", ratio)
    ratio_s = "n/a" if ratio is None else f"{ratio:.2f}x"
    print(f"group commit: fsync {tps['fsync']:,.0f} tx/s vs no-fsync {tps['no-fsync']:,.0f} "
          f"tx/s = {ratio_s} at {n} submitters ({writes / syncs if syncs else 0:.1f} writes "
          f"per fsync)")
    return ratio, sum(r.missing for r in runs)


async def _rpc(s: aiohttp.ClientSession, url: str, method: str, *params: Any) -> Any:
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    async with s.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
        msg = orjson.loads(await r.read())
    if "error" in msg:
        raise RuntimeError(f"{method}: {msg['error']}")
    return msg["result"]


async def admin(url: str, method: str) -> Any:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as s:
        return await _rpc(s, url, method)


async def included(url: str, timeout_s: float) -> tuple[set[str], float]:
    """Wait for the mempool to drain; every transaction hash in a block, and seconds waited."""
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as s:
        while time.monotonic() - t0 < timeout_s:
            st = await _rpc(s, url, "dubhe_status")
            if st["mempoolSize"] == 0:
                break
            progress(f"waiting for {st['mempoolSize']:,} pending transactions to be included")
            await asyncio.sleep(1.0)
        waited = time.monotonic() - t0
        await asyncio.sleep(0.2)  # (the last block may still be committing)
        head = parse_qty(await _rpc(s, url, "eth_blockNumber"))
        seen: set[str] = set()
        for n in range(1, head + 1):
            seen.update((await _rpc(s, url, "eth_getBlockByNumber", hex(n), False))
                        ["transactions"])
    return seen, waited


def main(argv: list[str]) -> int:
    ap = bench_parser("submit", __doc__)
    ap.add_argument("--only", choices=["paths", "fsync"],
                    help="run only the submission paths, or only the fsync comparison")
    ap.add_argument("--txs", type=int, default=30_000,
                    help="transactions per list path (http-batch, ws-batch)")
    ap.add_argument("--single-txs", type=int, default=3_000,
                    help="transactions sent one request each (the baseline)")
    ap.add_argument("--batch", type=int, default=1_000, help="transactions per list")
    ap.add_argument("--in-flight", type=int, default=2,
                    help="lists in flight on the WebSocket (pipelined)")
    ap.add_argument("--senders", type=int, default=1_000, help="senders per path")
    ap.add_argument("--submitters", type=int, default=64,
                    help="concurrent submitters of the fsync comparison (one connection each)")
    ap.add_argument("--group-txs", type=int, default=12_800,
                    help="transactions per node of the fsync comparison")
    ap.add_argument("--group-rounds", type=int, default=2,
                    help="fsync/no-fsync node pairs of the comparison (ABBA order)")
    ap.add_argument("--block-time-ms", type=int, default=1000,
                    help="the node's block period in ms ([node] block_time_ms; the value the "
                    "node ships with)")
    ap.add_argument("--paused", action="store_true",
                    help="pause block production during the paths' load (admission alone; "
                    "blocks are built after it)")
    ap.add_argument("--no-sync-writes", action="store_true",
                    help="[state] sync_writes = false for the paths' node (default: true, "
                    "fsync'd group commit)")
    ap.add_argument("--seed", type=int, default=None, help="transaction seed (printed)")
    ap.add_argument("--drain-timeout", type=float, default=120.0,
                    help="seconds to wait for every acknowledged transaction to be included")
    add_json_option(ap)
    args = ap.parse_args(argv)
    for name in ("txs", "single_txs", "batch", "in_flight", "senders", "block_time_ms",
                 "submitters", "group_txs", "group_rounds"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.group_txs < args.submitters:
        ap.error("--group-txs must be >= --submitters (one transaction per submitter at least)")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    result = BenchResult("submit", ["submit", *argv])
    do_paths, do_fsync = args.only in (None, "paths"), args.only in (None, "fsync")
    sync = not args.no_sync_writes
    blocks = ("production paused during the load" if args.paused
              else f"{args.block_time_ms} ms blocks meanwhile")
    parts = []
    if do_paths:
        parts.append(f"lists of {args.batch:,} over HTTP and WebSocket ({args.txs:,} txs each) vs "
                     f"{args.single_txs:,} single requests, one connection per path, RocksDB"
                     f"{' + fsync' if sync else ' without fsync'}, {blocks}, default limits")
    if do_fsync:
        parts.append(f"fsync vs no fsync at {args.submitters} concurrent submitters "
                     f"({args.group_txs:,} txs per node, {args.group_rounds} pairs)")
    print(f"dubhe-bench submit: seed {seed}; {'; '.join(parts)}; machine {os.cpu_count()} cores")
    missing_total = 0
    ratio: float | None = None
    ctx = mp.get_context("fork" if sys.platform == "linux" else "spawn")
    with ctx.Pool(os.cpu_count() or 2) as pool:
        if do_paths:
            missing_total += run_paths(args, seed, sync, pool, result)
        if do_fsync:
            ratio, missing = compare_sync(args, seed, pool, result)
            missing_total += missing
    result.extra(seed=seed, batch=args.batch, in_flight=args.in_flight, senders=args.senders,
                 sync_writes=sync, paused=args.paused, block_time_ms=args.block_time_ms,
                 submitters=args.submitters, group_txs=args.group_txs,
                 group_rounds=args.group_rounds)
    if do_paths:
        small = args.txs < 10 * args.batch
        for p in ("http-batch", "ws-batch"):
            result.target(f"{p}.tps", target=TARGET_TPS, value=result.figures[f"{p}.tps"],
                          direction="higher", unit="tx/s", judged=not small,
                          note="fewer than 10 lists per path" if small else "")
    if do_fsync:
        small = args.group_txs < 10 * args.submitters
        result.target("fsync.ratio_vs_no_fsync", target=TARGET_FSYNC_RATIO, value=ratio,
                      direction="higher", unit="x", judged=not small,
                      note="fewer than 10 transactions per submitter" if small else "")
    result.target("missing_acknowledged", target=0, value=missing_total, direction="lower",
                  unit="txs")
    result.print_targets()
    if missing_total:
        print(f"dubhe-bench submit: {missing_total} acknowledged transactions are in no block",
              file=sys.stderr)
    print(f"  verdict: {verdict(not result.missed)}")
    result.write(args.json)
    return result.exit_code()


def run_paths(args: argparse.Namespace, seed: int, sync: bool, pool: Any,
              result: BenchResult) -> int:
    """The submission paths on one node; returns acknowledged transactions missing."""
    counts = {"single": args.single_txs, "http-batch": args.txs, "ws-batch": args.txs}
    progress(f"signing {sum(counts.values()):,} transfers ({args.senders:,} senders per path)")
    txs = {p: sign_path(seed, g, args.senders, counts[p], pool) for g, p in enumerate(PATHS)}
    funded = {a: 10**9 for g in range(len(PATHS)) for a in sender_addresses(seed, g, args.senders)}
    progress(f"starting the node (RocksDB{' + fsync' if sync else ''}, {args.block_time_ms} ms "
             "blocks)")
    node = NodeServer({
        "state": {"sync_writes": sync},
        "node": {"genesis_balances": funded, "block_time_ms": args.block_time_ms},
        "api": {"max_body_bytes": max(1 << 20, args.batch * 700)},
        "security": {"admin_token": ADMIN_TOKEN},
    })
    results: dict[str, PathResult] = {}
    try:
        url, ws_url = node.rpc + "/", node.ws + "/"
        if args.paused:
            asyncio.run(admin(url, "dubhe_admin_pauseProduction"))
        probe = LoadProbe()
        runs = {
            "single": lambda: run_single(url, txs["single"]),
            "http-batch": lambda: run_http_batch(url, txs["http-batch"], args.batch),
            "ws-batch": lambda: run_ws_batch(ws_url, txs["ws-batch"], args.batch, args.in_flight),
        }
        for p in PATHS:
            progress(f"{p}: {len(txs[p]):,} transactions")
            probe.start()
            results[p] = asyncio.run(runs[p]())
            results[p].others = probe.stop()
        if args.paused:
            asyncio.run(admin(url, "dubhe_admin_resumeProduction"))
        progress("checking that every acknowledged transaction is included")
        seen, waited = asyncio.run(included(url, args.drain_timeout))
    finally:
        node.stop()
    base = results["single"].tps
    rows = []
    missing_total = 0
    for p in PATHS:
        r = results[p]
        missing = sum(1 for h in r.acked if h not in seen)
        missing_total += missing
        errors = ", ".join(f"{c} x {n:,}" for c, n in sorted(r.errors.items())) or "-"
        rows.append([p, r.sent, len(r.acked), errors, r.seconds, r.tps,
                     f"{r.tps / base:.2f}x" if base else "n/a", missing, f"{r.others:.0%}"])
        result.figure(f"{p}.tps", r.tps)
        result.figure(f"{p}.acked", len(r.acked))
        result.figure(f"{p}.errors", sum(r.errors.values()))
        result.figure(f"{p}.missing", missing)
        result.figure(f"{p}.others_cpu_share", r.others)
        if p != "single":
            result.figure(f"{p}.ratio_vs_single", r.tps / base if base else None)
    print(table(["path", "sent", "acked", "errors", "seconds", "acked tx/s", "vs single",
                 "missing after drain", "others"], rows))
    print("(others: CPU share of other processes on the machine during the path; the node, its "
          "block production and this client share the rest)")
    print(f"included after the load: {len(seen):,} transactions ({waited:.1f} s to drain)")
    result.figure("drain_seconds", waited)
    return missing_total


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

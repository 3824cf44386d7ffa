"""``dubhe-bench submit``: acknowledged (durable) tx/s from one connection, by submission path.

Against the same node in one run: ``dubhe_sendTransactions`` lists over HTTP (one keep-alive
connection, one list at a time) and over one WebSocket (lists pipelined), and single
``dubhe_sendTransaction`` requests over one keep-alive connection (the baseline).

The node runs as configured by default where it matters: RocksDB state (every acknowledged
transaction is in the WAL before the reply; ``--sync-writes`` adds an fsync), the RISC-V VM, 1 s
blocks produced while the load runs (``--block-time-ms``), and the default per-connection limits
(so the run also shows that they let a load generator through). Transactions are native-token
transfers between funded accounts, signed before the clock starts (seeded; the seed is printed).
Each path gets its own senders, so no path's nonces wait on another's.

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

from bench.common import BenchResult, NodeServer, add_json_option, progress, table, verdict
from bench.scheduler import LoadProbe
from node.core import keys
from node.core.codec import pack_u64
from node.core.hexutil import data, parse_qty
from node.core.tx import Signer, sign_tx

TARGET_TPS = 10_000.0
CHAIN_ID = 0x44554248
PATHS = ("single", "http-batch", "ws-batch")
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
    ap = argparse.ArgumentParser(prog="dubhe-bench submit",
                                 description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--txs", type=int, default=30_000,
                    help="transactions per list path (http-batch, ws-batch)")
    ap.add_argument("--single-txs", type=int, default=3_000,
                    help="transactions sent one request each (the baseline)")
    ap.add_argument("--batch", type=int, default=1_000, help="transactions per list")
    ap.add_argument("--in-flight", type=int, default=2,
                    help="lists in flight on the WebSocket (pipelined)")
    ap.add_argument("--senders", type=int, default=1_000, help="senders per path")
    ap.add_argument("--block-time-ms", type=int, default=1000,
                    help="[node] block_time_ms (the node's default: 1000)")
    ap.add_argument("--paused", action="store_true",
                    help="pause block production during the load (admission alone; blocks are "
                    "built after it)")
    ap.add_argument("--sync-writes", action="store_true",
                    help="[state] sync_writes = true: fsync every acknowledged write")
    ap.add_argument("--seed", type=int, default=None, help="transaction seed (printed)")
    ap.add_argument("--drain-timeout", type=float, default=120.0,
                    help="seconds to wait for every acknowledged transaction to be included")
    add_json_option(ap)
    args = ap.parse_args(argv)
    for name in ("txs", "single_txs", "batch", "in_flight", "senders", "block_time_ms"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    result = BenchResult("submit", ["submit", *argv])
    counts = {"single": args.single_txs, "http-batch": args.txs, "ws-batch": args.txs}
    blocks = ("production paused during the load" if args.paused
              else f"{args.block_time_ms} ms blocks meanwhile")
    print(f"dubhe-bench submit: seed {seed}; lists of {args.batch:,} over HTTP and WebSocket "
          f"({args.txs:,} txs each) vs {args.single_txs:,} single requests; one connection per "
          f"path; RocksDB{' + fsync' if args.sync_writes else ''}, {blocks}, default limits; "
          f"machine {os.cpu_count()} cores")
    progress(f"signing {sum(counts.values()):,} transfers ({args.senders:,} senders per path)")
    ctx = mp.get_context("fork" if sys.platform == "linux" else "spawn")
    with ctx.Pool(os.cpu_count() or 2) as pool:
        txs = {p: sign_path(seed, g, args.senders, counts[p], pool) for g, p in enumerate(PATHS)}
    funded = {a: 10**9 for g in range(len(PATHS)) for a in sender_addresses(seed, g, args.senders)}
    progress(f"starting the node (RocksDB, {args.block_time_ms} ms blocks)")
    node = NodeServer({
        "state": {"sync_writes": args.sync_writes},
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
    result.extra(seed=seed, batch=args.batch, in_flight=args.in_flight, senders=args.senders,
                 sync_writes=args.sync_writes, paused=args.paused,
                 block_time_ms=args.block_time_ms)
    small = args.txs < 10 * args.batch
    for p in ("http-batch", "ws-batch"):
        result.target(f"{p}.tps", target=TARGET_TPS, value=results[p].tps, direction="higher",
                      unit="tx/s", judged=not small,
                      note="fewer than 10 lists per path" if small else "")
    result.target("missing_acknowledged", target=0, value=missing_total, direction="lower",
                  unit="txs")
    result.print_targets()
    if missing_total:
        print(f"dubhe-bench submit: {missing_total} acknowledged transactions are in no block",
              file=sys.stderr)
    print(f"  verdict: {verdict(not result.missed)}")
    result.write(args.json)
    return result.exit_code()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

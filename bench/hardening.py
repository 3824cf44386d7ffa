"""Abuse figures of issue #18: slow clients against fresh ones (slowloris), and a batch of big
full-block reads against the event loop and memory, on the node as it ships.

``--only slowloris``: the node runs under an open-file limit (``--nofile``, 1,024 as in the
issue) while ``--slow`` clients each send one header byte per second and reconnect whenever the
node closes them, from one source address (``--spread one``: 127.0.0.2) or one each
(``--spread many``: 127.0.x.y). Fresh clients from 127.0.0.1 probe ``eth_blockNumber`` on new
connections every 0.25 s. Baseline: the same probes with no slow clients, same node.

``--only big-blocks``: ``--txs`` transactions with ``--args-kib`` KiB of arguments are
submitted while production is paused, then one 10-item batch of
``eth_getBlockByNumber(n, true)`` for the block holding the most of them (as in the issue) is
sent while ``eth_blockNumber`` probes every 10 ms measure the event loop's stall. Figures: the
response's size, the node's peak RSS (VmHWM) before and after, the longest probe vs the longest
probe of a quiet baseline.

``--node-src DIR`` runs another checkout's node (``git worktree add DIR <commit>``, or
``git archive <commit> node | tar -x -C DIR``) in DIR with this checkout's tools: the
before/after comparison in one command.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.common import BenchResult, add_json_option, bench_parser, pct, progress, table
from lab.orchestrate.node_proc import NodeProcess, default_config
from node.core import keys
from node.core.hexutil import data
from node.core.tx import Signer, sign_tx

JSON = {"Content-Type": "application/json"}
CALL = b'{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'
ADMIN = "bench-admin-token"
CHAIN_ID = 0x44554248


def _node(workdir: Path, *, nofile: int | None, node_src: str | None,
          api: dict[str, Any] | None = None) -> NodeProcess:
    cfg = default_config(workdir, security={"admin_token": ADMIN,
                                            "audit_log": str(workdir / "audit.jsonl")},
                         **({"api": api} if api else {}))
    prefix: tuple[str, ...] = ("prlimit", f"--nofile={nofile}:{nofile}") if nofile else ()
    if node_src:  # ``python -m node`` imports from its working directory first
        prefix = (*prefix, "env", f"--chdir={Path(node_src).resolve()}")
    return NodeProcess(workdir, cfg, prefix=prefix).start()


def _port(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


async def _probe(port: int, timeout_s: float = 2.0) -> float | None:
    """One eth_blockNumber on a fresh connection from 127.0.0.1: seconds, or None (failed)."""
    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Connection: close\r\nContent-Length: " + str(len(CALL)).encode()
                    + b"\r\n\r\n" + CALL)
            got = await r.read()
            w.close()
    except (OSError, TimeoutError):
        return None
    return time.perf_counter() - t0 if b'"result"' in got else None


async def _slow_client(port: int, src: str, stop: asyncio.Event, stats: dict[str, int]) -> None:
    """Sends a header byte per second; reconnects 0.2 s after being closed (counting each
    connection)."""
    while not stop.is_set():
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0)), 5)
        except (OSError, TimeoutError):
            stats["connect_failures"] += 1
            await asyncio.sleep(0.5)
            continue
        stats["connections"] += 1
        stats["open"] += 1
        try:
            for b in b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"z" * 100_000:
                if stop.is_set() or r.at_eof():
                    break
                w.write(bytes((b,)))
                await w.drain()
                await asyncio.sleep(1.0)
        except OSError:
            pass
        finally:
            stats["open"] -= 1
            w.close()
        await asyncio.sleep(0.2)  # reconnect delay (the client machine has 2 cores too)


async def _probe_for(port: int, seconds: float, interval: float) -> list[float | None]:
    out: list[float | None] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out.append(await _probe(port))
        await asyncio.sleep(interval)
    return out


def _summary(samples: list[float | None]) -> tuple[float, float, float]:
    ok = [s for s in samples if s is not None]
    return (len(ok) / len(samples) if samples else float("nan"),
            pct(ok, 0.5) * 1000 if ok else float("nan"),
            pct(ok, 0.99) * 1000 if ok else float("nan"))


async def slowloris(args: Any, result: BenchResult) -> None:
    with tempfile.TemporaryDirectory(prefix="dubhe-bench-") as tmp:
        node = _node(Path(tmp), nofile=args.nofile, node_src=args.node_src)
        port = _port(node.rpc)
        try:
            progress(f"baseline: probes for {args.baseline_seconds:g} s, no slow clients")
            base = await _probe_for(port, args.baseline_seconds, 0.25)
            stop = asyncio.Event()
            stats = {"connections": 0, "open": 0, "connect_failures": 0}
            srcs = ["127.0.0.2"] * args.slow if args.spread == "one" else [
                f"127.0.{1 + i // 250}.{1 + i % 250}" for i in range(args.slow)]
            progress(f"{args.slow} slow clients from {len(set(srcs))} address(es), "
                     f"probes for {args.seconds:g} s")
            tasks = [asyncio.create_task(_slow_client(port, s, stop, stats)) for s in srcs]
            await asyncio.sleep(min(5.0, args.seconds / 3))
            held = stats["open"]
            attacked = await _probe_for(port, args.seconds, 0.25)
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            node.stop()
    b_ok, b50, b99 = _summary(base)
    a_ok, a50, a99 = _summary(attacked)
    print(f"slowloris: node under RLIMIT_NOFILE {args.nofile}, {args.slow} slow clients "
          f"({args.spread} address{'es' if args.spread == 'many' else ''}), "
          f"node source {args.node_src or 'this checkout'}")
    print(table(["phase", "probes", "answered", "p50 ms", "p99 ms"], [
        ["baseline", len(base), f"{b_ok:.1%}", b50, b99],
        ["slow clients", len(attacked), f"{a_ok:.1%}", a50, a99],
    ]))
    print(f"  slow clients: {stats['connections']:,} connections made, {held:,} open after the "
          f"ramp, {stats['connect_failures']:,} connect failures")
    result.figure("slowloris.baseline_answered", b_ok)
    result.figure("slowloris.p50_ms", a50)
    result.figure("slowloris.p50_vs_baseline", a50 / b50 if b50 else None)
    result.figure("slowloris.slow_connections", stats["connections"])
    result.target("slowloris.answered", target=0.99, value=a_ok, direction="higher",
                  unit="share")


async def _rpc(s: aiohttp.ClientSession, url: str, method: str, params: list[Any],
               token: bool = False) -> Any:
    headers = {**JSON, **({"Authorization": f"Bearer {ADMIN}"} if token else {})}
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    async with s.post(url, data=body, headers=headers) as r:
        return orjson.loads(await r.read())


def _hwm_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MiB."""
    vals = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            vals[k] = int(v.split()[0]) / 1024
    return vals["VmRSS"], vals["VmHWM"]


async def big_blocks(args: Any, result: BenchResult) -> None:
    with tempfile.TemporaryDirectory(prefix="dubhe-bench-") as tmp:
        node = _node(Path(tmp), nofile=None, node_src=args.node_src)
        url = node.rpc
        assert node.proc is not None
        pid = node.proc.pid
        try:
            async with aiohttp.ClientSession() as s:
                await _rpc(s, url, "dubhe_admin_pauseProduction", [], token=True)
                signer = Signer.from_seed(b"bench-hardening")
                progress(f"submitting {args.txs} transactions of {args.args_kib} KiB args")
                hashes = []
                for nonce in range(args.txs):
                    tx = sign_tx(signer, chain_id=CHAIN_ID, nonce=nonce, to=keys.COUNTER_DEMO,
                                 method="get", args=bytes(args.args_kib * 1024))
                    hashes.append((await _rpc(s, url, "dubhe_sendTransaction",
                                              [data(tx.raw)]))["result"])
                await _rpc(s, url, "dubhe_admin_resumeProduction", [], token=True)
                blocks: dict[str, int] = {}
                deadline = time.monotonic() + 120
                for h in hashes:
                    while True:
                        rc = (await _rpc(s, url, "eth_getTransactionReceipt", [h]))["result"]
                        if rc is not None:
                            blocks[rc["blockNumber"]] = blocks.get(rc["blockNumber"], 0) + 1
                            break
                        if time.monotonic() > deadline:
                            raise RuntimeError("transactions not included within 120 s")
                        await asyncio.sleep(0.05)
                biggest = max(blocks, key=lambda b: blocks[b])
                progress(f"blocks {dict(sorted(blocks.items()))}; reading {biggest} x10")
                _, hwm0 = _hwm_mib(pid)
                quiet = await _loop_probe(s, url, 2.0)
                batch = orjson.dumps([{"jsonrpc": "2.0", "id": i, "method":
                                       "eth_getBlockByNumber", "params": [biggest, True]}
                                      for i in range(10)])
                probes = asyncio.create_task(_loop_probe(s, url, None))
                t0 = time.perf_counter()
                async with s.post(url, data=batch, headers=JSON) as r:
                    body = await r.read()
                took = time.perf_counter() - t0
                await asyncio.sleep(0.2)
                probes.cancel()
                try:
                    loaded = await probes
                except asyncio.CancelledError:
                    loaded = []
                rss1, hwm1 = _hwm_mib(pid)
                errors = [o["error"]["code"] for o in orjson.loads(body) if "error" in o]
        finally:
            node.stop()
    print(f"big blocks: {args.txs} transactions x {args.args_kib} KiB args in "
          f"{len(blocks)} block(s) (largest {max(blocks.values())} transactions), then one "
          f"{len(batch)}-byte batch of 10 eth_getBlockByNumber(n, true); node source "
          f"{args.node_src or 'this checkout'}")
    print(table(["figure", "value"], [
        ["response bytes", len(body)],
        ["response time s", took],
        ["items refused (-32005)", len(errors)],
        ["node peak RSS MiB before -> after", f"{hwm0:,.0f} -> {hwm1:,.0f}"],
        ["longest eth_blockNumber ms: quiet -> during", f"{max(quiet) * 1000:,.1f} -> "
         f"{max(loaded or [0.0]) * 1000:,.1f}"],
    ]))
    result.figure("big_blocks.blocks", len(blocks))
    result.figure("big_blocks.largest_block_txs", max(blocks.values()))
    result.figure("big_blocks.response_bytes", len(body))
    result.figure("big_blocks.refused_items", len(errors))
    result.figure("big_blocks.peak_rss_mib_before", hwm0)
    result.figure("big_blocks.peak_rss_mib_after", hwm1)
    result.figure("big_blocks.rss_mib_after", rss1)
    result.figure("big_blocks.quiet_max_ms", max(quiet) * 1000)
    result.figure("big_blocks.loaded_max_ms", max(loaded or [0.0]) * 1000)
    result.target("big_blocks.response_bytes_within_limit", target=32 << 20,
                  value=len(body), direction="lower", unit="bytes")


async def _loop_probe(s: aiohttp.ClientSession, url: str, seconds: float | None) -> list[float]:
    """eth_blockNumber every 10 ms on one keep-alive connection: each call's seconds (until
    ``seconds`` pass, or until cancelled: then what was measured)."""
    out: list[float] = []
    end = time.monotonic() + seconds if seconds is not None else float("inf")
    try:
        while time.monotonic() < end:
            t0 = time.perf_counter()
            async with s.post(url, data=CALL, headers=JSON) as r:
                await r.read()
            out.append(time.perf_counter() - t0)
            await asyncio.sleep(0.01)
    except asyncio.CancelledError:
        pass
    return out


def main(argv: list[str]) -> int:
    ap = bench_parser("hardening", __doc__)
    ap.add_argument("--only", choices=["slowloris", "big-blocks"], help="run one part")
    ap.add_argument("--slow", type=int, default=1100, help="slow clients")
    ap.add_argument("--spread", choices=["one", "many"], default="one",
                    help="slow clients from one source address or one address each")
    ap.add_argument("--seconds", type=float, default=30.0, help="probing under slow clients")
    ap.add_argument("--baseline-seconds", type=float, default=5.0, help="probing without")
    ap.add_argument("--nofile", type=int, default=1024,
                    help="the node's open-file limit, soft and hard (prlimit)")
    ap.add_argument("--txs", type=int, default=150, help="big transactions")
    ap.add_argument("--args-kib", type=int, default=60, help="arguments per transaction, KiB")
    ap.add_argument("--node-src", metavar="DIR",
                    help="run the node of another checkout (its package on PYTHONPATH)")
    add_json_option(ap)
    args = ap.parse_args(argv)
    if args.slow < 1 or args.seconds <= 0 or args.txs < 1 or not 1 <= args.args_kib <= 63:
        ap.error("--slow and --txs must be >= 1, --seconds > 0, --args-kib 1..63")
    if args.node_src and not (Path(args.node_src) / "node" / "__main__.py").is_file():
        ap.error(f"--node-src {args.node_src}: no node package there")
    result = BenchResult("hardening", ["hardening", *argv])
    try:
        if args.only in (None, "slowloris"):
            asyncio.run(slowloris(args, result))
        if args.only in (None, "big-blocks"):
            asyncio.run(big_blocks(args, result))
    except KeyboardInterrupt:
        return 130
    result.print_targets()
    result.write(args.json)
    sys.stdout.flush()
    return result.exit_code()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))


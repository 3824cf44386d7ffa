"""``dubhe-bench rpc``: eth_blockNumber throughput and latency against the node, and against a bare
aiohttp handler returning the same JSON, measured in the same run at 1, 16 and 64 clients.

Load comes from ``wrk`` (C, Debian package) when installed, otherwise from a Python aiohttp client
in a separate process (which then caps the measurable rate; the output says which was used).
Target: node >= 0.7x the bare handler's req/s at 64 clients.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    BenchResult,
    NodeServer,
    add_json_option,
    bench_parser,
    pct,
    progress,
    table,
    verdict,
)

BODY = b'{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'
TARGET_RATIO = 0.7
TARGET_CLIENTS = 64  # the concurrency the target is stated at


JSON_HEADERS = {"Content-Type": "application/json"}


def _bare_server(port_q: mp.Queue) -> None:  # type: ignore[type-arg]
    """The baseline: aiohttp returning a fixed eth_blockNumber response, nothing else."""
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(
            body=b'{"jsonrpc":"2.0","id":1,"result":"0x2a"}', content_type="application/json"
        )

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(runner, sock)
        await site.start()
        port_q.put(sock.getsockname()[1])
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


_LAT = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")


def _wrk(url: str, clients: int, seconds: float) -> tuple[float, float, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(
            f'wrk.method = "POST"\nwrk.body = \'{BODY.decode()}\'\nwrk.headers["Content-Type"] = '
            '"application/json"\n'
        )
        script = f.name
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t",
                "1",
                "-c",
                str(clients),
                "-d",
                f"{max(1, round(seconds))}s",
                "--latency",
                "-s",
                script,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        ).stdout
    finally:
        os.unlink(script)
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    lat = {q: float(v) * unit[u] for q, v, u in _LAT.findall(out)}
    m = _RPS.search(out)
    return (
        float(m.group(1)) if m else 0.0,
        lat.get("50", float("nan")),
        lat.get("99", float("nan")),
    )


def _py_client(
    url: str, clients: int, seconds: float, out: mp.Queue  # type: ignore[type-arg]
) -> None:
    import aiohttp

    async def main() -> None:
        lat: list[float] = []
        conn = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=conn) as s:
            stop = time.monotonic() + seconds

            async def worker() -> None:
                while time.monotonic() < stop:
                    t0 = time.perf_counter()
                    async with s.post(url, data=BODY, headers=JSON_HEADERS) as r:
                        await r.read()
                    lat.append((time.perf_counter() - t0) * 1000)

            t0 = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(clients)))
            out.put((len(lat) / (time.monotonic() - t0), pct(lat, 0.5), pct(lat, 0.99)))

    asyncio.run(main())


def _python_load(url: str, clients: int, seconds: float) -> tuple[float, float, float]:
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    p = mp.Process(target=_py_client, args=(url, clients, seconds, q))
    p.start()
    res: tuple[float, float, float] = q.get(timeout=seconds + 60)
    p.join()
    return res


def main(argv: list[str]) -> int:
    ap = bench_parser("rpc", __doc__)
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of each measurement")
    ap.add_argument("--clients", default="1,16,64", help="comma-separated concurrency levels")
    ap.add_argument("--client", choices=["auto", "wrk", "python"], default="auto",
                    help="load generator: wrk, or Python clients (auto: wrk when installed)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating bare/node rounds per level; the median round is reported")
    add_json_option(ap)
    args = ap.parse_args(argv)
    res = BenchResult("rpc", argv)
    levels = [int(x) for x in args.clients.split(",")]
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)
    if args.client == "wrk" and not shutil.which("wrk"):
        print("dubhe-bench rpc: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    load = _wrk if use_wrk else _python_load
    print(
        f"dubhe-bench rpc: eth_blockNumber, {args.rounds} x {args.seconds:.0f} s per cell "
        f"(median), load from {'wrk' if use_wrk else 'a Python aiohttp client'}, "
        f"machine {os.cpu_count()} cores"
    )
    progress("starting the node (memory state, 1 s blocks)")
    node = NodeServer({"state": {"backend": "memory"}, "node": {"block_time_ms": 1000},
                       "api": {"rate_limit_per_s": 1e9, "rate_limit_burst": 10**9}})
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    bare = mp.Process(target=_bare_server, args=(q,), daemon=True)
    bare.start()
    bare_url = f"http://127.0.0.1:{q.get(timeout=20)}/"
    rows = []
    results: dict[tuple[str, int], tuple[float, float, float]] = {}
    try:
        targets = (("bare aiohttp", bare_url), ("dubhe-node", node.rpc + "/"))
        for _, url in targets:
            load(url, max(levels), 1.0)  # warm-up
        for c in levels:
            # Alternate the two targets round by round so machine noise hits both alike.
            runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _ in targets}
            for r in range(args.rounds):
                for name, url in targets:
                    progress(f"{c} clients, round {r + 1}/{args.rounds}: {name}")
                    runs[name].append(load(url, c, args.seconds))
            for name, _ in targets:
                ordered = sorted(runs[name])
                results[(name, c)] = ordered[len(ordered) // 2]
            b, n = results[("bare aiohttp", c)], results[("dubhe-node", c)]
            ratio = n[0] / b[0] if b[0] else float("nan")
            rows.append([c, b[0], b[1], b[2], n[0], n[1], n[2], f"{ratio:.2f}x"])
    finally:
        node.stop()
        if bare.pid:
            os.kill(bare.pid, signal.SIGTERM)
        bare.join(5)
    print(table(["clients", "bare req/s", "bare p50 ms", "bare p99 ms", "node req/s", "node p50 ms",
                 "node p99 ms", "node/bare"], rows))
    for (name, c), (rps, p50, p99) in results.items():
        who = "bare" if name == "bare aiohttp" else "node"
        res.figure(f"{who}_rps_c{c}", rps)
        res.figure(f"{who}_p50_ms_c{c}", p50)
        res.figure(f"{who}_p99_ms_c{c}", p99)
    top = max(levels)
    ratio = results[("dubhe-node", top)][0] / results[("bare aiohttp", top)][0]
    small = top < TARGET_CLIENTS
    ok = res.target("node_vs_bare", target=TARGET_RATIO, value=ratio, direction="higher", unit="x",
                    judged=not small,
                    note=f"the target is stated at {TARGET_CLIENTS} clients" if small else "")
    print(f"target: node >= {TARGET_RATIO}x bare at {top} clients: {ratio:.2f}x {verdict(ok)}")
    res.extra(load="wrk" if use_wrk else "python", levels=levels, rounds=args.rounds,
              seconds=args.seconds)
    res.write(args.json)
    return res.exit_code()


__all__ = ["Path", "main"]

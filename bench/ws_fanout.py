"""``dubhe-bench ws-fanout``: newHeads delivery latency with many subscribers connected directly.

Starts the node with ``--block-ms`` blocks (default 200 ms = 5 blocks/s), connects
``--subscribers`` WebSocket clients spread over ``--procs`` client processes, subscribes each to
newHeads and measures, per notification, receive time minus the ``emittedMs`` the node puts in
the envelope (its clock, same machine). Reports p50/p99/max, missed notifications and the node's
RSS.
The baseline in the same run is one subscriber alone. Targets: p99 < 50 ms at 5 blocks/s with
1,000 subscribers; node RSS < 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import re
import time
from urllib.parse import urlsplit

import psutil

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

_TS = re.compile(rb'"emittedMs":"0x([0-9a-f]+)"')  # the node's emit time of the notification
_NUM = re.compile(rb'"number":"0x([0-9a-f]+)"')


P99_TARGET_MS, RSS_TARGET_MIB = 50.0, 300.0
#: What the latency and memory targets assume: 1,000 subscribers at 5 blocks/s (or more).
TARGET_SUBSCRIBERS, TARGET_BLOCK_MS = 1000, 200


class _Lean(asyncio.Protocol):
    """A minimal RFC 6455 client for measurement: handshake, subscribe, parse unmasked server
    frames, pull ``number``/``timestampMs`` out with a regex. Costs a few microseconds per
    message, so the clients do not dominate the machine the node runs on."""

    def __init__(self, host: str, path: str, lat: list[float], stats: dict[str, int]) -> None:
        self.host, self.path, self.lat, self.stats = host, path, lat, stats
        self.buf = b""
        self.upgraded = False
        self.subscribed = asyncio.get_running_loop().create_future()
        self.last: int | None = None
        self.recording = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: "
                "13\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        now = time.time() * 1000
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buf.startswith(b"HTTP/1.1 101"):
                self.stats["errors"] += 1
                assert self.transport is not None
                self.transport.close()
                return
            self.upgraded = True
            self.buf = self.buf[end + 4 :]
            payload = b'{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}'
            mask = os.urandom(4)
            masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            assert self.transport is not None
            self.transport.write(bytes((0x81, 0x80 | len(payload))) + mask + masked)
        buf = self.buf
        while len(buf) >= 2:
            n = buf[1] & 0x7F
            off = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, off = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, off = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < off + n:
                break
            opcode, msg = buf[0] & 0x0F, buf[off : off + n]
            buf = buf[off + n :]
            if opcode == 1:
                self._message(msg, now)
        self.buf = buf

    def _message(self, msg: bytes, now: float) -> None:
        if not self.subscribed.done():
            self.subscribed.set_result(None)
            return
        if not self.recording:
            return
        ts, num = _TS.search(msg), _NUM.search(msg)
        if ts is None or num is None:
            return
        number = int(num.group(1), 16)
        if self.last is not None and number != self.last + 1:
            self.stats["missed"] += number - self.last - 1
        self.last = number
        self.lat.append(now - int(ts.group(1), 16))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.recording:
            self.stats["dropped"] += 1


def _lean_client(url: str, n: int, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    async def main() -> None:
        u = urlsplit(url)
        host, port = u.hostname or "127.0.0.1", u.port or 80
        lat: list[float] = []
        stats = {"missed": 0, "errors": 0, "dropped": 0}
        loop = asyncio.get_running_loop()
        protos: list[_Lean] = []
        sem = asyncio.Semaphore(64)

        async def one() -> None:
            async with sem:
                _, p = await loop.create_connection(
                    lambda: _Lean(f"{host}:{port}", u.path or "/", lat, stats), host, port
                )
                await asyncio.wait_for(p.subscribed, 20)
                protos.append(p)

        await asyncio.gather(*(one() for _ in range(n)))
        for p in protos:
            p.recording = True
        await asyncio.sleep(seconds)
        for p in protos:
            p.recording = False
            if p.transport is not None:
                p.transport.close()
        out.put((lat, stats["missed"], stats["errors"] + stats["dropped"]))

    asyncio.run(main())


def _measure(
    url: str, subscribers: int, procs: int, seconds: float
) -> tuple[list[float], int, int]:
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    share = [subscribers // procs + (1 if i < subscribers % procs else 0) for i in range(procs)]
    ps = [mp.Process(target=_lean_client, args=(url, k, seconds, q)) for k in share if k]
    for p in ps:
        p.start()
    lat: list[float] = []
    missed = errors = 0
    for _ in ps:
        part_lat, m, e = q.get(timeout=seconds + 120)
        lat += part_lat
        missed += m
        errors += e
    for p in ps:
        p.join()
    return lat, missed, errors


def main(argv: list[str]) -> int:
    ap = bench_parser("ws-fanout", __doc__)
    ap.add_argument("--subscribers", type=int, default=1000,
                    help="WebSocket subscribers, each subscribed to newHeads")
    ap.add_argument("--block-time-ms", dest="block_ms", type=int, default=200, metavar="MS",
                    help="the node's block period in ms ([node] block_time_ms)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds")
    ap.add_argument("--processes", dest="procs", type=int, default=1, metavar="N",
                    help="client processes the subscribers are spread over")
    # old spellings (docs/cli.md), hidden
    ap.add_argument("--block-ms", dest="block_ms", type=int, help=argparse.SUPPRESS,
                    default=argparse.SUPPRESS)
    ap.add_argument("--procs", dest="procs", type=int, help=argparse.SUPPRESS,
                    default=argparse.SUPPRESS)
    add_json_option(ap)
    args = ap.parse_args(argv)
    res = BenchResult("ws-fanout", argv)
    print(
        f"dubhe-bench ws-fanout: {args.subscribers} subscribers, {1000 / args.block_ms:.1f} "
        f"blocks/s, {args.seconds:.0f} s"
    )
    progress("starting the node")
    node = NodeServer(
        {
            "node": {"block_time_ms": args.block_ms},
            "api": {
                "max_connections": args.subscribers + 100,
                "rate_limit_per_s": 1e6,
                "rate_limit_burst": 10**6,
            },
        }
    )
    rows = []
    try:
        proc = psutil.Process(node.pid)
        rss0 = proc.memory_info().rss
        progress("baseline: 1 subscriber")
        base, bmiss, berr = _measure(node.ws, 1, 1, min(args.seconds, 5))
        progress(f"{args.subscribers} subscribers over {args.procs} processes")
        lat, missed, errors = _measure(node.ws, args.subscribers, args.procs, args.seconds)
        rss = proc.memory_info().rss
    finally:
        node.stop()
    for name, ls, m, e in (
        ("1 subscriber", base, bmiss, berr),
        (f"{args.subscribers} subscribers", lat, missed, errors),
    ):
        rows.append(
            [name, len(ls), pct(ls, 0.5), pct(ls, 0.99), max(ls) if ls else float("nan"), m, e]
        )
    print(table(["run", "notifications", "p50 ms", "p99 ms", "max ms", "missed", "errors"], rows))
    p99 = pct(lat, 0.99)
    print(
        f"node RSS: {rss0 / 2**20:.0f} MB idle -> {rss / 2**20:.0f} MB with {args.subscribers} "
        "subscribers"
    )
    print(f"p99 ratio vs 1 subscriber: {p99 / pct(base, 0.99):.1f}x")
    res.figure("baseline_p50_ms", pct(base, 0.5))
    res.figure("baseline_p99_ms", pct(base, 0.99))
    res.figure("p50_ms", pct(lat, 0.5))
    res.figure("max_ms", max(lat) if lat else None)
    res.figure("ratio_p99", p99 / pct(base, 0.99) if base else None)
    res.figure("rss_idle_mib", rss0 / 2**20)
    res.figure("notifications", len(lat))
    small = args.subscribers < TARGET_SUBSCRIBERS or args.block_ms > TARGET_BLOCK_MS
    note = (f"the target assumes >= {TARGET_SUBSCRIBERS} subscribers at <= {TARGET_BLOCK_MS} ms "
            "blocks" if small else "")
    ok_p99 = res.target("p99_ms", target=P99_TARGET_MS, value=p99, direction="lower", unit="ms",
                        passed=p99 < P99_TARGET_MS, judged=not small, note=note)
    ok_rss = res.target("rss_mib", target=RSS_TARGET_MIB, value=rss / 2**20, direction="lower",
                        unit="MiB", passed=rss < RSS_TARGET_MIB * 2**20, judged=not small,
                        note=note)
    ok_clean = res.target("missed_and_errors", target=0, value=missed + errors, direction="lower",
                          unit="")
    print(f"target: p99 < {P99_TARGET_MS:g} ms: {p99:.1f} ms {verdict(ok_p99)}; RSS < "
          f"{RSS_TARGET_MIB:g} MB: {rss / 2**20:.0f} MB {verdict(ok_rss)}; no missed "
          f"notifications: {missed} {verdict(ok_clean)}")
    res.extra(subscribers=args.subscribers, block_ms=args.block_ms, seconds=args.seconds)
    res.write(args.json)
    return res.exit_code()

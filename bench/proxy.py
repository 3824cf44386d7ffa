"""``dubhe-bench proxy``: the lab fault proxy against a direct connection, in the same run.

Measures, with the proxy in its own process (``python -m lab.proxy``) and the upstream servers in
another:

1. added latency per direction: small-message echo round trips, direct vs proxied (no toxics),
   interleaved; added = (proxied - direct) / 2 at p50 and p99;
2. throughput through one connection: a server streams as fast as it can; the client counts
   steady-state bytes per second, direct, proxied, and proxied with a 100 ms latency toxic;
3. connections held: N connections opened through the proxy, each echoes, held, echoes again;
4. aimed toxics: latency of adding and removing a toxic aimed at one connection (``target``)
   on a proxy with 1,000 open connections and 100 aimed toxics, vs on a proxy with 1 connection
   (each probed connection has one other aimed toxic), requests interleaved in the same run;
5. disconnect storm: 200 WebSocket subscribers of an upstream that pushes a head every 50 ms;
   a driver with no cap on requests in flight aims a ``ws_cut`` at each subscriber's connection
   in turn (the subscriber reconnects and is cut again) until 2,000 disconnects are forced.

Targets: p50 < 150 µs and p99 < 1 ms added per direction; >= 200 MB/s through one connection
with the latency toxic; 1,000 connections held; aimed add/remove p50 and p99 at most 2x the
1-connection figure; every storm disconnect forced (clients saw 1006, and the proxy counted one
``ws_cut`` firing per disconnect). Prints measured, baseline, ratio, PASS/MISS. Exit status 0
when every target passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from bench.common import BenchResult, add_json_option, bench_parser

TARGET_P50_US = 150.0
TARGET_P99_US = 1000.0
TARGET_MBPS = 200.0
TARGET_CONNS = 1000
TARGET_AIMED_RATIO = 2.0
HEAD_INTERVAL_S = 0.05


# -- upstream servers (run in a child process: ``python -m bench.proxy --serve``) ------------
class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.t.write(data)


class _Source(asyncio.Protocol):
    """Streams a 1 MiB block over and over, respecting flow control."""

    block = b"\xa5" * (1 << 20)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.paused = False
        self.t.set_write_buffer_limits(high=4 << 20)
        self._fill()

    def _fill(self) -> None:
        while not self.paused and not self.t.is_closing():
            self.t.write(self.block)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._fill()

    def connection_lost(self, exc: Exception | None) -> None:
        self.paused = True


async def _heads(ws: Any) -> None:
    """A subscriber's stream: one small text message (a "head") every ``HEAD_INTERVAL_S``."""
    from websockets.exceptions import ConnectionClosed

    n = 0
    try:
        while True:
            n += 1
            await ws.send(f'{{"head":{n}}}')
            await asyncio.sleep(HEAD_INTERVAL_S)
    except ConnectionClosed:
        pass


async def _serve() -> None:
    from websockets.asyncio.server import serve

    loop = asyncio.get_running_loop()
    echo = await loop.create_server(_Echo, "127.0.0.1", 0, backlog=4096)
    source = await loop.create_server(_Source, "127.0.0.1", 0, backlog=64)
    heads = await serve(_heads, "127.0.0.1", 0, compression=None, ping_interval=None,
                        backlog=4096)
    print(json.dumps({"echo": echo.sockets[0].getsockname()[1],
                      "source": source.sockets[0].getsockname()[1],
                      "heads": next(iter(heads.sockets)).getsockname()[1]}), flush=True)
    await asyncio.Event().wait()


def _run_loop(coro: Any) -> None:
    try:
        import uvloop

        uvloop.run(coro)
    except ImportError:
        asyncio.run(coro)


# -- orchestration ---------------------------------------------------------------------------
@dataclass
class Result:
    """One row of the table. A target row also names its figure (``key``), its threshold
    (``goal``, in ``goal_unit``: the measured unit, or ``x`` for a ratio to the baseline) and
    which way is better, for ``--json``."""

    name: str
    measured: float
    baseline: float | None
    unit: str
    target: str
    passed: bool | None
    key: str = ""
    goal: float | None = None
    direction: Literal["lower", "higher"] = "lower"
    goal_unit: str = ""
    judged: bool = True

    def line(self) -> str:
        base = f"{self.baseline:10.1f} {self.unit:5}" if self.baseline is not None else " " * 16
        ratio = f"x{self.measured / self.baseline:6.2f}" if self.baseline else " " * 7
        verdict = ("" if self.passed is None else "not judged" if not self.judged
                   else "PASS" if self.passed else "MISS")
        return (f"  {self.name:42} {self.measured:10.1f} {self.unit:5} {base} {ratio}  "
                f"{self.target:12} {verdict}")


def _progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _spawn(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError(f"{' '.join(args)} did not start")
    return proc, line.strip()


def _api(base: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read()
    return json.loads(text) if text else None


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _rtts(sock: socket.socket, n: int, msg: bytes = b"x" * 64) -> list[float]:
    out = []
    buf = bytearray(len(msg))
    for _ in range(n):
        t0 = time.perf_counter()
        sock.sendall(msg)
        got = 0
        view = memoryview(buf)
        while got < len(msg):
            got += sock.recv_into(view[got:])
        out.append(time.perf_counter() - t0)
    return out


def bench_latency(echo_port: int, proxy_port: int, samples: int) -> tuple[list[float], list[float]]:
    direct_sock, proxied_sock = _connect(echo_port), _connect(proxy_port)
    _rtts(direct_sock, 200)
    _rtts(proxied_sock, 200)  # warm-up
    direct: list[float] = []
    proxied: list[float] = []
    batch = 100
    for i in range(0, samples, batch):
        direct += _rtts(direct_sock, batch)
        proxied += _rtts(proxied_sock, batch)
        if i % (samples // 4 or 1) == 0:
            _progress(f"  latency: {i + batch}/{samples} round trips each way")
    direct_sock.close()
    proxied_sock.close()
    return direct, proxied


def bench_throughput(port: int, seconds: float, warmup: float = 0.3) -> float:
    """Steady-state MB/s reading from a streaming source through ``port``."""
    sock = _connect(port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    t_start = time.perf_counter()
    while time.perf_counter() - t_start < warmup:
        sock.recv_into(view)
    count = 0
    t0 = time.perf_counter()
    while (now := time.perf_counter()) - t0 < seconds:
        count += sock.recv_into(view)
    sock.close()
    return count / (now - t0) / 1e6


def bench_connections(
    proxy_port: int, n: int, hold: float, base: str, proxy: str
) -> tuple[int, int]:
    socks = []
    for i in range(n):
        socks.append(_connect(proxy_port))
        if (i + 1) % 250 == 0:
            _progress(f"  connections: {i + 1}/{n} open")
    ok_first = sum(_echo_once(s) for s in socks)
    _progress(f"  connections: {ok_first}/{n} echoed; holding {hold:.1f} s")
    time.sleep(hold)
    gauge = _open_gauge(base, proxy)
    ok_second = sum(_echo_once(s) for s in socks)
    for s in socks:
        s.close()
    return min(ok_first, ok_second), gauge


def _echo_once(sock: socket.socket) -> int:
    try:
        sock.sendall(b"k")
        return int(sock.recv(1) == b"k")
    except OSError:
        return 0


def _open_gauge(base: str, proxy: str) -> int:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(f'dubhe_proxy_open_connections{{proxy="{proxy}"}}'):
                return int(float(line.rsplit(" ", 1)[1]))
    return -1


def _addr(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


class _Http:
    """One keep-alive HTTP/1.1 connection to the API, for timing single requests."""

    def __init__(self, base: str) -> None:
        host, _, port = base.removeprefix("http://").rpartition(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def timed(self, method: str, path: str, body: Any = None) -> float:
        data = json.dumps(body).encode() if body is not None else None
        t0 = time.perf_counter()
        self.conn.request(method, path, body=data,
                          headers={"Content-Type": "application/json"} if data else {})
        resp = self.conn.getresponse()
        resp.read()
        took = time.perf_counter() - t0
        if resp.status not in (200, 204):
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}")
        return took

    def close(self) -> None:
        self.conn.close()


def bench_aimed(base: str, echo_port: int, conns: int, aimed: int,
                ops: int) -> dict[str, dict[str, list[float]]]:
    """Add/remove latency of an aimed toxic: proxy ``aim_many`` (``conns`` connections,
    ``aimed`` aimed toxics) vs ``aim_one`` (1 connection), requests interleaved."""
    ports: dict[str, int] = {}
    for which in ("one", "many"):
        made = _api(base, "POST", "/proxies", {"name": f"aim_{which}", "listen": "127.0.0.1:0",
                                               "upstream": f"127.0.0.1:{echo_port}"})
        ports[which] = int(made["listen"].rpartition(":")[2])
    one = _connect(ports["one"])
    _echo_once(one)
    many: list[socket.socket] = []
    for i in range(conns):
        many.append(_connect(ports["many"]))
        if (i + 1) % 250 == 0:
            _progress(f"  aimed: {i + 1}/{conns} connections open")
    echoed = sum(_echo_once(s) for s in many)  # every link is up
    if echoed != conns:
        raise RuntimeError(f"only {echoed} of {conns} connections echoed")
    for i in range(aimed):
        _api(base, "POST", "/proxies/aim_many/toxics",
             {"type": "latency", "name": f"pre{i}", "attributes": {"latency": 0},
              "target": {"client": _addr(many[i % conns])}})
    _api(base, "POST", "/proxies/aim_one/toxics",
         {"type": "latency", "name": "pre0", "attributes": {"latency": 0},
          "target": {"client": _addr(one)}})
    _progress(f"  aimed: {aimed} aimed toxics in place; {ops} add+remove pairs per proxy")
    targets = {"one": _addr(one), "many": _addr(many[0])}  # each has one aimed toxic already
    out: dict[str, dict[str, list[float]]] = {w: {"add": [], "remove": []} for w in targets}
    api = _Http(base)
    try:
        for i in range(ops):
            order = ("one", "many") if i % 2 == 0 else ("many", "one")
            for which in order:
                out[which]["add"].append(api.timed(
                    "POST", f"/proxies/aim_{which}/toxics",
                    {"type": "latency", "name": "probe", "attributes": {"latency": 0},
                     "target": {"client": targets[which]}}))
                out[which]["remove"].append(api.timed(
                    "DELETE", f"/proxies/aim_{which}/toxics/probe"))
    finally:
        api.close()
        for sock in [one, *many]:
            sock.close()
        for which in ("one", "many"):
            _api(base, "DELETE", f"/proxies/aim_{which}")
    return out


@dataclass
class StormStats:
    forced: int = 0  # closes with 1006 after the toxic was added
    other: int = 0  # any other end: a close code, a failed connect or request, no cut in time
    fired: int = 0  # ws_cut firings the proxy counted
    seconds: float = 0.0
    proxy_cpu: float = 0.0  # proxy CPU seconds / wall seconds
    add_lat: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


STORM_STEP_S = 10.0  # bound of each step of a cycle (connect, add, cut, remove), as the issue's


async def _storm(base: str, listen: str, subscribers: int, disconnects: int,
                 stats: StormStats) -> None:
    import aiohttp
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    shares = [disconnects // subscribers + (k < disconnects % subscribers)
              for k in range(subscribers)]
    done = 0
    # No cap on requests in flight: the connector's limit is off.
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=STORM_STEP_S)) as http_session:

        async def cycle(k: int, name: str) -> None:
            async with connect(f"ws://{listen}/", compression=None, ping_interval=None,
                               open_timeout=STORM_STEP_S, close_timeout=1) as ws:
                await asyncio.wait_for(ws.recv(), STORM_STEP_S)  # subscribed: a head came
                host, port = ws.local_address[:2]
                t0 = time.perf_counter()
                async with http_session.post(
                        f"{base}/proxies/storm/toxics",
                        json={"type": "ws_cut", "name": name,
                              "target": {"client": f"{host}:{port}"}}) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"add {name}: HTTP {resp.status}")
                stats.add_lat.append(time.perf_counter() - t0)
                try:
                    async with asyncio.timeout(STORM_STEP_S):
                        while True:
                            await ws.recv()
                except ConnectionClosed:
                    pass
                if ws.close_code == 1006:
                    stats.forced += 1
                else:
                    stats.other += 1

        async def subscriber(k: int) -> None:
            nonlocal done
            for j in range(shares[k]):
                name = f"storm_{k}_{j}"
                try:
                    await cycle(k, name)
                except (OSError, TimeoutError, RuntimeError, aiohttp.ClientError) as exc:
                    stats.other += 1
                    stats.errors.append(f"subscriber {k}: {type(exc).__name__}: {exc}")
                try:
                    async with http_session.delete(
                            f"{base}/proxies/storm/toxics/{name}") as resp:
                        await resp.read()
                except (OSError, TimeoutError, aiohttp.ClientError) as exc:
                    stats.errors.append(f"remove {name}: {type(exc).__name__}: {exc}")
                done += 1
                if done % 250 == 0:
                    _progress(f"  storm: {done}/{disconnects} cycles")

        await asyncio.gather(*(subscriber(k) for k in range(subscribers)))


def bench_storm(base: str, heads_port: int, proxy_pid: int, subscribers: int,
                disconnects: int, stats: StormStats) -> None:
    """Run the storm, filling ``stats`` as it goes (so an aborted run still reports it)."""
    import psutil

    made = _api(base, "POST", "/proxies", {"name": "storm", "listen": "127.0.0.1:0",
                                           "upstream": f"127.0.0.1:{heads_port}"})
    proc = psutil.Process(proxy_pid)
    cpu0 = sum(proc.cpu_times()[:2])
    t0 = time.perf_counter()
    try:
        asyncio.run(_storm(base, made["listen"], subscribers, disconnects, stats))
    finally:
        stats.seconds = time.perf_counter() - t0
        stats.proxy_cpu = (sum(proc.cpu_times()[:2]) - cpu0) / stats.seconds
    with urllib.request.urlopen(base + "/metrics", timeout=10) as resp:
        for line in resp.read().decode().splitlines():
            if (line.startswith("dubhe_proxy_toxic_activations_total{")
                    and 'proxy="storm"' in line and 'type="ws_cut"' in line):
                stats.fired += int(float(line.rsplit(" ", 1)[1]))
    _api(base, "DELETE", "/proxies/storm")


def _measure(args: argparse.Namespace, procs: list[subprocess.Popen[str]],
             results: list[Result]) -> tuple[list[float], list[float]]:
    _progress("starting upstream servers and the proxy (python -m lab.proxy)")
    servers, line = _spawn(["-m", "bench.proxy", "--serve"])
    procs.append(servers)
    ports = json.loads(line)
    proxy_proc, line = _spawn(["-m", "lab.proxy", "--port", "0", "--seed", "1",
                               "--loop", args.loop])
    procs.append(proxy_proc)
    base = line.split("API on ", 1)[1].split()[0]
    _progress(f"proxy: {line}")
    echo = _api(base, "POST", "/proxies", {"name": "bench_echo", "listen": "127.0.0.1:0",
                                           "upstream": f"127.0.0.1:{ports['echo']}"})
    source = _api(base, "POST", "/proxies", {"name": "bench_source",
                                             "listen": "127.0.0.1:0",
                                             "upstream": f"127.0.0.1:{ports['source']}"})
    echo_port = int(echo["listen"].rpartition(":")[2])
    source_port = int(source["listen"].rpartition(":")[2])

    _progress(f"1/5 latency: {args.samples} echo round trips direct and proxied")
    direct, proxied = bench_latency(ports["echo"], echo_port, args.samples)
    for q, name, target in ((0.50, "p50", TARGET_P50_US), (0.99, "p99", TARGET_P99_US)):
        d, p = _pct(direct, q) * 1e6, _pct(proxied, q) * 1e6
        added = (p - d) / 2
        results.append(Result(f"added latency per direction {name}", added, None, "µs",
                              f"< {target:.0f} µs", added < target, key=f"added_latency_{name}_us",
                              goal=target, goal_unit="µs"))
        results.append(Result(f"  round trip {name} proxied (vs direct)", p, d, "µs", "", None))

    _progress(f"2/5 throughput: {args.seconds:.1f} s windows, direct / proxied / +100 ms latency")
    mb_direct = bench_throughput(ports["source"], args.seconds)
    _progress(f"  direct {mb_direct:.0f} MB/s")
    mb_proxy = bench_throughput(source_port, args.seconds)
    _progress(f"  proxied {mb_proxy:.0f} MB/s")
    _api(base, "POST", "/proxies/bench_source/toxics",
         {"type": "latency", "attributes": {"latency": 100}})
    mb_latency = bench_throughput(source_port, args.seconds, warmup=0.5)
    _progress(f"  proxied + latency 100 ms {mb_latency:.0f} MB/s")
    results.append(Result("throughput, no toxics", mb_proxy, mb_direct, "MB/s", "", None))
    results.append(Result("throughput, latency 100 ms toxic", mb_latency, mb_direct, "MB/s",
                          f">= {TARGET_MBPS:.0f} MB/s", mb_latency >= TARGET_MBPS,
                          key="throughput_latency_toxic_mbps", goal=TARGET_MBPS,
                          direction="higher", goal_unit="MB/s"))

    _progress(f"3/5 connections: {args.connections} through the proxy")
    held, gauge = bench_connections(echo_port, args.connections, args.hold, base, "bench_echo")
    results.append(Result("connections held (echoed before+after hold)", held,
                          float(args.connections), "conns", f">= {TARGET_CONNS}",
                          held >= TARGET_CONNS, key="connections_held", goal=TARGET_CONNS,
                          direction="higher", goal_unit="conns",
                          judged=args.connections >= TARGET_CONNS))
    results.append(Result("  proxy's open-connections gauge while held", gauge, None,
                          "conns", "", None))

    _progress(f"4/5 aimed toxics: add/remove with {args.aimed_connections} connections and "
              f"{args.aimed_toxics} aimed toxics vs 1 connection")
    aimed = bench_aimed(base, ports["echo"], args.aimed_connections, args.aimed_toxics,
                        args.toxic_ops)
    for op in ("add", "remove"):
        for q, name in ((0.50, "p50"), (0.99, "p99")):
            many, one = _pct(aimed["many"][op], q) * 1e6, _pct(aimed["one"][op], q) * 1e6
            results.append(Result(
                f"aimed toxic {op} {name}, {args.aimed_connections} conns (vs 1)", many, one,
                "µs", f"<= {TARGET_AIMED_RATIO:.0f}x", many <= TARGET_AIMED_RATIO * one,
                key=f"aimed_{op}_{name}_vs_one", goal=TARGET_AIMED_RATIO, goal_unit="x",
                judged=args.aimed_connections >= 1000 and args.aimed_toxics >= 100))

    _progress(f"5/5 storm: {args.disconnects} ws_cut disconnects over {args.subscribers} "
              "subscribers, no cap on requests in flight")
    storm = StormStats()
    try:
        bench_storm(base, ports["heads"], proxy_proc.pid, args.subscribers, args.disconnects,
                    storm)
    finally:
        ok = storm.forced == args.disconnects and storm.fired == args.disconnects
        results.append(Result(f"storm: disconnects forced (1006), {args.subscribers} subs",
                              storm.forced, float(args.disconnects), "disc",
                              f"= {args.disconnects}", ok, key="storm_disconnects_forced",
                              goal=args.disconnects, direction="higher", goal_unit="disc"))
        results.append(Result("  ws_cut firings counted by the proxy", storm.fired,
                              float(args.disconnects), "fires", "", None))
        results.append(Result("  other ends (not 1006, failed or late)", storm.other, None,
                              "", "", None))
        results.append(Result("  storm duration", storm.seconds, None, "s", "", None))
        results.append(Result("  proxy CPU during the storm", storm.proxy_cpu * 100, None,
                              "%", "", None))
        for q, name in ((0.50, "p50"), (0.99, "p99")):
            if storm.add_lat:
                results.append(Result(f"  ws_cut add {name} during the storm",
                                      _pct(storm.add_lat, q) * 1e3, None, "ms", "", None))
        for error in storm.errors[:5]:
            print(f"  storm error: {error}", file=sys.stderr)
        if len(storm.errors) > 5:
            print(f"  ... {len(storm.errors) - 5} more storm errors", file=sys.stderr)
    return direct, proxied


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = bench_parser("proxy", __doc__)
    p.add_argument("--samples", type=int, default=5000, help="echo round trips per side")
    p.add_argument("--seconds", type=float, default=2.0, help="throughput window per run")
    p.add_argument("--connections", type=int, default=TARGET_CONNS,
                   help="concurrent connections held open through the proxy")
    p.add_argument("--hold", type=float, default=2.0, help="seconds to hold the connections")
    p.add_argument("--aimed-connections", type=int, default=1000,
                   help="open connections on the proxy the aimed toxics are measured on")
    p.add_argument("--aimed-toxics", type=int, default=100,
                   help="aimed toxics already in place on that proxy")
    p.add_argument("--toxic-ops", type=int, default=400,
                   help="add+remove pairs timed on each proxy")
    p.add_argument("--subscribers", type=int, default=200, help="storm: WebSocket subscribers")
    p.add_argument("--disconnects", type=int, default=2000, help="storm: disconnects to force")
    p.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto",
                   help="event loop of the proxy process")
    add_json_option(p)
    p.add_argument("--timeout", type=float, default=300.0,
                   help="abort the whole run after this many seconds (default 300)")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.serve:
        # a helper of the benchmark: Ctrl-C reaches the whole group, and the benchmark process
        # stops this one (terminate) as part of its own cleanup
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _run_loop(_serve())
        return 0
    t_begin = time.perf_counter()
    load_start = ", ".join(f"{x:.2f}" for x in os.getloadavg())

    def _abort(signum: int, frame: object) -> None:
        raise TimeoutError(f"gave up after {args.timeout:.0f} s")

    signal.signal(signal.SIGALRM, _abort)
    signal.setitimer(signal.ITIMER_REAL, args.timeout)
    procs: list[subprocess.Popen[str]] = []
    results: list[Result] = []
    direct: list[float] = []
    proxied: list[float] = []
    failure: str | None = None
    try:
        direct, proxied = _measure(args, procs, results)
    except (TimeoutError, OSError, RuntimeError) as exc:
        failure = str(exc) or type(exc).__name__
        print(f"dubhe-bench proxy: {failure}", file=sys.stderr)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()

    print()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"dubhe-bench proxy  (proxy loop: {args.loop}; {os.cpu_count()} CPUs; load average "
          f"{load} at start {load_start}; {time.perf_counter() - t_begin:.1f} s)")
    print("  (p99 is sensitive to other CPU-bound work: on a 2-CPU machine the proxy, the echo "
          "server and this client already share the cores)")
    print(f"  {'metric':42} {'measured':>16} {'baseline':>16} {'ratio':>7}  {'target':12} verdict")
    for r in results:
        print(r.line())
    if direct and proxied:
        print(f"  latency samples: direct p50 {statistics.median(direct) * 1e6:.1f} µs, "
              f"proxied p50 {statistics.median(proxied) * 1e6:.1f} µs (n={len(direct)})")
    if failure is not None:
        print(f"  (incomplete: {failure})")
    res = bench_result(argv, results, failure)
    rc = 0 if failure is None and not res.missed else 1
    res.write(args.json, exit_code=rc)
    return rc


def _slug(text: str) -> str:
    return "_".join("".join(ch if ch.isalnum() else " " for ch in text.lower()).split())


_UNITS = {"µs": "us", "MB/s": "mbps", "%": "pct"}


def bench_result(argv: list[str], results: list[Result], failure: str | None) -> BenchResult:
    """The rows as the shared JSON: targets for the target rows, a figure for every row
    (``<key>`` or the row's name and unit as a slug; ``<figure>_baseline`` beside it)."""
    res = BenchResult("proxy", argv)
    for r in results:
        unit = _UNITS.get(r.unit, r.unit)
        key = r.key or _slug(f"{r.name} {unit}")
        if r.goal is not None:
            value = r.measured / r.baseline if r.goal_unit == "x" and r.baseline else r.measured
            res.target(key, target=r.goal, value=value, direction=r.direction,
                       unit=r.goal_unit, passed=r.passed, judged=r.judged,
                       note="" if r.judged else "the options are below what the target assumes")
            if r.goal_unit == "x":
                res.figure(f"{key}_{unit}", r.measured)
        else:
            res.figure(key, r.measured)
        if r.baseline is not None:
            res.figure(f"{key}_baseline", r.baseline)
    res.extra(rows=[dict(r.__dict__) for r in results], failure=failure)
    return res


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""The real loop keeps the virtual clock's promises: a few wall-clock checks, with Toxiproxy's
own tolerances and no retries.

Everything else about timing is asserted exactly on the virtual clock (``vclock.py``). These run
``python -m lab.proxy`` in its own process, once on uvloop and once on asyncio's loop, and time
what a peer receives: latency per direction (``toxics/latency_test.go``: ±10 ms per direction)
and bandwidth (``bandwidth_test.go``: 480 KB at 1000 KB/s in 480 ms ±10 ms); tolerances are
multiplied by ``LAB_TIMEOUT_FACTOR``.

So that they measure the proxy's loop and not the machine's load (``wallclock.py``): the proxy
process runs at raised scheduling priority, the test thread too while it sends, and arrival
times are the kernel's receive timestamps. The test itself is plain blocking sockets.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from proxy_helpers import assert_delta
from wallclock import StampedSocket, priority

PAYLOAD = b"x" * 32 * 1024  # Toxiproxy's latency tests send 32 KiB
RCVBUF = 8 * 1024 * 1024  # never let a late reader push back on the proxy


class Api:
    """A tiny blocking client of the proxy's HTTP API; deletes the proxies it created."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.created: list[str] = []

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read()
        return json.loads(text) if text else None

    def proxy(self, name: str, upstream: tuple[str, int]) -> tuple[str, int]:
        made = self.call("POST", "/proxies", {"name": name, "listen": "127.0.0.1:0",
                                              "upstream": f"{upstream[0]}:{upstream[1]}"})
        self.created.append(name)
        host, _, port = made["listen"].rpartition(":")
        return host, int(port)


@pytest.fixture
def api(process_server: str) -> Iterator[Api]:
    a = Api(process_server)
    try:
        yield a
    finally:
        for name in a.created:
            a.call("DELETE", f"/proxies/{name}")


def _pair(api: Api, name: str) -> tuple[StampedSocket, StampedSocket]:
    """(client, upstream) sockets joined through a new proxy, both ends connected."""
    with socket.socket() as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.settimeout(10)
        listen = api.proxy(name, srv.getsockname())
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        client.connect(listen)
        upstream, _ = srv.accept()  # the proxy has dialled: the link is up
    return StampedSocket(client), StampedSocket(upstream)


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_latency_per_direction(api: Api, stream: str) -> None:
    client, upstream = _pair(api, f"wall_lat_{stream}")
    try:
        api.call("POST", f"/proxies/wall_lat_{stream}/toxics",
                 {"type": "latency", "stream": stream, "attributes": {"latency": 100}})
        sender, receiver = (client, upstream) if stream == "upstream" else (upstream, client)
        with priority() as got:
            t0 = time.time()
            sender.sock.sendall(PAYLOAD)
        data, t1 = receiver.recv_exactly_stamped(len(PAYLOAD))
        assert data == PAYLOAD
        assert_delta(f"{stream} latency ({got})", t1 - t0, 0.100, 0.010)
    finally:
        client.close()
        upstream.close()


def test_bandwidth_480kb_at_1000kbps(api: Api) -> None:
    payload = b"hello world " * 40_000  # 480 KB
    client, upstream = _pair(api, "wall_bw")
    try:
        api.call("POST", "/proxies/wall_bw/toxics",
                 {"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 1000}})
        with priority() as got:
            t0 = time.time()
            client.sock.sendall(payload)
        data, t1 = upstream.recv_exactly_stamped(len(payload))
        assert data == payload
        assert_delta(f"bandwidth ({got})", t1 - t0, 0.480, 0.010)
    finally:
        client.close()
        upstream.close()

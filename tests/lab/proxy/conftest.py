"""Fixtures for the proxy tests: a proxy server in a background thread or in its own process,
echo upstreams, clients.

The conformance tests only need ``base_url``; set ``LAB_TOXIPROXY_URL`` (e.g.
``http://127.0.0.1:8474``) to run them against another server, such as Shopify's Toxiproxy.
Everything binds 127.0.0.1 on OS-chosen ports.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from proxy_helpers import echo_handler
from wallclock import raise_priority

from lab.proxy.client import ToxiproxyClient
from lab.proxy.server import ProxyServer


class ThreadedServer:
    """A :class:`ProxyServer` on its own event loop in a daemon thread (port 0)."""

    def __init__(self, seed: int = 1234) -> None:
        self.seed = seed
        self.server: ProxyServer | None = None
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="proxy-server", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self.server = ProxyServer("127.0.0.1", 0, seed=self.seed)
        try:
            await self.server.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            raise
        self._ready.set()
        await self._stop.wait()
        await self.server.close()

    def start(self) -> str:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy server did not start")
        if self._error is not None:
            raise self._error
        assert self.server is not None
        return self.server.base_url

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture(scope="session")
def threaded_server() -> Iterator[ThreadedServer]:
    server = ThreadedServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=["uvloop", "asyncio"])
def process_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """``python -m lab.proxy`` in its own process (no GIL shared with the test) at raised
    scheduling priority (``wallclock.raise_priority``), per loop kind; yields its API URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.proxy", "--port", "0", "--seed", "1234",
         "--loop", request.param],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"API on (http://\S+) ", line)
    if match is None:
        proc.kill()
        raise RuntimeError(f"lab.proxy did not start: {line!r} {proc.communicate()[1]!r}")
    raise_priority(proc.pid)
    try:
        yield match.group(1)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


@pytest.fixture
def base_url(request: pytest.FixtureRequest) -> str:
    """The API under test: ``LAB_TOXIPROXY_URL`` if set, else the lab server in a thread."""
    if url := os.getenv("LAB_TOXIPROXY_URL"):
        return url
    threaded: ThreadedServer = request.getfixturevalue("threaded_server")
    assert threaded.server is not None
    return threaded.server.base_url


@pytest.fixture
async def tp(base_url: str) -> AsyncIterator[ToxiproxyClient]:
    """A client; proxies the test created are deleted after it (others are left alone)."""
    client = ToxiproxyClient(base_url, timeout=10)
    before = set(await client.proxies())
    try:
        yield client
    finally:
        for name, proxy in (await client.proxies()).items():
            if name not in before:
                await proxy.delete()
        await client.close()




@pytest.fixture
async def echo_server() -> AsyncIterator[str]:
    """A TCP echo server in the test's loop; yields ``"127.0.0.1:port"``."""
    writers: list[asyncio.StreamWriter] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await echo_handler(reader, writer)

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.close()
        for writer in writers:  # connections the test left open
            writer.transport.abort()
        await asyncio.sleep(0)

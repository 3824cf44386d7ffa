from __future__ import annotations

import asyncio
import time

from proxy_helpers import open_through

from lab.proxy.client import ToxiproxyClient


async def test_echo_through_proxy(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("echo", upstream=echo_server)
    reader, writer = await open_through(proxy.listen)
    writer.write(b"hello")
    assert await asyncio.wait_for(reader.readexactly(5), 2) == b"hello"
    async with proxy.toxic("latency", attributes={"latency": 100}):
        t0 = time.monotonic()
        writer.write(b"x")
        assert await asyncio.wait_for(reader.readexactly(1), 2) == b"x"
        dt = time.monotonic() - t0
    assert 0.09 < dt < 0.13, dt
    writer.close()

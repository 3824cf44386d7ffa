"""slow_close: data passes at once, the close is held back ``delay`` ms."""

from __future__ import annotations

import asyncio
import time

import pytest
from proxy_helpers import TIME_FACTOR, assert_delta, open_through

from lab.proxy.client import ToxiproxyClient

# Wall-clock assertions on a shared 2-core machine: a run delayed by another process is
# retried (twice at most); a wrong toxic fails every attempt.
pytestmark = pytest.mark.flaky(reruns=2, reruns_delay=1)


async def test_close_is_delayed(tp: ToxiproxyClient) -> None:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    proxy = await tp.create_proxy("sc", upstream=f"127.0.0.1:{server.sockets[0].getsockname()[1]}")
    await proxy.add_toxic("slow_close", attributes={"delay": 200})
    t0 = time.monotonic()
    reader, writer = await open_through(proxy.listen)
    assert await asyncio.wait_for(reader.readexactly(3), 2) == b"bye"
    assert time.monotonic() - t0 < 0.1 * TIME_FACTOR
    assert await asyncio.wait_for(reader.read(), 2) == b""
    assert_delta("slow close", time.monotonic() - t0, 0.200, 0.020)
    writer.close()
    server.close()

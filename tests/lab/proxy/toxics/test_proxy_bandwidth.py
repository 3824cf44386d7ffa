"""bandwidth: 480 KB at 1000 KB/s takes 480 ms ± 10 ms (toxics/bandwidth_test.go)."""

from __future__ import annotations

import asyncio
import time

import pytest
from proxy_helpers import TIME_FACTOR, assert_delta, open_through

from lab.proxy.client import ToxiproxyClient

# Wall-clock assertions on a shared 2-core machine: a run delayed by another process is
# retried (twice at most); a wrong toxic fails every attempt.
pytestmark = pytest.mark.flaky(reruns=2, reruns_delay=1)


async def test_bandwidth_480kb_at_1000kbps(tp: ToxiproxyClient) -> None:
    payload = b"hello world " * 40_000  # 480 KB, as Toxiproxy's test
    got = asyncio.get_running_loop().create_future()

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.readexactly(len(payload))
        got.set_result((time.monotonic(), data))
        writer.close()

    server = await asyncio.start_server(sink, "127.0.0.1", 0)
    upstream = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    proxy = await tp.create_proxy("bw", upstream=upstream)
    await proxy.add_toxic("bandwidth", stream="upstream", attributes={"rate": 1000})
    _, writer = await open_through(proxy.listen)
    await asyncio.sleep(0.05)  # let the proxy dial the upstream first
    t0 = time.monotonic()
    writer.write(payload)
    t1, data = await asyncio.wait_for(got, 5)
    assert data == payload
    assert_delta("bandwidth", t1 - t0, 0.480, 0.010)
    writer.close()
    server.close()


async def test_bandwidth_zero_rate_is_unlimited(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("bw0", upstream=echo_server)
    await proxy.add_toxic("bandwidth", attributes={"rate": 0})
    reader, writer = await open_through(proxy.listen)
    t0 = time.monotonic()
    writer.write(b"z" * 1_000_000)
    await asyncio.wait_for(reader.readexactly(1_000_000), 5)
    assert time.monotonic() - t0 < 0.5 * TIME_FACTOR
    writer.close()

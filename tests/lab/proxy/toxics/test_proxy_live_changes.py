"""Toxics applied to live connections over real sockets, driven through the API."""

from __future__ import annotations

import asyncio
import struct
import time

import pytest
from proxy_helpers import assert_delta, open_through

from lab.proxy.client import ToxiproxyClient

# Wall-clock assertions on a shared 2-core machine: a run delayed by another process is
# retried (twice at most); a wrong toxic fails every attempt.
pytestmark = pytest.mark.flaky(reruns=2, reruns_delay=1)


async def test_65535_values_through_api_flips(tp: ToxiproxyClient, echo_server: str) -> None:
    # The socket-level twin of Toxiproxy's TestNoDataDropped: toxics added and removed through
    # the HTTP API in a loop while sequenced 2-byte values stream through an echo.
    proxy = await tp.create_proxy("flips", upstream=echo_server)
    reader, writer = await open_through(proxy.listen)
    stop = asyncio.Event()
    flips = 0

    async def flip() -> None:
        nonlocal flips
        while not stop.is_set():
            await proxy.add_toxic("latency", stream="upstream", attributes={"latency": 1000})
            await proxy.add_toxic("slicer", attributes={"average_size": 7, "size_variation": 3})
            await proxy.remove_toxic("latency_upstream")
            await proxy.remove_toxic("slicer_downstream")
            flips += 1

    async def send() -> None:
        for i in range(65536):
            writer.write(struct.pack(">H", i))
            if i % 512 == 0:
                await writer.drain()
                await asyncio.sleep(0)
        await writer.drain()

    flipper = asyncio.create_task(flip())
    sender = asyncio.create_task(send())
    data = await asyncio.wait_for(reader.readexactly(2 * 65536), 30)
    stop.set()
    await asyncio.gather(flipper, sender)
    assert struct.unpack(">65536H", data) == tuple(range(65536))
    assert flips >= 3
    writer.close()


@pytest.mark.slow
@pytest.mark.parametrize(("up", "down"), [(1000, 100), (100, 1000)])
async def test_long_latencies(tp: ToxiproxyClient, echo_server: str, up: int, down: int) -> None:
    proxy = await tp.create_proxy("long", upstream=echo_server)
    reader, writer = await open_through(proxy.listen)
    await proxy.add_toxic("latency", stream="upstream", attributes={"latency": up})
    await proxy.add_toxic("latency", stream="downstream", attributes={"latency": down})
    t0 = time.monotonic()
    writer.write(b"x" * 32 * 1024)
    await asyncio.wait_for(reader.readexactly(32 * 1024), 5)
    assert_delta("round trip", time.monotonic() - t0, (up + down) / 1000, 0.020)
    writer.close()


@pytest.mark.slow
async def test_two_500ms_latencies_make_1000ms(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("stack500", upstream=echo_server)
    reader, writer = await open_through(proxy.listen)
    await proxy.add_toxic("latency", name="a", attributes={"latency": 500})
    await proxy.add_toxic("latency", name="b", attributes={"latency": 500})
    t0 = time.monotonic()
    writer.write(b"y" * 32 * 1024)
    await asyncio.wait_for(reader.readexactly(32 * 1024), 5)
    assert_delta("stacked", time.monotonic() - t0, 1.0, 0.010)
    writer.close()


@pytest.mark.slow
async def test_1000_add_remove_while_echoing(tp: ToxiproxyClient, echo_server: str) -> None:
    # Toxiproxy's 1000-iteration add/remove race with echoes in between.
    proxy = await tp.create_proxy("race", upstream=echo_server)
    reader, writer = await open_through(proxy.listen)
    for i in range(1000):
        await proxy.add_toxic("latency", attributes={"latency": 10})
        writer.write(i.to_bytes(4, "big"))
        await proxy.remove_toxic("latency_downstream")
        assert await asyncio.wait_for(reader.readexactly(4), 2) == i.to_bytes(4, "big")
    writer.close()

"""latency: Toxiproxy's tolerances, jitter + 10 ms per direction (toxics/latency_test.go)."""

from __future__ import annotations

import asyncio
import time

import pytest
from proxy_helpers import TIME_FACTOR, assert_delta, open_through

from lab.proxy.client import ToxiproxyClient

# Wall-clock assertions on a shared 2-core machine: a run delayed by another process is
# retried (twice at most); a wrong toxic fails every attempt.
pytestmark = pytest.mark.flaky(reruns=2, reruns_delay=1)

PAYLOAD = b"x" * 32 * 1024  # Toxiproxy's latency tests echo 32 KiB


async def _echo_time(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
    t0 = time.monotonic()
    writer.write(PAYLOAD)
    await asyncio.wait_for(reader.readexactly(len(PAYLOAD)), 5)
    return time.monotonic() - t0


@pytest.mark.parametrize(("up", "down"), [(100, 0), (0, 100), (100, 100), (50, 200), (0, 0)])
async def test_latency_per_direction(tp: ToxiproxyClient, echo_server: str, up: int,
                                     down: int) -> None:
    proxy = await tp.create_proxy("lat", upstream=echo_server)
    reader, writer = await open_through(proxy.listen)
    await _echo_time(reader, writer)  # warm the connection up
    if up:
        await proxy.add_toxic("latency", stream="upstream", attributes={"latency": up})
    if down:
        await proxy.add_toxic("latency", stream="downstream", attributes={"latency": down})
    took = await _echo_time(reader, writer)
    # round trip: the sum of both, within 10 ms per direction (20 ms), as Toxiproxy asserts
    assert_delta("round trip", took, (up + down) / 1000, 0.020)
    writer.close()


async def test_latency_with_jitter_stays_in_bounds(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("jit", upstream=echo_server)
    reader, writer = await open_through(proxy.listen)
    await proxy.add_toxic("latency", attributes={"latency": 100, "jitter": 30})
    for _ in range(5):
        took = await _echo_time(reader, writer)
        assert_delta("jittered", took, 0.100, 0.030 + 0.010)
    writer.close()


async def test_two_latency_toxics_add_up(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("stack", upstream=echo_server)
    reader, writer = await open_through(proxy.listen)
    await proxy.add_toxic("latency", name="a", attributes={"latency": 150})
    await proxy.add_toxic("latency", name="b", attributes={"latency": 150})
    took = await _echo_time(reader, writer)
    assert_delta("stacked", took, 0.300, 0.010)
    writer.close()


async def test_latency_does_not_cap_throughput(tp: ToxiproxyClient, echo_server: str) -> None:
    # Toxiproxy asserts >= 100 MB/s under 100 ms latency. Here the proxy shares one process
    # (and the GIL) with the test's client and echo server: ~200-240 MB/s on an idle 2-CPU
    # machine, ~50-65 MB/s with two other CPU-bound processes running, so the floor is 50 MB/s
    # (still 20x what a toxic that delayed chunk by chunk would allow). `dubhe-bench proxy`
    # checks >= 200 MB/s with the proxy in its own process.
    proxy = await tp.create_proxy("tput", upstream=echo_server)
    await proxy.add_toxic("latency", attributes={"latency": 100})
    reader, writer = await open_through(proxy.listen)
    block = b"y" * (16 * 1024 * 1024)
    t0 = time.monotonic()
    writer.write(block)
    await asyncio.wait_for(reader.readexactly(len(block)), 10)
    took = time.monotonic() - t0
    assert took >= 0.1
    rate = len(block) / (took - 0.1)
    assert rate >= 50e6 / TIME_FACTOR, f"{rate / 1e6:.1f} MB/s"
    writer.close()


async def test_client_leaving_while_reply_is_held(tp: ToxiproxyClient, echo_server: str) -> None:
    # The held reply and the end of stream reach a socket whose peer is gone: no toxic error.
    proxy = await tp.create_proxy("leaver", upstream=echo_server)
    await proxy.add_toxic("latency", attributes={"latency": 50})
    _, writer = await open_through(proxy.listen)
    writer.write(b"bye")
    await asyncio.sleep(0.01)
    writer.close()
    await asyncio.sleep(0.1)
    errors = [e for e in await tp.events() if e["event"] == "toxic_error"]
    assert errors == []

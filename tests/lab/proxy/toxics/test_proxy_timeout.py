"""timeout: drops data, closes after N ms, 0 is a black hole, removal closes the connection."""

from __future__ import annotations

import asyncio
import time

import pytest
from proxy_helpers import TIME_FACTOR, assert_delta, open_through, read_all

from lab.proxy.client import ToxiproxyClient

# Wall-clock assertions on a shared 2-core machine: a run delayed by another process is
# retried (twice at most); a wrong toxic fails every attempt.
pytestmark = pytest.mark.flaky(reruns=2, reruns_delay=1)


async def test_timeout_closes_after_n_ms(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("to", upstream=echo_server)
    reader, writer = await open_through(proxy.listen)
    writer.write(b"warm")
    await asyncio.wait_for(reader.readexactly(4), 2)
    t0 = time.monotonic()
    await proxy.add_toxic("timeout", attributes={"timeout": 100})
    writer.write(b"lost")
    assert await read_all(reader) == b""  # the data was dropped, then EOF
    assert_delta("timeout", time.monotonic() - t0, 0.100, 0.010)
    writer.close()


async def test_timeout_zero_is_a_black_hole_until_removed(tp: ToxiproxyClient,
                                                          echo_server: str) -> None:
    proxy = await tp.create_proxy("bh", upstream=echo_server)
    await proxy.add_toxic("timeout", attributes={"timeout": 0})
    reader, writer = await open_through(proxy.listen)
    writer.write(b"into the void")
    done, _ = await asyncio.wait([asyncio.ensure_future(reader.read(100))], timeout=0.2)
    assert not done  # nothing came back, nothing closed
    t0 = time.monotonic()
    await proxy.remove_toxic("timeout_downstream")
    assert await read_all(reader, 2) == b""  # removing it closed the connection (Cleanup)
    assert time.monotonic() - t0 < 0.2 * TIME_FACTOR
    writer.close()


async def test_timeout_behind_latency_does_not_hang(tp: ToxiproxyClient, echo_server: str) -> None:
    # regression of Toxiproxy #159: adding a timeout behind a busy latency toxic
    proxy = await tp.create_proxy("tolat", upstream=echo_server)
    await proxy.add_toxic("latency", attributes={"latency": 1000})
    _reader, writer = await open_through(proxy.listen)
    writer.write(b"x" * 10_000)
    await asyncio.sleep(0.05)
    t0 = time.monotonic()
    await proxy.add_toxic("timeout", attributes={"timeout": 50})
    await proxy.remove_toxic("latency_downstream")
    assert time.monotonic() - t0 < 0.2 * TIME_FACTOR
    writer.close()

"""Lab extras: slow_open, cut, flap, targeting and schedules."""

from __future__ import annotations

import asyncio
import time

import pytest
from proxy_helpers import TIME_FACTOR, assert_delta, open_through, read_all

from lab.proxy.client import ToxiproxyClient

# Wall-clock assertions on a shared 2-core machine: a run delayed by another process is
# retried (twice at most); a wrong toxic fails every attempt.
pytestmark = pytest.mark.flaky(reruns=2, reruns_delay=1)


async def test_slow_open_holds_first_bytes(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("sopen", upstream=echo_server)
    await proxy.add_toxic("slow_open", stream="upstream", attributes={"delay": 200})
    t0 = time.monotonic()
    reader, writer = await open_through(proxy.listen)
    writer.write(b"first")
    assert await asyncio.wait_for(reader.readexactly(5), 2) == b"first"
    assert_delta("slow open", time.monotonic() - t0, 0.200, 0.020)
    t1 = time.monotonic()
    writer.write(b"later")
    await asyncio.wait_for(reader.readexactly(5), 2)
    assert time.monotonic() - t1 < 0.05 * TIME_FACTOR  # only the opening is slow
    writer.close()


async def test_cut_after_closes_each_connection(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("cutafter", upstream=echo_server)
    await proxy.add_toxic("cut", attributes={"after": 150})
    t0 = time.monotonic()
    reader, writer = await open_through(proxy.listen)
    writer.write(b"ok")
    assert await asyncio.wait_for(reader.readexactly(2), 1) == b"ok"
    assert await read_all(reader, 2) == b""
    assert_delta("cut", time.monotonic() - t0, 0.150, 0.020)
    writer.close()


async def test_cut_at_spares_later_connections(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("cutat", upstream=echo_server)
    old_r, old_w = await open_through(proxy.listen)
    old_w.write(b"1")
    await asyncio.wait_for(old_r.readexactly(1), 1)
    await proxy.add_toxic("cut", attributes={"at": 100, "reset": True})
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(old_r.read(10), 2)
    new_r, new_w = await open_through(proxy.listen)
    await asyncio.sleep(0.05)
    new_w.write(b"2")
    assert await asyncio.wait_for(new_r.readexactly(1), 1) == b"2"
    old_w.close()
    new_w.close()


async def test_flap_refuses_while_down(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("flap", upstream=echo_server)
    reader, writer = await open_through(proxy.listen)
    await proxy.add_toxic("flap", attributes={"up": 100, "down": 200})
    assert await read_all(reader, 1) == b""  # closed when the proxy went down at ~100 ms
    await asyncio.sleep(0.02)
    with pytest.raises(ConnectionRefusedError):
        await open_through(proxy.listen)
    await asyncio.sleep(0.25)  # up again
    r2, w2 = await open_through(proxy.listen)
    w2.write(b"up")
    assert await asyncio.wait_for(r2.readexactly(2), 1) == b"up"
    await proxy.remove_toxic("flap_downstream")
    w2.close()
    writer.close()
    kinds = [e["event"] for e in await tp.events() if e.get("proxy") == "flap"]
    assert "proxy_flap_down" in kinds and "proxy_flap_up" in kinds


async def test_target_nth_connection_only(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("nth", upstream=echo_server)
    await proxy.add_toxic("latency", attributes={"latency": 200}, target={"nth": [2]})
    times = []
    for _ in range(3):
        reader, writer = await open_through(proxy.listen)
        t0 = time.monotonic()
        writer.write(b"q")
        await asyncio.wait_for(reader.readexactly(1), 2)
        times.append(time.monotonic() - t0)
        writer.close()
    assert times[0] < 0.05 * TIME_FACTOR and times[2] < 0.05 * TIME_FACTOR
    assert_delta("targeted", times[1], 0.200, 0.020)


async def test_target_by_client_port(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("byport", upstream=echo_server)
    reader, writer = await open_through(proxy.listen)
    port = writer.get_extra_info("sockname")[1]
    await proxy.add_toxic("timeout", attributes={"timeout": 1},
                          target={"client": f"127.0.0.1:{port}"})
    other_r, other_w = await open_through(proxy.listen)
    other_w.write(b"k")
    assert await asyncio.wait_for(other_r.readexactly(1), 1) == b"k"
    assert await read_all(reader, 1) == b""  # only the targeted client was timed out
    writer.close()
    other_w.close()


async def test_schedule_runs_a_timeline(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("sched", upstream=echo_server)
    reader, writer = await open_through(proxy.listen)
    toxic = await proxy.add_toxic("latency", attributes={"latency": 100},
                                  schedule={"start": 100, "stop": 300})
    assert toxic.active is False and toxic.schedule == {"start": 100, "stop": 300}

    async def rtt() -> float:
        t0 = time.monotonic()
        writer.write(b"s")
        await asyncio.wait_for(reader.readexactly(1), 2)
        return time.monotonic() - t0

    assert await rtt() < 0.05 * TIME_FACTOR  # before start
    await asyncio.sleep(0.12)
    assert (await proxy.get_toxic("latency_downstream")).active is True
    assert_delta("in window", await rtt(), 0.100, 0.020)
    await asyncio.sleep(0.2)
    assert (await proxy.get_toxic("latency_downstream")).active is False
    assert await rtt() < 0.05 * TIME_FACTOR  # after stop
    kinds = [e["event"] for e in await tp.events() if e.get("toxic") == "latency_downstream"]
    assert kinds[0] == "toxic_added"
    assert kinds.index("toxic_started") < kinds.index("toxic_stopped")
    writer.close()

"""Lab-specific API behaviour beyond Toxiproxy: strict attributes, extras' validation, /events."""

from __future__ import annotations

import asyncio

import pytest
from proxy_helpers import open_through

from lab.proxy.client import BadRequest, ToxiproxyClient


async def test_unknown_attribute_is_rejected_with_its_name(tp: ToxiproxyClient) -> None:
    proxy = await tp.create_proxy("strict", upstream="127.0.0.1:9")
    with pytest.raises(BadRequest) as info:
        await proxy.add_toxic("latency", attributes={"latncy": 100})
    assert info.value.message.startswith("bad request body: latency.attributes.latncy: unknown")
    with pytest.raises(BadRequest, match=r"latency.attributes.latency: must be integer"):
        await proxy.add_toxic("latency", attributes={"latency": 1.5})
    with pytest.raises(BadRequest, match=r"schedule.stop"):
        await proxy.add_toxic("latency", schedule={"start": 100, "stop": 50})
    with pytest.raises(BadRequest, match=r"target.nth"):
        await proxy.add_toxic("latency", target={"nth": [0]})


async def test_extra_toxic_types_are_listed_and_accepted(tp: ToxiproxyClient) -> None:
    proxy = await tp.create_proxy("extras", upstream="127.0.0.1:9")
    for t in ("slow_open", "cut", "flap", "ws_cut", "ws_close", "ws_swallow", "ws_message"):
        toxic = await proxy.add_toxic(t)
        assert toxic.type == t


async def test_events_since_and_limit(tp: ToxiproxyClient) -> None:
    await tp.create_proxy("evq", upstream="127.0.0.1:9")
    events = await tp.events()
    last = events[-1]["seq"]
    assert await tp.events(last) == []
    assert [e["seq"] for e in await tp.events(last - 2)] == [last - 1, last]


async def test_dead_upstream_accepts_then_closes(tp: ToxiproxyClient) -> None:
    # Toxiproxy dials the upstream per client; on failure the client sees EOF, not a refusal.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    proxy = await tp.create_proxy("dead", upstream=f"127.0.0.1:{dead}")
    reader, writer = await open_through(proxy.listen)
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    assert any(e["event"] == "upstream_failed" for e in await tp.events())


async def test_malformed_upstream_fails_per_connection(tp: ToxiproxyClient) -> None:
    proxy = await tp.create_proxy("malformed", upstream="no-port-here")  # not checked at create
    reader, writer = await open_through(proxy.listen)
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    failed = [e for e in await tp.events() if e["event"] == "upstream_failed"
              and e["proxy"] == "malformed"]
    assert failed and "missing port" in failed[-1]["error"]

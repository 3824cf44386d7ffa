"""WebSocket toxics: real clients (the websockets library) over sockets see 1006 or the chosen
code; on the virtual clock (websockets' sans-I/O protocol over memnet) the timing is exact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from vclock import ms, virtual_time
from vlab import VirtualLab, ws_connect, ws_echo
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK

from lab.proxy.client import Proxy, ToxiproxyClient


async def _echo(ws: ServerConnection) -> None:
    try:
        async for msg in ws:
            if msg == "burst":
                for i in range(1, 7):
                    await ws.send(str(i))
            else:
                await ws.send(msg)
    except ConnectionClosed:
        pass


@pytest.fixture
async def ws_upstream() -> AsyncIterator[str]:
    async with serve(_echo, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"127.0.0.1:{port}"


async def _client(proxy: Proxy, **kwargs: object) -> ClientConnection:
    kwargs.setdefault("ping_interval", None)
    return await connect(f"ws://{proxy.listen}/", compression=None, open_timeout=2,
                         close_timeout=1, **kwargs)  # type: ignore[arg-type]


async def _roundtrip(ws: ClientConnection, msg: str = "hi") -> None:
    await ws.send(msg)
    assert await asyncio.wait_for(ws.recv(), 2) == msg


async def _closed_code(ws: ClientConnection, send: str | None = None) -> int | None:
    with pytest.raises(ConnectionClosed):
        if send is not None:
            await ws.send(send)
        await asyncio.wait_for(ws.recv(), 3)
    await asyncio.wait_for(ws.wait_closed(), 3)
    return ws.close_code


async def test_ws_cut_mid_frame_gives_1006(tp: ToxiproxyClient, ws_upstream: str) -> None:
    proxy = await tp.create_proxy("wscut", upstream=ws_upstream)
    ws = await _client(proxy)
    await _roundtrip(ws)  # the toxic is added to a live connection
    await proxy.add_toxic("ws_cut", attributes={"after_frames": 1})
    await _roundtrip(ws, "passes")  # one whole frame first
    assert await _closed_code(ws, send="x" * 1000) == 1006
    events = [e for e in await tp.events() if e["event"] == "ws_cut"]
    assert events and events[-1]["proxy"] == "wscut"


@pytest.mark.parametrize("code", [1001, 1011, 1012, 1013])
async def test_ws_close_sends_the_chosen_code(tp: ToxiproxyClient, ws_upstream: str,
                                              code: int) -> None:
    proxy = await tp.create_proxy("wsclose", upstream=ws_upstream)
    ws = await _client(proxy)
    await _roundtrip(ws)
    await proxy.add_toxic("ws_close", attributes={"code": code, "reason": "lab"})
    expected = ConnectionClosedOK if code == 1001 else ConnectionClosedError
    with pytest.raises(expected) as info:
        await asyncio.wait_for(ws.recv(), 3)
    assert info.value.rcvd is not None and info.value.rcvd.code == code
    assert info.value.rcvd.reason == "lab"
    assert ws.close_code == code


async def test_ws_close_upstream_reaches_the_server(tp: ToxiproxyClient) -> None:
    seen: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        try:
            async for _ in ws:
                pass
        finally:
            if not seen.done():
                seen.set_result(ws.close_code)

    async with serve(handler, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        proxy = await tp.create_proxy("wsclose_up", upstream=f"127.0.0.1:{port}")
        ws = await _client(proxy)
        await ws.send("hello")
        await proxy.add_toxic("ws_close", stream="upstream", attributes={"code": 1013})
        assert await asyncio.wait_for(seen, 3) == 1013  # a masked Close frame the server accepted
        await ws.close()


async def test_ws_swallow_pongs_times_out_keepalive(tp: ToxiproxyClient,
                                                     ws_upstream: str) -> None:
    proxy = await tp.create_proxy("wsswallow", upstream=ws_upstream)
    await proxy.add_toxic("ws_swallow", attributes={"ping": False, "pong": True})
    ws = await _client(proxy, ping_interval=0.1, ping_timeout=0.2)
    await _roundtrip(ws)  # data still flows
    with pytest.raises(ConnectionClosedError) as info:
        await asyncio.wait_for(ws.recv(), 10)
    assert info.value.sent is not None and info.value.sent.code == 1011  # keepalive ping timeout
    assert info.value.rcvd is None and ws.close_code == 1006


async def test_ws_message_drops_every_second(tp: ToxiproxyClient, ws_upstream: str) -> None:
    proxy = await tp.create_proxy("wsdrop", upstream=ws_upstream)
    ws = await _client(proxy)
    await _roundtrip(ws)  # message 1 downstream
    await proxy.add_toxic("ws_message", attributes={"every": 2, "drop": True})
    await ws.send("burst")
    got = [await asyncio.wait_for(ws.recv(), 2) for _ in range(3)]
    assert got == ["1", "3", "5"]  # the toxic counts from its own first message
    await ws.close()


@virtual_time
async def test_ws_message_delay_holds_each_message_exactly() -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("wsdelay", await ws_echo(lab))
        ws = await ws_connect(lab, proxy)
        await lab.add(proxy, {"type": "ws_message", "attributes": {"delay": 150}})
        for msg in ("a", "b" * 70_000):
            t0 = lab.now()
            ws.send(msg)
            assert await ws.text() == msg
            assert ms(lab.now() - t0) == 150


@pytest.mark.parametrize("fault", ["disable", "timeout_removed", "reset_peer", "limit_data",
                                   "cut"])
async def test_tcp_faults_give_1006(tp: ToxiproxyClient, ws_upstream: str, fault: str) -> None:
    proxy = await tp.create_proxy(f"ws_{fault}", upstream=ws_upstream)
    ws = await _client(proxy)
    await _roundtrip(ws)
    send: str | None = "ping me"
    if fault == "disable":
        await proxy.disable()
        send = None
    elif fault == "timeout_removed":
        await proxy.add_toxic("timeout", attributes={"timeout": 0})
        await proxy.remove_toxic("timeout_downstream")
        send = None
    elif fault == "reset_peer":
        await proxy.add_toxic("reset_peer", stream="upstream")
    elif fault == "limit_data":
        await proxy.add_toxic("limit_data", attributes={"bytes": 3})
    else:
        await proxy.add_toxic("cut", attributes={"after": 1})
        send = None
    assert await _closed_code(ws, send=send) == 1006


async def test_ws_toxic_off_by_toxicity_keeps_frame_sync(tp: ToxiproxyClient,
                                                          ws_upstream: str) -> None:
    # While toxicity keeps it off, the toxic's frame tracker must follow the stream, so that
    # switching it on mid-session injects the Close frame at a real frame boundary.
    proxy = await tp.create_proxy("wssync", upstream=ws_upstream)
    ws = await _client(proxy)
    await proxy.add_toxic("ws_close", toxicity=0, attributes={"code": 1012})
    for size in (1, 200, 70_000, 3):
        await _roundtrip(ws, "m" * size)
    await proxy.update_toxic("ws_close_downstream", toxicity=1)
    with pytest.raises(ConnectionClosedError):
        await asyncio.wait_for(ws.recv(), 3)
    assert ws.close_code == 1012


@virtual_time
async def test_ws_close_delay_is_not_reset_by_chain_changes() -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("wsdelayclose", await ws_echo(lab))
        ws = await ws_connect(lab, proxy)
        t0 = lab.now()
        await lab.add(proxy, {"type": "ws_close", "attributes": {"code": 1013, "delay": 300}})
        await asyncio.sleep(0.2)
        await lab.add(proxy, {"type": "noop"})  # restarts the ws_close stub
        ws.send("before")
        assert await ws.text() == "before"
        close = await ws.event()
        assert close.opcode.name == "CLOSE" and ms(lab.now() - t0) == 300
        assert await ws.event() is None  # then the end of the stream
        assert ws.proto.close_code == 1013


@virtual_time
async def test_ws_close_waits_for_a_frame_boundary() -> None:
    # A 70,010-byte frame (10-byte header) crawls through a 100 KB/s bandwidth toxic in 100 ms
    # slices (10 kB):
    # the Close frame, due at 150 ms while the frame is partly through, goes right after it
    # (at 700.1 ms), never inside it.
    async with VirtualLab() as lab:
        proxy = await lab.proxy("wsboundary", await ws_echo(lab))
        ws = await ws_connect(lab, proxy)
        await lab.add(proxy, {"type": "bandwidth", "attributes": {"rate": 100}})
        await lab.add(proxy, {"type": "ws_close", "attributes": {"code": 1012, "delay": 150}})
        t0 = lab.now()
        ws.send("x" * 70_000)
        assert await ws.text() == "x" * 70_000
        assert ms(lab.now() - t0) == 700.1
        close = await ws.event()
        assert close.opcode.name == "CLOSE" and ms(lab.now() - t0) == 700.1
        assert await ws.event() is None
        assert ws.proto.close_code == 1012

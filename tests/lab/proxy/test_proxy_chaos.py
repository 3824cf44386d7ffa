"""Clients that misbehave while toxics change: no toxic errors, no leaked connections."""

from __future__ import annotations

import asyncio
import gc
import random
import socket
import struct
from typing import Any

import pytest
from proxy_helpers import open_through
from timing import wait_until

from lab.proxy.client import ToxiproxyClient
from lab.proxy.proxy import Proxy

TOXICS: list[tuple[str, dict[str, Any]]] = [
    ("latency", {"latency": 20, "jitter": 10}),
    ("bandwidth", {"rate": 500}),
    ("slicer", {"average_size": 50, "size_variation": 20, "delay": 100}),
    ("slow_close", {"delay": 30}),
    ("timeout", {"timeout": 40}),
    ("limit_data", {"bytes": 300}),
    ("reset_peer", {"timeout": 20}),
    ("ws_message", {"drop": True}),
    ("noop", {}),
]


async def _client(listen: str, rng: random.Random) -> None:
    try:
        reader, writer = await open_through(listen)
    except OSError:
        return
    try:
        for _ in range(rng.randint(0, 4)):
            writer.write(rng.randbytes(rng.randint(1, 2000)))
            await asyncio.sleep(rng.random() * 0.02)
        ending = rng.choice(["close", "half", "reset", "read"])
        if ending == "half":
            writer.write_eof()
            await asyncio.wait_for(reader.read(), 1)
        elif ending == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif ending == "read":
            await asyncio.wait_for(reader.read(100), 0.05)
    except (OSError, TimeoutError):
        pass
    finally:
        writer.close()


async def test_chaos_leaves_no_errors_or_connections(tp: ToxiproxyClient, echo_server: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(6)
    proxy = await tp.create_proxy("chaos", upstream=echo_server)

    async def churn() -> None:
        names: list[str] = []
        for _ in range(80):
            if rng.random() < 0.08:  # the whole proxy blinks: listener and connections go
                await proxy.disable()
                await asyncio.sleep(0.002)
                await proxy.enable()
            elif names and rng.random() < 0.5:
                await proxy.remove_toxic(names.pop(rng.randrange(len(names))))
            else:
                kind, attrs = rng.choice(TOXICS)
                name = f"{kind}{rng.randrange(10**6)}"
                await proxy.add_toxic(kind, name=name, attributes=attrs,
                                      stream=rng.choice(["upstream", "downstream"]),
                                      toxicity=rng.choice([0.0, 0.5, 1.0]))
                names.append(name)
            await asyncio.sleep(0.005)

    churner = asyncio.create_task(churn())
    clients = []
    i = 0
    while not churner.done():  # a new client every few ms for as long as the toxics churn
        clients.append(asyncio.create_task(_client(proxy.listen, random.Random(i))))
        i += 1
        await asyncio.sleep(0.004)
    await churner
    await asyncio.gather(*clients)
    assert i > 50
    await tp.reset()  # removes every toxic: held data flushes, timeouts close

    async def all_closed() -> bool:  # every connection was torn down
        metrics = await tp.metrics()
        line = next(ln for ln in metrics.splitlines()
                    if ln.startswith('dubhe_proxy_open_connections{proxy="chaos"}'))
        return float(line.rsplit(" ", 1)[1]) == 0.0

    await wait_until(all_closed, what="no connection left open on the chaos proxy")
    gc.collect()  # a stub task dropped while pending is reported when collected
    assert not [r for r in caplog.records if "Task was destroyed" in r.getMessage()]
    events = [e for e in await tp.events() if e.get("proxy") == "chaos"]
    assert [e for e in events if e["event"] == "toxic_error"] == []
    assert sum(e["event"] == "toxic_added" for e in events) > 30


WS_TOXICS: list[tuple[str, dict[str, Any]]] = [
    ("ws_message", {"delay": 5}),
    ("ws_message", {"drop": True, "every": 3}),
    ("ws_swallow", {}),
    ("ws_cut", {"after_frames": 5}),
    ("ws_close", {"code": 1012, "delay": 30}),
    ("slicer", {"average_size": 40, "size_variation": 30}),
    ("latency", {"latency": 5}),
]


async def test_ws_chaos_keeps_frames_consistent(tp: ToxiproxyClient) -> None:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidMessage

    codes: list[int | None] = []

    async def echo(ws: ServerConnection) -> None:
        try:
            async for msg in ws:
                await ws.send(msg)
        except ConnectionClosed:
            pass
        codes.append(ws.close_code)

    rng = random.Random(7)
    received: list[str] = []
    async with serve(echo, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        proxy = await tp.create_proxy("wschaos", upstream=f"127.0.0.1:{port}")

        async def client(seed: int) -> None:
            crng = random.Random(seed)
            ws_ref = []
            try:
                async with connect(f"ws://{proxy.listen}/", compression=None, open_timeout=2,
                                   close_timeout=0.5, ping_interval=0.05,
                                   ping_timeout=0.2) as ws:
                    ws_ref.append(ws)
                    for _ in range(crng.randint(1, 15)):
                        size = crng.choice([1, 10, 125, 126, 1000, 65_536, 70_000])
                        msg = chr(97 + crng.randrange(26)) * size
                        await ws.send(msg)
                        got = await asyncio.wait_for(ws.recv(), 0.5)
                        assert isinstance(got, str) and set(got) <= set(msg)  # never garbage
                        received.append(got)
            except (ConnectionClosed, TimeoutError, OSError, InvalidHandshake, InvalidMessage):
                pass
            if ws_ref:
                codes.append(ws_ref[-1].close_code)

        async def churn() -> None:
            names: list[str] = []
            for _ in range(40):
                if names and rng.random() < 0.5:
                    await proxy.remove_toxic(names.pop(rng.randrange(len(names))))
                else:
                    kind, attrs = rng.choice(WS_TOXICS)
                    name = f"{kind}{rng.randrange(10**6)}"
                    await proxy.add_toxic(kind, name=name, attributes=attrs,
                                          stream=rng.choice(["upstream", "downstream"]),
                                          toxicity=rng.choice([0.3, 1.0]))
                    names.append(name)
                await asyncio.sleep(0.01)

        churner = asyncio.create_task(churn())
        clients = []
        seed = 0
        while not churner.done():
            clients.append(asyncio.create_task(client(seed)))
            seed += 1
            await asyncio.sleep(0.02)
        await churner
        await asyncio.gather(*clients)
    events = [e for e in await tp.events() if e.get("proxy") == "wschaos"]
    assert [e for e in events if e["event"] == "toxic_error"] == []
    assert received  # some traffic made it through the churn
    # never a protocol error or invalid data on either end: frames were never corrupted
    assert 1002 not in codes and 1007 not in codes, codes
    assert {e["event"] for e in events} & {"ws_cut", "ws_close_sent", "ws_message_dropped",
                                           "ws_message_delayed", "ws_frame_dropped"}


class _FakeTransport:
    """Just enough of a transport for a connection_made that arrives after an abort."""

    def __init__(self) -> None:
        self.aborted = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default

    def pause_reading(self) -> None:
        pass

    def abort(self) -> None:
        self.aborted = True


async def test_connection_aborted_before_it_is_made_is_never_counted() -> None:
    # The race behind a negative open-connections gauge: the proxy is disabled between
    # accepting a socket (protocol created) and that socket's connection_made callback.
    from lab.proxy.proxy_collection import ProxyCollection

    owner = ProxyCollection(seed=1)
    proxy = Proxy(owner, "race", "127.0.0.1:0", "127.0.0.1:1")
    gauge = owner.metrics.open_connections.labels("race")
    side = proxy._accept()
    await proxy.stop()  # aborts every live connection: this one has no transport yet
    assert gauge._value.get() == 0 and not proxy.connections
    t = _FakeTransport()
    side.connection_made(t)  # type: ignore[arg-type]  # arrives late
    assert t.aborted and gauge._value.get() == 0

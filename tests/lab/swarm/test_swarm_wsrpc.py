"""The swarm's WebSocket JSON-RPC client (lab/swarm/wsrpc.py) against a real websockets server
on 127.0.0.1: calls, subscriptions, fragmented messages, pings, and every way a connection ends
(the close code each one reports is what a swarm counts)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Request, Response

from lab.swarm.wsrpc import ConnectionLost, RpcError, WsRpc

Handler = Callable[[ServerConnection], Awaitable[None]]


class Server:
    """A websockets server on its own event loop thread; ``behaviour`` is set per test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.behaviour: Handler | None = None
        self.refuse: int | None = None
        self.pongs: list[float] = []
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        def process_request(conn: ServerConnection, request: Request) -> Response | None:
            if self.refuse is not None:
                return Response(self.refuse, "Service Unavailable", Headers(), b"busy\n")
            return None

        async def handler(conn: ServerConnection) -> None:
            assert self.behaviour is not None
            await self.behaviour(conn)

        async def main() -> None:
            async with serve(handler, "127.0.0.1", 0, process_request=process_request,
                             ping_interval=None, compression=None) as server:
                self.port = next(iter(server.sockets)).getsockname()[1]
                self.stop = self.loop.create_future()
                self.ready.set()
                await self.stop

        self.loop.run_until_complete(main())

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set_result, None)
        self.thread.join(10)


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


async def answer(conn: ServerConnection, message: Any, result: Any) -> None:
    req = orjson.loads(message)
    await conn.send(orjson.dumps({"jsonrpc": "2.0", "id": req["id"], "result": result}).decode())


def notification(sub: str, number: int) -> str:
    return orjson.dumps({"jsonrpc": "2.0", "method": "eth_subscription",
                         "params": {"subscription": sub, "result": {"number": hex(number)},
                                    "emittedMs": 1}}).decode()


class Recorder:
    def __init__(self) -> None:
        self.notes: list[tuple[str, dict[str, Any], int]] = []
        self.closes: list[tuple[int, str, BaseException | None]] = []
        self.closed = threading.Event()

    def note(self, kind: str, msg: dict[str, Any], received: float, size: int) -> None:
        assert received > 0
        self.notes.append((kind, msg, size))

    def close(self, code: int, reason: str, exc: BaseException | None) -> None:
        self.closes.append((code, reason, exc))
        self.closed.set()

    def open(self, url: str) -> WsRpc:
        return WsRpc.open(url, open_timeout=5, on_notification=self.note, on_close=self.close)


def test_calls_subscriptions_and_a_fragmented_notification(server: Server) -> None:
    async def behaviour(conn: ServerConnection) -> None:
        await answer(conn, await conn.recv(), "0x2a")           # eth_blockNumber
        await answer(conn, await conn.recv(), "0xsub")          # eth_subscribe
        await conn.send(notification("0xsub", 1))
        text = notification("0xsub", 2)
        await conn.send([text[:10], text[10:40], text[40:]])    # one message in three frames
        req = orjson.loads(await conn.recv())
        await conn.send(orjson.dumps({"jsonrpc": "2.0", "id": req["id"], "error": {
            "code": -32601, "message": "no such method"}}).decode())
        await conn.wait_closed()

    server.behaviour = behaviour
    rec = Recorder()
    rpc = rec.open(server.url)
    assert rpc.call("eth_blockNumber") == "0x2a"
    assert rpc.subscribe("newHeads") == "0xsub"
    with pytest.raises(RpcError) as err:
        rpc.call("nope")
    assert err.value.code == -32601
    rpc.close()
    assert rec.closed.wait(5)
    assert [(kind, int(msg["params"]["result"]["number"], 16)) for kind, msg, _ in rec.notes] \
        == [("newHeads", 1), ("newHeads", 2)]
    assert [size for *_, size in rec.notes] == [len(notification("0xsub", n)) for n in (1, 2)]
    assert [code for code, *_ in rec.closes] == [1000]  # our own close, answered


def test_a_server_ping_is_answered(server: Server) -> None:
    got_pong = threading.Event()

    async def behaviour(conn: ServerConnection) -> None:
        waiter = await conn.ping()
        await asyncio.wait_for(waiter, 5)
        got_pong.set()
        await conn.close(1001, "going away")

    server.behaviour = behaviour
    rec = Recorder()
    rec.open(server.url)
    assert got_pong.wait(5)
    assert rec.closed.wait(5)
    assert rec.closes[0][:2] == (1001, "going away")


def test_a_drop_without_a_close_frame_is_1006_and_fails_the_waiting_call(server: Server) -> None:
    async def behaviour(conn: ServerConnection) -> None:
        await conn.recv()               # the call arrives, and is never answered
        conn.transport.abort()          # TCP reset, no Close frame

    server.behaviour = behaviour
    rec = Recorder()
    rpc = rec.open(server.url)
    with pytest.raises(ConnectionLost) as lost:
        rpc.call("eth_blockNumber", timeout=5)
    assert lost.value.code == 1006
    assert rec.closed.wait(5)
    assert [code for code, *_ in rec.closes] == [1006]
    with pytest.raises(ConnectionLost):  # and the connection stays unusable
        rpc.call("eth_blockNumber")


def test_a_refused_handshake_raises_the_status(server: Server) -> None:
    server.refuse = 503
    with pytest.raises(InvalidStatus) as err:
        Recorder().open(server.url)
    assert err.value.response.status_code == 503


def test_a_handshake_that_never_answers_times_out() -> None:
    import socket

    with socket.socket() as listener:   # accepts (backlog) and never speaks
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(TimeoutError):
            WsRpc.open(f"ws://127.0.0.1:{port}/", open_timeout=0.3)


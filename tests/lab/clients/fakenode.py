"""An in-memory node for the reconnecting client's tests: heads on the loop's clock, the JSON-RPC
methods the client uses, and scripted faults per connection attempt.

Everything moves by ``call_soon``/loop timers, so on the virtual clock of ``vclock.py`` a test
asserts exact times. ``FakeNode.connector`` is a :data:`lab.clients.transport.Connector`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from lab.clients.transport import Closed, Conn, HandshakeFailed

ONE_WAY_S = 0.001  # every message and pong takes 1 ms


@dataclass
class Script:
    """What happens to one connection attempt (the n-th call of the connector)."""

    refuse: HandshakeFailed | None = None
    #: Close the connection this long after it opened: ``code`` None is an abnormal drop (1006).
    drop_after_s: float | None = None
    code: int | None = None
    swallow_pongs: bool = False
    #: Send each notification twice.
    duplicate: bool = False
    #: Never answer requests (a stuck server).
    ignore_requests: bool = False


class FakeConn:
    def __init__(self, node: FakeNode, script: Script) -> None:
        self.node = node
        self.script = script
        self.inbox: asyncio.Queue[str | Closed] = asyncio.Queue()
        self.closed: Closed | None = None
        self.subs: list[str] = []
        self.loop = asyncio.get_running_loop()
        if script.drop_after_s is not None:
            self.loop.call_later(script.drop_after_s, self.server_close, script.code)

    # -- the server side --------------------------------------------------------------------
    def deliver(self, text: str) -> None:
        if self.closed is None:
            self.loop.call_later(ONE_WAY_S, self._put, text)

    def _put(self, text: str) -> None:
        if self.closed is None:
            self.inbox.put_nowait(text)

    def server_close(self, code: int | None) -> None:
        if self.closed is not None:
            return
        self.closed = Closed(code, "bye", "server") if code is not None else Closed()
        self.inbox.put_nowait(self.closed)
        self.node.conns.discard(self)

    def handle(self, text: str) -> None:
        if self.script.ignore_requests:
            return
        req = orjson.loads(text)
        method, params, rid = req["method"], req.get("params", []), req["id"]
        result: Any
        if method == "eth_subscribe":
            sid = f"0x{len(self.node.subs_made):04x}"
            self.node.subs_made.append(sid)
            self.subs.append(sid)
            result = sid
        elif method == "eth_blockNumber":
            result = hex(self.node.height)
        elif method == "eth_getBlockByNumber":
            n = int(params[0], 16)
            result = self.node.block(n) if n <= self.node.height else None
            self.node.fetched.append(n)
        elif method == "eth_chainId":
            result = "0x1"
        else:
            self.deliver(orjson.dumps({"jsonrpc": "2.0", "id": rid, "error": {
                "code": -32601, "message": "method not found"}}).decode())
            return
        self.deliver(orjson.dumps({"jsonrpc": "2.0", "id": rid, "result": result}).decode())

    # -- Conn -------------------------------------------------------------------------------
    async def send(self, text: str) -> None:
        if self.closed is not None:
            raise self.closed
        self.loop.call_later(ONE_WAY_S, self.handle, text)

    async def recv(self) -> str:
        if self.closed is not None and self.inbox.empty():
            raise self.closed
        item = await self.inbox.get()
        if isinstance(item, Closed):
            raise item
        return item

    async def ping(self) -> Awaitable[object]:
        if self.closed is not None:
            raise self.closed
        fut: asyncio.Future[object] = self.loop.create_future()
        if not self.script.swallow_pongs:
            self.loop.call_later(2 * ONE_WAY_S, lambda: fut.done() or fut.set_result(None))
        return fut

    async def close(self) -> None:
        if self.closed is None:
            self.closed = Closed(1000, "", "client")
            self.inbox.put_nowait(self.closed)
            self.node.conns.discard(self)

    def abort(self) -> None:
        if self.closed is None:
            self.closed = Closed()
            self.inbox.put_nowait(self.closed)
            self.node.conns.discard(self)


@dataclass
class FakeNode:
    """Makes a head every ``block_time_s`` once :meth:`run` starts; ``scripts[i]`` scripts the
    i-th connection attempt (later attempts use ``default``)."""

    block_time_s: float = 0.2
    scripts: list[Script] = field(default_factory=list)
    default: Script = field(default_factory=Script)
    height: int = 0
    conns: set[FakeConn] = field(default_factory=set)
    attempts: list[float] = field(default_factory=list)
    subs_made: list[str] = field(default_factory=list)
    fetched: list[int] = field(default_factory=list)
    #: Drop every other notification of this connection number (1-based), to force gaps.
    on_attempt: Callable[[int], None] | None = None

    def block(self, n: int) -> dict[str, Any]:
        return {"number": hex(n), "hash": f"0x{n:064x}", "timestampMs": hex(1_000_000 + n)}

    def produce(self) -> None:
        self.height += 1
        head = self.block(self.height)
        for conn in list(self.conns):
            for sid in conn.subs:
                msg = orjson.dumps({"jsonrpc": "2.0", "method": "eth_subscription",
                                    "params": {"subscription": sid, "result": head,
                                               "emittedMs": hex(2_000_000 + self.height)}}).decode()
                conn.deliver(msg)
                if conn.script.duplicate:
                    conn.deliver(msg)

    async def run(self, blocks: int) -> None:
        for _ in range(blocks):
            await asyncio.sleep(self.block_time_s)
            self.produce()

    async def connector(self, url: str) -> Conn:
        loop = asyncio.get_running_loop()
        n = len(self.attempts)
        self.attempts.append(loop.time())
        if self.on_attempt is not None:
            self.on_attempt(n)
        script = self.scripts[n] if n < len(self.scripts) else self.default
        await asyncio.sleep(2 * ONE_WAY_S)  # the handshake's round trip
        if script.refuse is not None:
            raise script.refuse
        conn = FakeConn(self, script)
        self.conns.add(conn)
        return conn

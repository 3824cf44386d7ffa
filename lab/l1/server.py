"""The aiohttp shell of a mock chain: HTTP JSON-RPC, WebSocket subscriptions and the admin endpoint.

One :class:`MockL1` owns the chain model and its wire; it serves it on one or more
:class:`EndpointServer` s (independent listeners with their own faults and WebSocket clients, so a
test can kill or fault the "primary" while a "fallback" keeps serving the same chain). Each
endpoint serves:

* ``POST /`` JSON-RPC 2.0 (single or batch);
* ``GET /ws`` WebSocket: the same calls plus subscribe/unsubscribe and pushed notifications;
* ``POST /admin`` commands (:mod:`lab.l1.admin`); ``GET /admin`` returns ``state``.

Timed block production (``block_time_ms > 0``) runs on a fixed schedule; block contents and hashes
never depend on the wall clock, only on the seed and the order of commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, Literal

import orjson
from aiohttp import WSMsgType, web

from lab.l1 import admin
from lab.l1.chain_model import (
    GENESIS_BALANCE,
    Block,
    Chain,
    ChainError,
    Deploy,
    Transfer,
    Upgrade,
)
from lab.l1.eth_rpc import EthWire
from lab.l1.faults import Fault, FaultPlan, mangle
from lab.l1.sui_graphql import RPC_VERSION as GRAPHQL_RPC_VERSION
from lab.l1.sui_graphql import SuiGraphQL
from lab.l1.sui_rpc import SUI_GENESIS_BALANCE, SuiWire, hex_id, package_id
from lab.l1.wire import Change, Subscription, Wire
from node.core import errors
from node.core.hexutil import data
from node.rpc import jsonrpc

log = logging.getLogger("lab.l1")

ChainKind = Literal["eth", "sui"]


class _WsClient:
    """One WebSocket connection: its subscriptions and an outbound queue drained by one task."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.subs: dict[Any, Subscription] = {}
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.count = 0


class EndpointServer:
    """One listener (host, port) serving a :class:`MockL1`, with its own faults and WS clients."""

    def __init__(self, l1: MockL1, host: str = "127.0.0.1") -> None:
        self.l1 = l1
        self.host = host
        self.port = 0
        self.faults = FaultPlan()
        self.requests = 0
        self._clients: set[_WsClient] = set()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._outage: asyncio.Task[None] | None = None
        #: Cleared while WebSockets are stalled: nothing is read (so no pongs) and nothing is sent.
        self.ws_flowing = asyncio.Event()
        self.ws_flowing.set()

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def graphql_url(self) -> str:
        """Sui GraphQL (``POST``; the Sui mock only)."""
        return f"http://{self.host}:{self.port}/graphql"

    @property
    def admin_url(self) -> str:
        return f"http://{self.host}:{self.port}/admin"

    @property
    def up(self) -> bool:
        return self._site is not None

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=4 << 20)
        app.router.add_post("/", self._http)
        if self.l1.graphql is not None:
            app.router.add_post("/graphql", self._graphql)
        app.router.add_get("/ws", self._ws)
        app.router.add_post("/admin", self._admin)
        app.router.add_get("/admin", self._admin_state)
        return app

    async def start(self, port: int = 0) -> None:
        """Listen on ``port`` (0: a free one, then kept for :meth:`restart`)."""
        if self._runner is None:
            self._runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
            await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, port or self.port, reuse_address=True)
        await site.start()
        self._site = site
        if not self.port:
            self.port = int(self._runner.addresses[-1][1])

    async def stop(self) -> None:
        """Stop listening and drop every connection (the endpoint "dies"); :meth:`start` revives
        it."""
        await self.disconnect_ws()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._site = None

    async def close(self) -> None:
        self.ws_flowing.set()  # release handlers parked by a ws_stall
        if self._outage is not None:
            self._outage.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._outage
        await self.stop()

    async def disconnect_ws(self) -> None:
        for c in list(self._clients):
            c.queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await c.ws.close()
        self._clients.clear()

    def broadcast(self, change: Change) -> None:
        for c in list(self._clients):
            for sid, sub in list(c.subs.items()):
                for res in sub.results(change):
                    method = self.l1.wire.notify_method
                    msg = jsonrpc.notification(method, {"subscription": sid, "result": res})
                    fault = self.faults.take(method, "ws", explicit=True)
                    if fault is not None and fault.malformed is not None:
                        msg = mangle(msg, fault.malformed)
                    c.queue.put_nowait(msg)

    # ------------------------------------------------------------------ HTTP

    async def _http(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        body = await request.read()
        parsed = jsonrpc.parse(body, max_batch=1000)
        if parsed.fatal is not None:
            return _json(parsed.fatal)
        first = next((it.method for it in parsed.items if isinstance(it, jsonrpc.Request)), None)
        fault = self.faults.take(first, "http")
        if fault is not None and fault.stall_ms:
            await asyncio.sleep(fault.stall_ms / 1000)
        if fault is not None and fault.http_status is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return web.Response(
                status=fault.http_status, text=f"mock fault {fault.http_status}\n", headers=headers
            )
        parts = [p for p in (self._answer(it, fault) for it in parsed.items) if p is not None]
        if not parts:
            return web.Response(status=204)
        out = jsonrpc.batch(parts) if parsed.batch else parts[0]
        if fault is not None and fault.malformed is not None:
            out = mangle(out, fault.malformed)
        return _json(out)

    def _answer(self, item: jsonrpc.Request | bytes, fault: Fault | None) -> bytes | None:
        if isinstance(item, bytes):
            return item
        if fault is not None and fault.rpc_error is not None:
            return None if item.notification else jsonrpc.error(item.id, *fault.rpc_error)
        try:
            value = self.l1.call(item.method, item.params)
        except errors.NodeError as e:
            resp = jsonrpc.error(item.id, e.rpc_code, e.message, e.data)
        except Exception:  # a mock bug must still answer, and be visible in the log
            log.exception("mock %s failed on %s", self.l1.kind, item.method)
            resp = jsonrpc.error(item.id, errors.INTERNAL_ERROR, "internal error")
        else:
            resp = jsonrpc.result(item.id, value)
        return None if item.notification else resp

    async def _graphql(self, request: web.Request) -> web.StreamResponse:
        """Sui GraphQL (``POST /graphql``); faults match the method name ``graphql``."""
        assert self.l1.graphql is not None
        self.requests += 1
        fault = self.faults.take("graphql", "http")
        if fault is not None and fault.stall_ms:
            await asyncio.sleep(fault.stall_ms / 1000)
        if fault is not None and fault.http_status is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return web.Response(
                status=fault.http_status, text=f"mock fault {fault.http_status}\n", headers=headers
            )
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as e:
            return web.json_response({"errors": [{"message": f"invalid JSON body: {e}"}]},
                                     status=400)
        result = await self.l1.graphql.execute(body)
        out = orjson.dumps(result)
        if fault is not None and fault.malformed is not None:
            out = mangle(out, fault.malformed)
        return web.Response(body=out, content_type="application/json",
                            headers={"x-sui-rpc-version": GRAPHQL_RPC_VERSION})

    # ------------------------------------------------------------------ WebSocket

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False, max_msg_size=4 << 20)
        await ws.prepare(request)
        client = _WsClient(ws)
        self._clients.add(client)
        writer = asyncio.create_task(self._ws_writer(client))
        try:
            while True:
                msg = await ws.receive()
                if msg.type == WSMsgType.PING:
                    # pongs by hand (autoping off) so a stalled endpoint can stay silent
                    if self.ws_flowing.is_set():
                        await ws.pong(msg.data)
                    continue
                if msg.type == WSMsgType.PONG:
                    continue
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    break
                await self.ws_flowing.wait()
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    raw = msg.data.encode() if isinstance(msg.data, str) else msg.data
                    await self._ws_message(client, raw)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._clients.discard(client)
            client.queue.put_nowait(None)
            await writer
        return ws

    async def _ws_writer(self, client: _WsClient) -> None:
        while True:
            msg = await client.queue.get()
            if msg is None:
                return
            await self.ws_flowing.wait()
            if client.ws.closed:
                return
            try:
                await client.ws.send_str(msg.decode())
            except (ConnectionError, RuntimeError):
                return

    async def _ws_message(self, client: _WsClient, raw: bytes) -> None:
        self.requests += 1
        parsed = jsonrpc.parse(raw, max_batch=1000)
        if parsed.fatal is not None:
            client.queue.put_nowait(parsed.fatal)
            return
        first = next((it.method for it in parsed.items if isinstance(it, jsonrpc.Request)), None)
        fault = self.faults.take(first, "ws")
        if fault is not None and fault.stall_ms:
            await asyncio.sleep(fault.stall_ms / 1000)
        parts: list[bytes] = []
        wire = self.l1.wire
        for it in parsed.items:
            if (
                isinstance(it, jsonrpc.Request)
                and it.method == wire.subscribe_method
                and not (fault and fault.rpc_error)
            ):
                try:
                    sub = wire.subscribe(it.params)
                except errors.NodeError as e:
                    parts.append(jsonrpc.error(it.id, e.rpc_code, e.message))
                    continue
                client.count += 1
                sid = wire.subscription_id(client.count)
                client.subs[sid] = sub
                parts.append(jsonrpc.result(it.id, sid))
            elif (
                isinstance(it, jsonrpc.Request)
                and it.method == wire.unsubscribe_method
                and not (fault and fault.rpc_error)
            ):
                sid = it.params[0] if isinstance(it.params, list) and it.params else None
                parts.append(jsonrpc.result(it.id, client.subs.pop(sid, None) is not None))
            else:
                part = self._answer(it, fault)
                if part is not None:
                    parts.append(part)
        if parts:
            out = jsonrpc.batch(parts) if parsed.batch else parts[0]
            if fault is not None and fault.malformed is not None:
                out = mangle(out, fault.malformed)
            client.queue.put_nowait(out)

    # ------------------------------------------------------------------ admin

    async def _admin(self, request: web.Request) -> web.StreamResponse:
        try:
            body = orjson.loads(await request.read())
            cmd = admin.parse(body, address_len=self.l1.chain.address_len)
            result = await self.l1.execute(cmd, self)
        except (orjson.JSONDecodeError, admin.AdminError, ChainError) as e:
            return web.json_response({"error": str(e)}, status=400)
        return _json(orjson.dumps(result))

    async def _admin_state(self, request: web.Request) -> web.StreamResponse:
        return _json(orjson.dumps(await self.l1.execute(admin.GetState(), self)))

    async def outage(self, ms: int) -> None:
        await asyncio.sleep(0.05)  # let the admin response that ordered this leave first
        await self.stop()
        await asyncio.sleep(ms / 1000)
        await self.start()

    def state(self) -> dict[str, object]:
        return {
            "port": self.port,
            "requests": self.requests,
            "pending_faults": self.faults.pending(),
            "applied_faults": self.faults.applied,
            "ws_clients": len(self._clients),
            "subscriptions": sum(len(c.subs) for c in self._clients),
        }


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


class MockL1:
    """A mock chain (``"eth"`` or ``"sui"``) served on any number of endpoints."""

    def __init__(
        self,
        kind: ChainKind,
        *,
        seed: int = 0,
        block_time_ms: int = 0,
        chain_id: int = 1337,
        finality_depth: int = 64,
    ) -> None:
        self.kind = kind
        self.block_time_ms = block_time_ms
        self.chain = Chain(
            seed=seed,
            address_len=20 if kind == "eth" else 32,
            block_time_ms=block_time_ms or 1000,
            finality_depth=finality_depth,
            genesis_balance=GENESIS_BALANCE if kind == "eth" else SUI_GENESIS_BALANCE,
        )
        self.wire: Wire = (
            EthWire(self.chain, chain_id=chain_id) if kind == "eth" else SuiWire(self.chain)
        )
        #: Sui's GraphQL surface (``POST /graphql``), over the same chain; None for Ethereum.
        self.graphql = SuiGraphQL(self.wire) if isinstance(self.wire, SuiWire) else None
        self.endpoints: list[EndpointServer] = []
        self.paused = False
        self._producer: asyncio.Task[None] | None = None

    async def start(self, endpoints: int = 1, *, host: str = "127.0.0.1", port: int = 0,
                    ports: Sequence[int] = ()) -> MockL1:
        """Start ``endpoints`` listeners (the first on ``port``; or one per entry of ``ports``,
        0 meaning any) and timed production."""
        for p in ports or [port if i == 0 else 0 for i in range(endpoints)]:
            await self.add_endpoint(host=host, port=p)
        if self.block_time_ms > 0 and self._producer is None:
            self._producer = asyncio.create_task(self._produce_loop())
        return self

    async def add_endpoint(self, *, host: str = "127.0.0.1", port: int = 0) -> EndpointServer:
        ep = EndpointServer(self, host)
        await ep.start(port)
        self.endpoints.append(ep)
        return ep

    async def stop(self) -> None:
        if self._producer is not None:
            self._producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._producer
            self._producer = None
        for ep in self.endpoints:
            await ep.close()

    async def __aenter__(self) -> MockL1:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def call(self, method: str, params: list[Any] | dict[str, Any]) -> object:
        return self.wire.call(method, params)

    def publish(self, change: Change) -> None:
        for ep in self.endpoints:
            ep.broadcast(change)

    def produce(self, count: int = 1) -> list[Block]:
        blocks = self.chain.produce(count)
        self.publish(Change((), tuple(blocks)))
        return blocks

    async def _produce_loop(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.block_time_ms / 1000
        next_at = loop.time() + period
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += period
            if not self.paused:
                self.produce(1)

    async def execute(self, cmd: admin.Command, ep: EndpointServer) -> dict[str, object]:
        """Run one admin command (received by ``ep``); raises ``ChainError`` if the model
        refuses."""
        c = self.chain
        if isinstance(cmd, admin.Produce):
            blocks = self.produce(cmd.count)
            return {"head": blocks[-1].number, "hash": data(blocks[-1].hash)}
        if isinstance(cmd, admin.Pause):
            self.paused = cmd.paused
            return {"paused": self.paused}
        if isinstance(cmd, admin.DeployCode):
            address = cmd.address
            if cmd.upgrade:
                assert address is not None
                tx = c.submit(Upgrade(address, cmd.modules))
            else:
                if address is None:
                    # Ethereum: the CREATE address of the deployer's next nonce, as clients compute
                    address = (
                        self.wire.creation_address() if isinstance(self.wire, EthWire)
                        else c.new_address()
                    )
                tx = c.submit(Deploy(address, cmd.modules))
            out: dict[str, object] = {"address": data(address), "tx": data(tx.hash)}
            if cmd.produce:
                block = self.produce(1)[0]
                out["block"] = block.number
                contract = c.contract(address)
                assert contract is not None
                out["version"] = contract.version
                out["code_hash"] = data(contract.code_hash)
                if self.kind == "sui":
                    out["package_id"] = hex_id(package_id(address, contract.version))
            return out
        if isinstance(cmd, admin.TransferFunds):
            tx = c.submit(Transfer(c.accounts[0], cmd.to, cmd.amount))
            if cmd.produce:
                self.produce(1)
            return {"tx": data(tx.hash)}
        if isinstance(cmd, admin.Reorg):
            r = c.reorg(cmd.depth, cmd.new_length, keep_txs=cmd.keep_txs)
            self.publish(Change(tuple(reversed(r.dropped)), r.added))
            return {
                "fork_point": r.fork_point.number,
                "dropped": [data(b.hash) for b in r.dropped],
                "added": [data(b.hash) for b in r.added],
                "head": c.head.number,
            }
        if isinstance(cmd, admin.AddFaults):
            ep.faults.add(cmd.rule)
            return {"pending_faults": ep.faults.pending()}
        if isinstance(cmd, admin.ClearFaults):
            ep.faults.clear()
            return {"pending_faults": 0}
        if isinstance(cmd, admin.Disconnect):
            n = len(ep._clients)
            await ep.disconnect_ws()
            return {"disconnected": n}
        if isinstance(cmd, admin.WsStall):
            if cmd.on:
                ep.ws_flowing.clear()
            else:
                ep.ws_flowing.set()
            return {"ws_stalled": cmd.on}
        if isinstance(cmd, admin.Outage):
            # answer first, then go down: the caller learns the command was accepted
            ep._outage = asyncio.create_task(ep.outage(cmd.ms))
            return {"down_ms": cmd.ms}
        return {
            "kind": self.kind,
            "seed": c.seed,
            "head": c.head.number,
            "head_hash": data(c.head.hash),
            "finalized": c.finalized.number,
            "paused": self.paused,
            "block_time_ms": self.block_time_ms,
            "accounts": [data(a) for a in c.accounts],
            "endpoint": ep.state(),
        }

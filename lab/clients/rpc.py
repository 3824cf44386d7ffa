"""Async JSON-RPC clients for the node (and any Ethereum-style endpoint).

``HttpRpc`` posts single or batch requests (aiohttp); ``WsRpc`` speaks JSON-RPC over a WebSocket
(websockets) with subscriptions. Errors from the server raise :class:`RpcError` carrying the wire
code; transport failures raise the underlying aiohttp/websockets/OSError exceptions.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from ssl import SSLContext
from types import TracebackType
from typing import Any

import aiohttp
import orjson
import websockets
from websockets.asyncio.client import ClientConnection

from node.rpc import jsonrpc


class RpcError(Exception):
    """A JSON-RPC error response (the peer's answer, not a transport failure)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data


def _unwrap(resp: dict[str, Any]) -> Any:
    if "error" in resp:
        e = resp["error"]
        raise RpcError(int(e.get("code", 0)), str(e.get("message", "")), e.get("data"))
    return resp.get("result")


class HttpRpc:
    """JSON-RPC over HTTP(S); ``ssl`` is the client context for https:// (e.g. a lab run's CA)."""

    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 10.0,
                 ssl: SSLContext | None = None) -> None:
        self.url = url
        self._ssl = ssl
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> HttpRpc:
        connector = aiohttp.TCPConnector(ssl=self._ssl) if self._ssl is not None else None
        self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector)
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """Send a raw body; returns (HTTP status, response body)."""
        assert self._session is not None, "use 'async with HttpRpc(...)'"
        async with self._session.post(self.url, data=body, headers=self._headers) as r:
            return r.status, await r.read()

    async def call(self, method: str, *params: Any) -> Any:
        _, body = await self.post(jsonrpc.request(method, list(params), next(self._ids)))
        return _unwrap(orjson.loads(body))

    async def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any | RpcError]:
        ids = [next(self._ids) for _ in calls]
        body = jsonrpc.batch(
            [jsonrpc.request(m, p, i) for (m, p), i in zip(calls, ids, strict=True)]
        )
        _, raw = await self.post(body)
        by_id = {r.get("id"): r for r in orjson.loads(raw)}
        out: list[Any | RpcError] = []
        for i in ids:
            try:
                out.append(_unwrap(by_id[i]))
            except RpcError as e:
                out.append(e)
        return out


class WsRpc:
    """JSON-RPC over one WebSocket. Notifications go to per-subscription queues."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._subs: dict[str, asyncio.Queue[Any]] = {}
        self._early: dict[str, list[Any]] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, url: str, *, token: str | None = None, **kw: Any) -> WsRpc:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        ws = await websockets.connect(url, additional_headers=headers, **kw)
        return cls(ws)

    async def __aenter__(self) -> WsRpc:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = orjson.loads(raw)
                if isinstance(msg, dict) and msg.get("method", "").endswith("_subscription"):
                    sid = msg["params"]["subscription"]
                    q = self._subs.get(sid)
                    if q is None:
                        self._early.setdefault(sid, []).append(msg["params"]["result"])
                    else:
                        q.put_nowait(msg["params"]["result"])
                elif isinstance(msg, dict):
                    fut = self._pending.pop(msg.get("id"), None)  # type: ignore[arg-type]
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
        except websockets.ConnectionClosed as e:
            err: BaseException = e
        else:
            err = ConnectionError("connection closed")
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(err)
        for q in self._subs.values():
            q.put_nowait(err)

    async def call(self, method: str, *params: Any, timeout_s: float = 10.0) -> Any:
        i = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[i] = fut
        await self.ws.send(jsonrpc.request(method, list(params), i).decode())
        return _unwrap(await asyncio.wait_for(fut, timeout_s))

    async def subscribe(self, kind: str, *args: Any, namespace: str = "eth") -> str:
        sid: str = await self.call(f"{namespace}_subscribe", kind, *args)
        q: asyncio.Queue[Any] = asyncio.Queue()
        for early in self._early.pop(sid, []):
            q.put_nowait(early)
        self._subs[sid] = q
        return sid

    async def notifications(self, sid: str) -> AsyncIterator[Any]:
        q = self._subs[sid]
        while True:
            item = await q.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    async def next_notification(self, sid: str, timeout_s: float = 10.0) -> Any:
        item = await asyncio.wait_for(self._subs[sid].get(), timeout_s)
        if isinstance(item, BaseException):
            raise item
        return item

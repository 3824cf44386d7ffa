"""JSON-RPC over one WebSocket, synchronous, for Locust users (``websockets.sync``: it runs
under gevent's monkey-patching, its threads becoming greenlets).

One background reader dispatches responses to the caller waiting on that id and notifications
to ``on_notification(kind, message, received_at)``. When the connection ends the reader calls
``on_close(code, reason, exc)`` once, with code 1006 when no Close frame arrived (the client saw
an abnormal closure), and every pending call raises :class:`ConnectionLost`.

Requests are encoded with the project's codec (``node.rpc.jsonrpc``).
"""

from __future__ import annotations

import itertools
import ssl as ssl_module
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from node.rpc import jsonrpc

#: Close codes that mean the connection ended normally (RFC 6455 §7.4.1).
NORMAL_CLOSES = frozenset({1000, 1001})

OnNotification = Callable[[str, dict[str, Any], float], None]
OnClose = Callable[[int, str, BaseException | None], None]


class RpcError(Exception):
    """The server answered with a JSON-RPC error (its code and message)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ConnectionLost(ConnectionError):
    """The WebSocket ended while a call was waiting; ``code`` is the close code (1006:
    abnormal closure, no Close frame)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"websocket closed {code}" + (f" ({reason})" if reason else ""))
        self.code = code
        self.reason = reason


class _Pending:
    __slots__ = ("event", "reply", "subscribes")

    def __init__(self, subscribes: str = "") -> None:
        self.event = threading.Event()
        self.reply: dict[str, Any] | BaseException | None = None
        #: For a subscribe call: the kind; the reader registers the id before any notification.
        self.subscribes = subscribes


class WsRpc:
    """One connection; build with :meth:`open` (raises what the handshake raised)."""

    def __init__(self, ws: ClientConnection, on_notification: OnNotification | None,
                 on_close: OnClose | None) -> None:
        self.ws = ws
        self.on_notification = on_notification
        self.on_close = on_close
        self.close_code: int | None = None
        self.close_reason = ""
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._subs: dict[str, str] = {}  # subscription id -> kind
        self._reader = threading.Thread(target=self._read, daemon=True, name="wsrpc-reader")
        self._reader.start()

    @classmethod
    def open(cls, url: str, *, ssl: ssl_module.SSLContext | None = None,
             open_timeout: float = 10.0, on_notification: OnNotification | None = None,
             on_close: OnClose | None = None) -> WsRpc:
        # No keepalive pings: the swarm measures what the server and the path do; compression
        # off: it costs client CPU, and messages are small.
        ws = connect(url, ssl=ssl if url.startswith("wss:") else None, open_timeout=open_timeout,
                     ping_interval=None, compression=None, proxy=None, max_size=2**24,
                     close_timeout=2)
        return cls(ws, on_notification, on_close)

    def _read(self) -> None:
        exc: BaseException | None = None
        try:
            for raw in self.ws:
                now = time.time()
                msg = orjson.loads(raw)
                if not isinstance(msg, dict):
                    continue
                if "id" in msg and ("result" in msg or "error" in msg):
                    pending = self._pending.pop(msg["id"], None)
                    if pending is not None:
                        if pending.subscribes and isinstance(msg.get("result"), str):
                            self._subs[msg["result"]] = pending.subscribes
                        pending.reply = msg
                        pending.event.set()
                elif str(msg.get("method", "")).endswith("_subscription"):
                    sid = msg.get("params", {}).get("subscription")
                    if self.on_notification is not None:
                        self.on_notification(self._subs.get(sid, "unknown"), msg, now)
        except ConnectionClosed as e:
            exc = e
        except Exception as e:  # a broken frame or JSON: the connection is unusable
            exc = e
        code = self.ws.close_code if self.ws.close_code is not None else 1006
        self.close_code, self.close_reason = code, self.ws.close_reason or ""
        lost = ConnectionLost(code, self.close_reason)
        for pending in list(self._pending.values()):
            pending.reply = lost
            pending.event.set()
        self._pending.clear()
        if self.on_close is not None:
            self.on_close(code, self.close_reason, exc)

    def call(self, method: str, *params: Any, timeout: float = 10.0) -> Any:
        """Send a request and wait for its response; raises :class:`RpcError`,
        :class:`ConnectionLost` or ``TimeoutError``."""
        if self.close_code is not None:
            raise ConnectionLost(self.close_code, self.close_reason)
        i = next(self._ids)
        subscribes = str(params[0]) if method.endswith("_subscribe") and params else ""
        pending = self._pending[i] = _Pending(subscribes)
        try:
            self.ws.send(jsonrpc.request(method, list(params), i).decode())
        except ConnectionClosed:
            self._pending.pop(i, None)
            raise ConnectionLost(self.ws.close_code or 1006, self.ws.close_reason or "") from None
        if not pending.event.wait(timeout):
            self._pending.pop(i, None)
            raise TimeoutError(f"{method}: no response within {timeout:g} s")
        reply = pending.reply
        if isinstance(reply, BaseException):
            raise reply
        assert reply is not None
        if "error" in reply:
            err = reply["error"]
            raise RpcError(int(err.get("code", 0)), str(err.get("message", "")))
        return reply.get("result")

    def subscribe(self, kind: str, *args: Any, namespace: str = "eth") -> str:
        """Subscribe; notifications reach ``on_notification`` with this ``kind`` (any
        ``*_subscribe`` call registers its id the same way)."""
        return str(self.call(f"{namespace}_subscribe", kind, *args))

    def close(self) -> None:
        """Close with 1000 and wait for the reader to finish."""
        try:
            self.ws.close()
        finally:
            self._reader.join(5)


def emit_ms(message: dict[str, Any]) -> float | None:
    """When the node emitted a notification (ms since the epoch): the envelope's ``emittedMs``
    if the node sends it, else the block's ``timestampMs``, else None."""
    params = message.get("params") or {}
    for value in (params.get("emittedMs"), (params.get("result") or {}).get("timestampMs")):
        if isinstance(value, str) and value.startswith("0x"):
            return float(int(value, 16))
        if isinstance(value, int | float):
            return float(value)
    return None

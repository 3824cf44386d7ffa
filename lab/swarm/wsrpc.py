"""JSON-RPC over one WebSocket, synchronous, for Locust users (gevent: blocking socket calls
become greenlet switches under Locust's monkey-patching).

The WebSocket protocol is websockets' Sans-I/O ``ClientProtocol`` driven by one reader on a plain
socket: each frame is parsed and dispatched in the reader itself. (``websockets.sync`` runs a
second thread per connection and hands every message over through locks; at 1,000 subscribers
that hand-over was most of the client's CPU per notification, and a swarm's latency figures
include the client's own queueing.)

The reader dispatches responses to the caller waiting on that id and notifications to
``on_notification(kind, message, received_at, size)``. When the connection ends the reader calls
``on_close(code, reason, exc)`` once, with code 1006 when no Close frame arrived (the client saw
an abnormal closure), and every pending call raises :class:`ConnectionLost`.

Requests are encoded with the project's codec (``node.rpc.jsonrpc``).
"""

from __future__ import annotations

import itertools
import socket
import ssl as ssl_module
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from node.rpc import jsonrpc

#: Close codes that mean the connection ended normally (RFC 6455 §7.4.1).
NORMAL_CLOSES = frozenset({1000, 1001})
#: Largest message accepted (a block with its transactions can be large).
MAX_MESSAGE = 2**24
_READ_SIZE = 65536

OnNotification = Callable[[str, dict[str, Any], float, int], None]
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

    def __init__(self, sock: socket.socket, protocol: ClientProtocol, pending_events: list[Any],
                 on_notification: OnNotification | None, on_close: OnClose | None) -> None:
        self.sock = sock
        self.protocol = protocol
        self.on_notification = on_notification
        self.on_close = on_close
        self.close_code: int | None = None
        self.close_reason = ""
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._subs: dict[str, str] = {}  # subscription id -> kind
        self._send_lock = threading.Lock()
        self._early = pending_events  # frames that arrived with the handshake response
        self._fragments: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True, name="wsrpc-reader")
        self._reader.start()

    @classmethod
    def open(cls, url: str, *, ssl: ssl_module.SSLContext | None = None,
             open_timeout: float = 10.0, on_notification: OnNotification | None = None,
             on_close: OnClose | None = None) -> WsRpc:
        """Connect and complete the opening handshake within ``open_timeout`` seconds; raises
        ``OSError`` (refused, reset, TLS), ``TimeoutError`` or websockets' ``InvalidHandshake``
        (e.g. ``InvalidStatus`` for a 503 at the handshake)."""
        # No keepalive pings: the swarm measures what the server and the path do; no
        # compression extension: it costs client CPU, and messages are small.
        uri = parse_uri(url)
        deadline = time.monotonic() + open_timeout
        sock = socket.create_connection((uri.host, uri.port), timeout=open_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if uri.secure:
                ctx = ssl if ssl is not None else ssl_module.create_default_context()
                sock = ctx.wrap_socket(sock, server_hostname=uri.host)
            protocol = ClientProtocol(uri, max_size=MAX_MESSAGE)
            protocol.send_request(protocol.connect())
            sock.sendall(b"".join(protocol.data_to_send()))
            events: list[Any] = []
            while not any(isinstance(e, Response) for e in events):
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                try:
                    data = sock.recv(_READ_SIZE)
                except TimeoutError:
                    raise TimeoutError(f"no WebSocket handshake response within "
                                       f"{open_timeout:g} s") from None
                if data:
                    protocol.receive_data(data)
                else:
                    protocol.receive_eof()
                events.extend(protocol.events_received())
                if not data and not events:
                    raise ConnectionResetError("connection closed during the WebSocket handshake")
            if protocol.handshake_exc is not None:
                raise protocol.handshake_exc
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        return cls(sock, protocol, [e for e in events if not isinstance(e, Response)],
                   on_notification, on_close)

    # -- the reader --------------------------------------------------------------------------
    def _flush(self) -> None:
        """Write what the protocol produced (pongs, the close handshake) under the send lock."""
        with self._send_lock:
            for chunk in self.protocol.data_to_send():
                if chunk:
                    self.sock.sendall(chunk)
                else:  # SEND_EOF: half-close, as the protocol asks
                    try:
                        self.sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass

    def _read(self) -> None:
        exc: BaseException | None = None
        protocol = self.protocol
        try:
            events, self._early = self._early, []
            self._flush()  # what frames that came with the handshake response asked for
            while True:
                for event in events:
                    self._frame(event)
                if protocol.state is State.CLOSED:
                    break
                try:
                    data = self.sock.recv(_READ_SIZE)
                except OSError as e:  # reset: no Close frame, the code stays 1006
                    exc = e
                    protocol.receive_eof()
                    break
                if data:
                    protocol.receive_data(data)
                else:
                    protocol.receive_eof()
                events = protocol.events_received()
                try:
                    self._flush()
                except OSError:
                    pass  # the peer is gone; the next recv says how
                if not data:
                    for event in events:
                        self._frame(event)
                    break
        except Exception as e:  # a broken frame or JSON: the connection is unusable
            exc = e
        with_close = protocol.close_rcvd is not None
        code = protocol.close_rcvd.code if with_close and protocol.close_rcvd else 1006
        reason = protocol.close_rcvd.reason if with_close and protocol.close_rcvd else ""
        if exc is None and protocol.close_exc is not None and not with_close:
            exc = protocol.close_exc
        self.close_code, self.close_reason = code, reason
        try:
            self.sock.close()
        except OSError:
            pass
        lost = ConnectionLost(code, reason)
        for pending in list(self._pending.values()):
            pending.reply = lost
            pending.event.set()
        self._pending.clear()
        if self.on_close is not None:
            self.on_close(code, reason, exc)

    def _frame(self, frame: object) -> None:
        if not isinstance(frame, Frame):
            return
        if frame.opcode is Opcode.TEXT or frame.opcode is Opcode.BINARY:
            if not frame.fin:
                self._fragments = [bytes(frame.data)]
                return
            self._message(frame.data)
        elif frame.opcode is Opcode.CONT:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data, self._fragments = b"".join(self._fragments), []
                self._message(data)
        # PING (the protocol queued the pong), PONG, CLOSE (the protocol answers it): nothing

    def _message(self, raw: bytes | bytearray | memoryview) -> None:
        now = time.time()
        msg = orjson.loads(raw)
        if not isinstance(msg, dict):
            return
        if "id" in msg and ("result" in msg or "error" in msg):
            pending = self._pending.pop(msg["id"], None)
            if pending is not None:
                if pending.subscribes and isinstance(msg.get("result"), str):
                    self._subs[msg["result"]] = pending.subscribes
                pending.reply = msg
                pending.event.set()
        elif str(msg.get("method", "")).endswith("_subscription"):
            if self.on_notification is not None:
                sid = (msg.get("params") or {}).get("subscription")
                self.on_notification(self._subs.get(str(sid), "unknown"), msg, now, len(raw))

    # -- calls -------------------------------------------------------------------------------
    def _send_text(self, text: bytes) -> None:
        with self._send_lock:
            if self.protocol.state is not State.OPEN:
                raise ConnectionLost(self.close_code or 1006, self.close_reason)
            self.protocol.send_text(text)
            try:
                for chunk in self.protocol.data_to_send():
                    if chunk:
                        self.sock.sendall(chunk)
            except OSError as e:
                raise ConnectionLost(1006, str(e)) from None

    def call(self, method: str, *params: Any, timeout: float = 10.0) -> Any:
        """Send a request and wait for its response; raises :class:`RpcError`,
        :class:`ConnectionLost` or ``TimeoutError``."""
        if self.close_code is not None:
            raise ConnectionLost(self.close_code, self.close_reason)
        i = next(self._ids)
        subscribes = str(params[0]) if method.endswith("_subscribe") and params else ""
        pending = self._pending[i] = _Pending(subscribes)
        try:
            self._send_text(jsonrpc.request(method, list(params), i))
        except ConnectionLost:
            self._pending.pop(i, None)
            raise
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

    def close(self, timeout: float = 2.0) -> None:
        """Close with 1000 (the closing handshake) and wait up to ``timeout`` seconds for the
        reader to finish; then the socket is closed whatever the peer did."""
        with self._send_lock:
            if self.protocol.state is State.OPEN:
                self.protocol.send_close(1000)
                try:
                    for chunk in self.protocol.data_to_send():
                        if chunk:
                            self.sock.sendall(chunk)
                except OSError:
                    pass
        self._reader.join(timeout)
        if self._reader.is_alive():
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._reader.join(timeout)


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

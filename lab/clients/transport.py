"""The WebSocket seam of the reconnecting client: what a connection must do, what can go wrong,
and the real implementation on websockets.

:class:`Conn` is all :class:`~lab.clients.reconnecting.ReconnectingClient` needs from a
connection; :func:`websockets_connector` makes real ones, the tests make in-memory ones (so
backoff and keepalive are checked on a virtual clock). Failures are classified once, here:

* :class:`HandshakeFailed` — the connection never opened. ``kind`` says why: ``http`` (a status
  other than 101: ``status`` and ``retry_after_s``), ``tls`` (certificate verification or TLS
  protocol mismatch: fatal, retrying cannot fix a configuration), ``timeout``, ``connect``
  (refused, reset, unreachable, or cut in the middle of the TLS handshake), ``protocol`` (the
  peer hung up or spoke something else during the HTTP upgrade).
  :attr:`HandshakeFailed.fatal` applies the policy: TLS errors and 4xx other than 408/425/429
  are fatal; everything else is retried.
* :class:`Closed` — an open connection ended: ``code`` as the client sees it (1006 when no Close
  frame arrived), ``reason``, and ``by``: ``server`` (it sent the Close frame first), ``client``
  (we did), ``none`` (no closing handshake: abnormal closure).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

ABNORMAL = 1006

#: HTTP statuses at the handshake that retrying cannot fix are fatal, except these.
RETRYABLE_4XX = frozenset({408, 425, 429})


class HandshakeFailed(Exception):
    """A connection attempt that did not open (see the module docstring for ``kind``)."""

    def __init__(self, kind: str, message: str, *, status: int | None = None,
                 retry_after_s: float | None = None, exception: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s
        #: The type name of the underlying exception (``SSLCertVerificationError``, ...).
        self.exception = exception

    @property
    def fatal(self) -> bool:
        if self.kind == "tls":
            return True
        if self.kind == "http" and self.status is not None:
            return 400 <= self.status < 500 and self.status not in RETRYABLE_4XX
        return False


class Closed(Exception):
    """An open connection ended."""

    def __init__(self, code: int = ABNORMAL, reason: str = "", by: str = "none") -> None:
        super().__init__(f"closed {code} by {by}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason
        self.by = by


class Conn(Protocol):
    """One open WebSocket connection (text messages)."""

    async def send(self, text: str) -> None:
        """Send a message; raises :class:`Closed` when the connection is gone."""

    async def recv(self) -> str:
        """The next message; raises :class:`Closed` when the connection ends."""

    async def ping(self) -> Awaitable[object]:
        """Send a ping; the result completes when its pong arrives."""

    async def close(self) -> None:
        """Close cleanly (1000), waiting briefly for the server's Close frame."""

    def abort(self) -> None:
        """Drop the connection at once (no closing handshake)."""


Connector = Callable[[str], Awaitable[Conn]]


def retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds (delta form; an HTTP date is ignored)."""
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def classify_handshake(exc: BaseException) -> HandshakeFailed:
    """Turn whatever a connection attempt raised into a :class:`HandshakeFailed`."""
    name = type(exc).__name__
    if isinstance(exc, HandshakeFailed):
        return exc
    if isinstance(exc, InvalidStatus):
        resp = exc.response
        body = resp.body.decode(errors="replace").strip()[:120] if resp.body else ""
        return HandshakeFailed("http", f"HTTP {resp.status_code} {resp.reason_phrase}"
                               + (f": {body}" if body else ""), status=resp.status_code,
                               retry_after_s=retry_after(resp.headers), exception=name)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return HandshakeFailed("tls", f"TLS certificate verification failed: "
                               f"{exc.verify_message or exc.reason}", exception=name)
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLSyscallError):
        # The connection went away during the TLS handshake: a network fault, not a setting.
        return HandshakeFailed("connect", f"TLS handshake interrupted: {exc.reason or exc}",
                               exception=name)
    if isinstance(exc, ssl.SSLError):
        return HandshakeFailed("tls", f"TLS handshake failed: {exc.reason or exc}",
                               exception=name)
    if isinstance(exc, TimeoutError):
        return HandshakeFailed("timeout", "handshake timed out", exception=name)
    if isinstance(exc, OSError):
        return HandshakeFailed("connect", f"{name}: {exc.strerror or exc}", exception=name)
    if isinstance(exc, InvalidHandshake):
        cause = exc.__cause__
        extra = f" ({type(cause).__name__})" if cause is not None else ""
        return HandshakeFailed("protocol", f"{exc}{extra}", exception=name)
    return HandshakeFailed("protocol", f"{name}: {exc}", exception=name)


def classify_close(exc: ConnectionClosed) -> Closed:
    """A websockets close, as the client saw it (who closed first, and the code)."""
    rcvd, sent = exc.rcvd, exc.sent
    if rcvd is None and sent is None:
        return Closed(ABNORMAL, "", "none")
    if rcvd is not None and (sent is None or exc.rcvd_then_sent):
        return Closed(rcvd.code, rcvd.reason, "server")
    assert sent is not None
    # We sent a Close frame: the code is the server's answer if it came, else abnormal.
    return Closed(rcvd.code if rcvd is not None else ABNORMAL,
                  sent.reason if rcvd is None else rcvd.reason, "client")


@dataclass
class WsConn:
    """:class:`Conn` over a websockets ``ClientConnection``."""

    ws: ClientConnection

    async def send(self, text: str) -> None:
        try:
            await self.ws.send(text)
        except ConnectionClosed as e:
            raise classify_close(e) from None

    async def recv(self) -> str:
        try:
            msg = await self.ws.recv()
        except ConnectionClosed as e:
            raise classify_close(e) from None
        return msg if isinstance(msg, str) else msg.decode()

    async def ping(self) -> Awaitable[object]:
        try:
            return await self.ws.ping()
        except ConnectionClosed as e:
            raise classify_close(e) from None

    async def close(self) -> None:
        await self.ws.close()

    def abort(self) -> None:
        self.ws.transport.abort()


def websockets_connector(*, ssl_context: ssl.SSLContext | None = None,
                         headers: Mapping[str, str] | None = None, open_timeout_s: float = 5.0,
                         close_timeout_s: float = 2.0, max_size: int = 16 * 1024 * 1024
                         ) -> Connector:
    """Open real connections with websockets: its own keepalive and reconnect are off (the
    client does both), no HTTP proxy from the environment, no compression (the node sends
    uncompressed frames). Failures raise :class:`HandshakeFailed`."""

    async def connect(url: str) -> Conn:
        try:
            ws = await websockets.connect(
                url, ssl=ssl_context if url.startswith("wss:") else None,
                additional_headers=dict(headers) if headers else None,
                open_timeout=open_timeout_s, close_timeout=close_timeout_s, ping_interval=None,
                ping_timeout=None, proxy=None, compression=None, max_size=max_size,
                max_queue=None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise classify_handshake(exc) from None
        return WsConn(ws)

    return connect


__all__ = ["ABNORMAL", "Closed", "Conn", "Connector", "HandshakeFailed", "WsConn",
           "classify_close", "classify_handshake", "retry_after", "websockets_connector"]

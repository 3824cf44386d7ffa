"""One proxied TCP connection: the two sockets (asyncio Protocols) and the two links between them.

The client socket is accepted with reading paused; the upstream is dialled, and only then do the
links start and reading resume. If the dial fails the client is closed at once, as with
Toxiproxy: it sees EOF, or a reset if it had already sent data. Writes go straight to the
transports; a destination's ``pause_writing`` pauses
reading of the opposite socket, so a slow reader slows the sender instead of filling memory.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import TYPE_CHECKING, Any, cast

from lab.proxy.link import Link, WrapperView
from lab.proxy.stream import Direction, End
from lab.proxy.toxics.base import LinkInfo

if TYPE_CHECKING:
    from lab.proxy.proxy import Proxy

_LINGER_0 = struct.pack("ii", 1, 0)
READ_BUFFER = 256 * 1024


class _Side(asyncio.Protocol):
    """One socket of the connection."""

    def __init__(self, conn: Connection, upstream: bool) -> None:
        self.conn = conn
        self.is_upstream = upstream
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.eof_sent = False
        self.pause_reasons: set[str] = set()
        self.reading_link: Link | None = None  # the link this socket feeds
        self.early: list[bytes] = []
        self.early_end: End | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but implement it
        self.transport = cast(asyncio.Transport, transport)
        transport = self.transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        if not self.is_upstream:
            transport.pause_reading()
            self.conn.client_made(self)
        elif self.conn.finished:
            transport.abort()  # the client left while we were dialling

    def data_received(self, data: bytes) -> None:
        link = self.reading_link
        if link is None:
            # uvloop starts reading after connection_made even if it paused reading there, so
            # bytes can arrive before the upstream is dialled: keep them for the link.
            self.early.append(data)
            return
        link.received.inc(len(data))
        link.feed(data)

    def eof_received(self) -> bool:
        if self.reading_link is None:
            self.early_end = End.EOF
        else:
            self.reading_link.feed_end(End.EOF)
        return True  # keep the socket open for the other direction (half-close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.reading_link is not None:
            self.reading_link.feed_end(End.CLOSE)
        self.conn.side_lost(self)

    def attach(self, link: Link) -> None:
        """Start feeding ``link``, first with anything that arrived before it existed."""
        self.reading_link = link
        early, self.early = self.early, []
        for data in early:
            self.data_received(data)
        if self.early_end is not None:
            link.feed_end(self.early_end)

    def pause_writing(self) -> None:
        self.conn.other(self).set_paused("dest", True)

    def resume_writing(self) -> None:
        self.conn.other(self).set_paused("dest", False)

    def set_paused(self, reason: str, paused: bool) -> None:
        if self.transport is None or self.lost:
            return
        was = bool(self.pause_reasons)
        if paused:
            self.pause_reasons.add(reason)
        else:
            self.pause_reasons.discard(reason)
        now = bool(self.pause_reasons)
        if now and not was:
            self.transport.pause_reading()
        elif was and not now:
            self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        t = self.transport
        if t is not None and not self.lost and not self.eof_sent and not t.is_closing():
            t.write(data)

    def write_eof(self) -> None:
        t = self.transport
        if t is not None and not self.lost and not self.eof_sent and not t.is_closing():
            self.eof_sent = True
            try:
                if t.can_write_eof():
                    t.write_eof()
                else:
                    t.close()
            except OSError:  # the peer is already gone (ENOTCONN): nothing left to half-close
                t.abort()

    def close(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.close()

    def reset(self) -> None:
        t = self.transport
        if t is None or self.lost:
            return
        sock = t.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_0)
            except OSError:
                pass
        t.abort()

    def abort(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.abort()


class Connection:
    """Owns both sides and both links; implements the links' ``LinkOwner``."""

    def __init__(self, proxy: Proxy, conn_id: int) -> None:
        self.proxy = proxy
        self.conn_id = conn_id
        self.client = _Side(self, upstream=False)
        self.upstream = _Side(self, upstream=True)
        self.links: dict[Direction, Link] = {}
        self.done: set[Direction] = set()
        self.opened_at = 0.0
        self.peer: tuple[str, int] = ("", 0)
        self.finished = False
        self._dial: asyncio.Task[None] | None = None

    def other(self, side: _Side) -> _Side:
        return self.upstream if side is self.client else self.client

    # -- lifecycle ----------------------------------------------------------------------
    def client_made(self, side: _Side) -> None:
        if self.finished:
            # Aborted between accept and connection_made (the proxy was disabled meanwhile):
            # the socket arrives too late to be proxied; close it, and never count it as open.
            if side.transport is not None:
                side.transport.abort()
            return
        loop = asyncio.get_running_loop()
        self.opened_at = loop.time()
        assert side.transport is not None
        peer = side.transport.get_extra_info("peername") or ("", 0)
        self.peer = (str(peer[0]), int(peer[1]))
        self.proxy.connection_opened(self)
        self._dial = loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            host, port = self.proxy.upstream_addr()
            await self.proxy.network.dial(lambda: self.upstream, host, port)
        except (OSError, ValueError) as exc:
            self.proxy.record("upstream_failed", conn=self.conn_id, error=str(exc))
            # As Toxiproxy: it closes the client, and Linux answers a close that leaves received
            # data unread with an RST. Data still in the kernel makes our close an RST too; data
            # the loop already read (uvloop reads before the dial) is answered the same way.
            if self.client.early:
                self.client.reset()
            else:
                self.client.close()
            return
        if self.client.lost:
            self.upstream.close()
            return
        up = Link(self, self._info(Direction.UPSTREAM), self.proxy.link_seed(self.conn_id, "up"))
        down = Link(self, self._info(Direction.DOWNSTREAM),
                    self.proxy.link_seed(self.conn_id, "down"))
        self.links = {Direction.UPSTREAM: up, Direction.DOWNSTREAM: down}
        for link in (up, down):
            link.received, link.sent = self.proxy.counters(link)
            link.build(self.proxy.toxics.attach(link))
        self.client.attach(up)
        self.upstream.attach(down)
        assert self.client.transport is not None
        self.client.transport.resume_reading()

    def _info(self, direction: Direction) -> LinkInfo:
        return LinkInfo(self.proxy.name, self.conn_id, self.peer, direction, self.opened_at)

    def side_lost(self, side: _Side) -> None:
        if self.client.lost and (self.upstream.lost or self.upstream.transport is None):
            self._finish()
        elif self.upstream.lost and self.client.lost:
            self._finish()

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if self._dial is not None and not self._dial.done():
            self._dial.cancel()
            self.upstream.abort()  # the dial may have connected just before the cancel
        for link in self.links.values():
            link.kill()
            self.proxy.toxics.detach(link)
        self.proxy.connection_closed(self)

    def abort(self) -> None:
        """Close both sockets now (proxy disabled, deleted or restarted)."""
        self.client.abort()
        self.upstream.abort()
        if self.upstream.transport is None:
            self._finish()

    # -- LinkOwner ----------------------------------------------------------------------
    def _dest(self, link: Link) -> _Side:
        return self.upstream if link.info.direction is Direction.UPSTREAM else self.client

    def link_write(self, link: Link, data: bytes) -> None:
        link.sent.inc(len(data))
        self._dest(link).write(data)

    def link_end(self, link: Link, kind: End) -> None:
        # EOF: half-close the destination. CLOSE: close the destination only; the other link then
        # sees its source go away, flushes what its chain holds and closes the far side (as in
        # Toxiproxy). RESET: RST both sockets now.
        self.done.add(link.info.direction)
        if kind is End.RESET:
            self.client.reset()
            self.upstream.reset()
            return
        dest = self._dest(link)
        if kind is End.EOF:
            dest.write_eof()
        else:
            dest.close()
        if len(self.done) == 2:
            self.client.close()
            self.upstream.close()

    def link_pause(self, link: Link, paused: bool) -> None:
        source = self.client if link.info.direction is Direction.UPSTREAM else self.upstream
        source.set_paused("inflight", paused)

    def record(self, event: str, toxic: str, **details: Any) -> None:
        self.proxy.record(event, toxic=toxic, **details)

    def fired(self, link: Link, wrapper: WrapperView, **details: Any) -> None:
        self.proxy.toxic_fired(wrapper, link, **details)

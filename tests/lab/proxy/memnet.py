"""An in-memory TCP network for the proxy (a ``lab.proxy.net.Network``) and stream helpers.

Every byte moves by ``loop.call_soon``, never through the kernel, so a test on the virtual clock
(``vclock.py``) sees the proxy's own timing and nothing else: a latency toxic of 100 ms makes a
round trip of exactly 100 ms of loop time.

The transports model what the proxy relies on from TCP sockets: ordered bytes, reads of at most
256 KiB, pause/resume of reading, half-close (``write_eof``), close (FIN), and RST both for
``abort`` after ``SO_LINGER 0`` and, as Linux does, for a close that leaves received data unread
or for data that reaches a closed socket. A read after an RST raises ``ConnectionResetError``.
Listeners and dials use ``OSError`` errnos as sockets do (``EADDRINUSE``, ``ECONNREFUSED``).
``MemoryNetwork(uvloop_accept=True)`` models uvloop's accepted sockets, which start reading after
``connection_made`` even if it paused reading.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

READ_SIZE = 256 * 1024
_LINGER_0 = struct.pack("ii", 1, 0)
ProtocolFactory = Callable[[], asyncio.Protocol]


class _Eof:
    pass


class _Rst:
    pass


EOF, RST = _Eof(), _Rst()


class _FakeSocket:
    """What ``get_extra_info("socket")`` offers: options are accepted; SO_LINGER 0 is noted."""

    def __init__(self, transport: MemoryTransport) -> None:
        self._transport = transport

    def setsockopt(self, level: int, option: int, value: Any) -> None:
        if (level, option) == (socket.SOL_SOCKET, socket.SO_LINGER):
            self._transport.linger0 = value == _LINGER_0


class MemoryTransport(asyncio.Transport):
    """One end of an in-memory TCP connection (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sockname: tuple[str, int],
                 peername: tuple[str, int]) -> None:
        super().__init__()
        self._loop = loop
        self._protocol: asyncio.Protocol | None = None
        self.peer: MemoryTransport | None = None
        self._inbox: deque[bytes | _Eof | _Rst] = deque()
        self._reading = True
        self._pumping = False
        self.closed = False  # close() or abort() was called here, or the peer reset us
        self.lost = False  # connection_lost was delivered
        self.eof_sent = False
        self.linger0 = False
        self.ignore_pause = False  # uvloop's accept: a pause in connection_made does not hold
        self._extra = {"sockname": sockname, "peername": peername,
                       "socket": _FakeSocket(self)}

    # -- asyncio.Transport ----------------------------------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def is_closing(self) -> bool:
        return self.closed

    def is_reading(self) -> bool:
        return self._reading and not self.closed

    def pause_reading(self) -> None:
        if not self.ignore_pause:
            self._reading = False

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            self._schedule()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 0)

    def can_write_eof(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed or self.eof_sent or not data:
            return
        peer = self.peer
        assert peer is not None
        if peer.closed:
            # Data reaching a closed socket is answered with an RST.
            self._receive(RST)
            return
        peer._receive(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def write_eof(self) -> None:
        if self.closed or self.eof_sent:
            return
        self.eof_sent = True
        assert self.peer is not None
        self.peer._receive(EOF)

    def close(self) -> None:
        self._shut(reset=self._unread())

    def abort(self) -> None:
        self._shut(reset=self.linger0 or self._unread())

    # -- inside -------------------------------------------------------------------------
    def _unread(self) -> bool:
        return any(isinstance(item, bytes) for item in self._inbox)

    def _shut(self, reset: bool) -> None:
        if self.closed:
            return
        self.closed = True
        peer = self.peer
        assert peer is not None
        if reset:
            peer._receive(RST)
        elif not self.eof_sent:
            peer._receive(EOF)
        self._inbox.clear()
        self._loop.call_soon(self._lose, None)

    def _receive(self, item: bytes | _Eof | _Rst) -> None:
        if self.lost:
            return
        if self.closed and not isinstance(item, _Rst):
            return
        self._inbox.append(item)
        self._schedule()

    def _schedule(self) -> None:
        if not self._pumping and self._inbox and (self._reading or isinstance(self._inbox[0],
                                                                                _Rst)):
            self._pumping = True
            self._loop.call_soon(self._pump)

    def _pump(self) -> None:
        """One socket read: up to 256 KiB of bytes, or the EOF, or the RST."""
        self._pumping = False
        if self.lost or not self._inbox:
            return
        head = self._inbox[0]
        if isinstance(head, _Rst):
            self._inbox.clear()
            self.closed = True
            self._lose(ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET)))
            return
        if not self._reading:
            return
        assert self._protocol is not None
        if isinstance(head, _Eof):
            self._inbox.popleft()
            if not self._protocol.eof_received():
                self.close()
        else:
            data = bytearray()
            while self._inbox and isinstance(self._inbox[0], bytes) and len(data) < READ_SIZE:
                piece = self._inbox.popleft()
                assert isinstance(piece, bytes)
                room = READ_SIZE - len(data)
                if len(piece) > room:
                    self._inbox.appendleft(piece[room:])
                    piece = piece[:room]
                data += piece
            self._protocol.data_received(bytes(data))
        self._schedule()

    def _lose(self, exc: Exception | None) -> None:
        if self.lost:
            return
        self.lost = True
        self.closed = True
        if self._protocol is not None:
            self._protocol.connection_lost(exc)


class _Listener:
    def __init__(self, net: MemoryNetwork, address: tuple[str, int],
                 factory: ProtocolFactory) -> None:
        self._net = net
        self._address = address
        self.factory = factory

    @property
    def address(self) -> tuple[str, int]:
        return self._address

    def close(self) -> None:
        if self._net.listeners.get(self._address) is self:
            del self._net.listeners[self._address]

    async def wait_closed(self) -> None:
        return None


def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


class MemoryNetwork:
    """Listeners by (host, port) and connections between protocols; ports count from 20000.

    ``localhost`` and an empty host mean 127.0.0.1. Client ends get their own port numbers
    (from 40000), so a proxy sees a distinct client address per connection.
    """

    def __init__(self, uvloop_accept: bool = False) -> None:
        self.uvloop_accept = uvloop_accept
        self.listeners: dict[tuple[str, int], _Listener] = {}
        self._ports = itertools.count(20000)
        self._client_ports = itertools.count(40000)
        self.transports: list[MemoryTransport] = []

    @staticmethod
    def _host(host: str) -> str:
        return "127.0.0.1" if host in ("", "localhost") else host

    # -- lab.proxy.net.Network ------------------------------------------------------------
    async def listen(self, factory: ProtocolFactory, host: str, port: int) -> _Listener:
        host = self._host(host)
        if port == 0:
            port = next(p for p in self._ports if (host, p) not in self.listeners)
        if (host, port) in self.listeners:
            raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))
        listener = _Listener(self, (host, port), factory)
        self.listeners[(host, port)] = listener
        return listener

    async def dial(self, factory: ProtocolFactory, host: str, port: int) -> None:
        await self.connect(factory, host, port)

    # -- for tests ------------------------------------------------------------------------
    async def connect(self, factory: ProtocolFactory, host: str,
                      port: int) -> MemoryTransport:
        """Connect a new client protocol to the listener at (host, port); returns its transport."""
        await asyncio.sleep(0)  # a connect is never synchronous
        listener = self.listeners.get((self._host(host), port))
        if listener is None:
            raise ConnectionRefusedError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))
        loop = asyncio.get_running_loop()
        client_addr = ("127.0.0.1", next(self._client_ports))
        server_addr = listener.address
        client = MemoryTransport(loop, client_addr, server_addr)
        server = MemoryTransport(loop, server_addr, client_addr)
        client.peer, server.peer = server, client
        self.transports += [client, server]
        server_proto = listener.factory()
        client_proto = factory()
        server.set_protocol(server_proto)
        client.set_protocol(client_proto)
        server.ignore_pause = self.uvloop_accept
        server_proto.connection_made(server)
        server.ignore_pause = False
        client_proto.connection_made(client)
        return client

    async def open_connection(self, addr: str, limit: int = 4 * 1024 * 1024,
                              ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """``asyncio.open_connection`` to ``"host:port"`` on this network."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=limit)
        protocol = asyncio.StreamReaderProtocol(reader)
        transport = await self.connect(lambda: protocol, *_split(addr))
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    async def start_server(
        self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
        host: str = "127.0.0.1", port: int = 0,
    ) -> str:
        """``asyncio.start_server`` on this network; returns ``"host:port"``."""

        def factory() -> asyncio.Protocol:
            return asyncio.StreamReaderProtocol(asyncio.StreamReader(limit=4 * 1024 * 1024),
                                                handler)

        listener = await self.listen(factory, host, port)
        return f"{listener.address[0]}:{listener.address[1]}"

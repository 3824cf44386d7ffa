"""Where a proxy listens and dials: the machine's TCP stack, or anything with the same shape.

A :class:`Network` opens listeners and dials upstreams with asyncio protocol factories, exactly
as ``loop.create_server``/``loop.create_connection`` do. :class:`TcpNetwork` (the default) is
those two calls. Tests pass an in-memory network instead, so that whole proxies run on a
virtual clock with no socket I/O in flight (``tests/lab/proxy/memnet.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

ProtocolFactory = Callable[[], asyncio.Protocol]


class Listener(Protocol):
    """An open listener; ``address`` is the bound (host, port), port 0 resolved."""

    @property
    def address(self) -> tuple[str, int]: ...

    def close(self) -> None:
        """Stop accepting; connections already accepted are left alone."""

    async def wait_closed(self) -> None: ...


class Network(Protocol):
    """Listen and dial. Both raise ``OSError`` (with ``errno``) as the socket calls do."""

    async def listen(self, factory: ProtocolFactory, host: str, port: int) -> Listener: ...

    async def dial(self, factory: ProtocolFactory, host: str, port: int) -> None:
        """Connect; the protocol's ``connection_made`` has run when this returns."""


class _TcpListener:
    def __init__(self, server: asyncio.Server) -> None:
        self._server = server
        sockname = server.sockets[0].getsockname()
        self._address = (str(sockname[0]), int(sockname[1]))

    @property
    def address(self) -> tuple[str, int]:
        return self._address

    def close(self) -> None:
        self._server.close()

    async def wait_closed(self) -> None:
        await self._server.wait_closed()


class TcpNetwork:
    """The running loop's TCP sockets (``reuse_address``, a 4096 backlog)."""

    async def listen(self, factory: ProtocolFactory, host: str, port: int) -> Listener:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, host, port, reuse_address=True, backlog=4096)
        return _TcpListener(server)

    async def dial(self, factory: ProtocolFactory, host: str, port: int) -> None:
        await asyncio.get_running_loop().create_connection(factory, host, port)

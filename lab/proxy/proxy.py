"""A proxy: a listener, its upstream, its toxics and its live connections.

``listen`` is ``host:port``; the JSON shows the resolved address (port 0 becomes the port the OS
picked). An empty or ``localhost`` host binds 127.0.0.1 (Toxiproxy binds every interface for an
empty host; the lab stays on loopback unless told otherwise). ``upstream`` is not checked when
the proxy is created, only dialled for each accepted client.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from typing import TYPE_CHECKING, Any

from lab.proxy import rng
from lab.proxy.connection import Connection
from lab.proxy.errors import ApiError
from lab.proxy.net import Listener, Network
from lab.proxy.toxic_collection import ToxicCollection

if TYPE_CHECKING:
    from lab.proxy.link import Link, WrapperView
    from lab.proxy.proxy_collection import ProxyCollection


def split_hostport(addr: str) -> tuple[str, int]:
    """``"host:port"`` / ``"[v6]:port"`` / ``":port"`` -> (host, port); ``ValueError`` if bad."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"address {addr}: missing port in address")
    return host.strip("[]"), int(port)


def _bind_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "localhost") else host


async def _resolve(host: str, port: int) -> str:
    """``host`` as an IP address: itself if it is one, else its first IPv4 (or any) address;
    ``ApiError`` 500 with Go's ``lookup`` text if it does not resolve."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port,
                                                             type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ApiError(f"listen tcp: lookup {host}: {exc.strerror or exc}", 500) from None
    addrs = [str(info[4][0]) for info in infos]
    return next((a for a in addrs if ":" not in a), addrs[0])


def _join(host: str, port: int) -> str:
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"


class Proxy:
    """See the module docstring. Created and owned by :class:`ProxyCollection`."""

    def __init__(self, owner: ProxyCollection, name: str, listen: str, upstream: str) -> None:
        self.owner = owner
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.flapped_down = False
        self.server: Listener | None = None
        self.connections: set[Connection] = set()
        self._counted: set[Connection] = set()  # connections counted in the open-connections gauge
        self.conn_count = 0
        self.seed = rng.derive(owner.seed, name)
        self.toxics = ToxicCollection(name, owner.events, _Control(self), self.toxic_fired)

    # -- JSON ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Toxiproxy 2.8+'s proxy object, key for key and in its order: ``"Logger": {}`` is
        what Go writes for Toxiproxy's untagged logger field; it is sent so that clients that
        compare whole objects see the same JSON from both servers."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "Logger": {},
            "toxics": self.toxics.to_json(),
        }

    def upstream_addr(self) -> tuple[str, int]:
        return split_hostport(self.upstream)

    @property
    def network(self) -> Network:
        """Where this proxy listens and dials (the collection's)."""
        return self.owner.network

    # -- listener -----------------------------------------------------------------------
    async def start(self) -> None:
        """Bind and accept; raises ``ApiError`` 500 with Go's ``listen tcp`` text on failure."""
        if self.server is not None:
            self.enabled = True
            return
        await self._listen()
        self.enabled = True
        self.record("proxy_enabled", listen=self.listen)

    async def _listen(self) -> None:
        try:
            host, port = split_hostport(self.listen)
        except ValueError as exc:
            raise ApiError(f"listen tcp {self.listen}: {exc}", 500) from None
        # Like Go's net.Listen: resolve first (an IPv4 address preferred), bind that, and name
        # it in errors ("listen tcp 127.0.0.1:3310: bind: ..." for "localhost:3310").
        bind = await _resolve(_bind_host(host), port)
        try:
            self.server = await self.network.listen(self._accept, bind, port)
        except OSError as exc:
            # asyncio rewraps the bind error; Go prints the bare strerror ("address already in use")
            reason = (os.strerror(exc.errno) if exc.errno else str(exc)).lower()
            raise ApiError(f"listen tcp {_join(bind, port)}: bind: {reason}", 500) from None
        self.listen = _join(*self.server.address)

    async def stop(self) -> None:
        """Close the listener and every live connection."""
        was = self.enabled
        self.enabled = False
        self.flapped_down = False
        await self._unlisten()
        if was:
            self.record("proxy_disabled")

    async def _unlisten(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.close()
        for conn in list(self.connections):
            conn.abort()
        if server is not None:
            await server.wait_closed()

    async def set_flapped(self, down: bool) -> bool:
        """A ``flap`` toxic takes the proxy down (listener and connections) or back up;
        returns whether anything changed."""
        if down == self.flapped_down or not self.enabled:
            return False
        self.flapped_down = down
        self.record("proxy_flap_down" if down else "proxy_flap_up")
        if down:
            await self._unlisten()
        elif self.server is None:
            try:
                await self._listen()
            except ApiError as exc:  # e.g. the port was taken while down: report, stay down
                self.record("proxy_flap_error", error=exc.message)
        return True

    def _accept(self) -> asyncio.Protocol:
        self.conn_count += 1
        conn = Connection(self, self.conn_count)
        self.connections.add(conn)
        return conn.client

    # -- connection callbacks ----------------------------------------------------------
    def connection_opened(self, conn: Connection) -> None:
        m = self.owner.metrics
        m.connections.labels(self.name).inc()
        m.open_connections.labels(self.name).inc()
        self._counted.add(conn)

    def connection_closed(self, conn: Connection) -> None:
        self.connections.discard(conn)
        # Only what was counted as open is uncounted: a connection aborted between accept and
        # its connection_made (the proxy disabled meanwhile) was never counted.
        if conn in self._counted:
            self._counted.discard(conn)
            self.owner.metrics.open_connections.labels(self.name).dec()

    def link_seed(self, conn_id: int, direction: str) -> int:
        return rng.derive(self.seed, conn_id, direction)

    def counters(self, link: Link) -> tuple[Any, Any]:
        """The (received, sent) counter children for a new link, looked up once per link."""
        labels = (link.info.direction.value, self.name, self.listen, self.upstream)
        m = self.owner.metrics
        return m.received.labels(*labels), m.sent.labels(*labels)

    def toxic_fired(self, wrapper: WrapperView, link: Link | None = None,
                    **details: Any) -> None:
        """A toxic fired (see ``toxics/base.py``): one ``toxic_fired`` event and one activation.

        ``link`` is where (``conn`` in the event), or ``None`` for a proxy-wide toxic.
        """
        stream = wrapper.stream.value
        self.owner.metrics.activations.labels(self.name, wrapper.name, wrapper.type,
                                              stream).inc()
        where = {"conn": link.info.conn_id} if link is not None else {}
        self.record("toxic_fired", toxic=wrapper.name, type=wrapper.type, stream=stream,
                    **where, **details)

    def record(self, event: str, **fields: Any) -> None:
        self.owner.events.append(event, proxy=self.name, **fields)


class _Control:
    """``ProxyControl`` for proxy-wide toxics."""

    def __init__(self, proxy: Proxy) -> None:
        self._proxy = proxy

    async def set_down(self, down: bool) -> bool:
        return await self._proxy.set_flapped(down)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

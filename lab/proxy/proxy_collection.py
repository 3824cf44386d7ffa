"""All proxies of one server, with Toxiproxy's create/update/populate/reset rules.

Messages and status codes are Toxiproxy 2.12's (``proxy_collection.go``, ``api.go``): missing
``name``/``upstream`` -> 400 ``missing required field: name`` (``... name at proxy 2`` for
populate), a duplicate -> 409, a bind failure -> 500 with the ``listen tcp`` text.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from typing import Any

from lab.proxy.errors import (
    ERR_BAD_REQUEST_BODY,
    ERR_MISSING_FIELD,
    ERR_PROXY_EXISTS,
    ERR_PROXY_NOT_FOUND,
    ApiError,
)
from lab.proxy.events import EventLog
from lab.proxy.metrics import ProxyMetrics
from lab.proxy.net import Network, TcpNetwork
from lab.proxy.proxy import Proxy, split_hostport


def _field(body: Mapping[str, Any], key: str, kind: type, where: str = "") -> Any:
    value = body.get(key)
    if value is not None and not isinstance(value, kind):
        raise ERR_BAD_REQUEST_BODY.joined(f"{key}{where} must be a {kind.__name__}")
    return value


async def _resolve(addr: str) -> str:
    """``addr`` with its host resolved to an IP (populate compares resolved addresses, #631)."""
    try:
        host, port = split_hostport(addr)
        infos = await asyncio.get_running_loop().getaddrinfo(
            host or "127.0.0.1", port, type=socket.SOCK_STREAM)
        return f"{infos[0][4][0]}:{port}"
    except (OSError, ValueError):
        return addr


class ProxyCollection:
    """Owns the proxies, the event log and the metrics of one server."""

    def __init__(self, seed: int, events: EventLog | None = None,
                 metrics: ProxyMetrics | None = None, network: Network | None = None) -> None:
        self.seed = seed
        self.network: Network = network or TcpNetwork()
        self.events = events or EventLog()
        self.metrics = metrics or ProxyMetrics()
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()

    def get(self, name: str) -> Proxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise ERR_PROXY_NOT_FOUND from None

    def to_json(self) -> dict[str, Any]:
        return {name: p.to_json() for name, p in self.proxies.items()}

    async def create(self, body: Any) -> Proxy:
        """POST /proxies."""
        if not isinstance(body, Mapping):
            raise ERR_BAD_REQUEST_BODY.joined("a proxy must be a JSON object")
        name = _field(body, "name", str)
        upstream = _field(body, "upstream", str)
        listen = _field(body, "listen", str) or "127.0.0.1:0"
        enabled = _field(body, "enabled", bool)
        if not name:
            raise ERR_MISSING_FIELD.joined("name")
        if not upstream:
            raise ERR_MISSING_FIELD.joined("upstream")
        async with self.lock:
            if name in self.proxies:
                raise ERR_PROXY_EXISTS
            proxy = Proxy(self, name, listen, upstream)
            if enabled is not False:
                await proxy.start()
            self.proxies[name] = proxy
            self.events.append("proxy_created", proxy=name, listen=proxy.listen,
                               upstream=upstream)
            return proxy

    async def update(self, name: str, body: Any) -> Proxy:
        """PATCH (or legacy POST) /proxies/{p}: any of ``listen``, ``upstream``, ``enabled``."""
        proxy = self.get(name)
        if not isinstance(body, Mapping):
            raise ERR_BAD_REQUEST_BODY.joined("a proxy must be a JSON object")
        listen = _field(body, "listen", str)
        upstream = _field(body, "upstream", str)
        enabled = _field(body, "enabled", bool)
        async with self.lock:
            restart = (listen and listen != proxy.listen) or (
                upstream and upstream != proxy.upstream
            )
            if restart:
                # Changing the address restarts the proxy and drops its connections.
                was = proxy.enabled
                await proxy.stop()
                proxy.listen = listen or proxy.listen
                proxy.upstream = upstream or proxy.upstream
                if was:
                    await proxy.start()
            if enabled is True:
                await proxy.start()
            elif enabled is False:
                await proxy.stop()
            return proxy

    async def delete(self, name: str) -> None:
        """DELETE /proxies/{p}: stop it and forget it."""
        async with self.lock:
            proxy = self.get(name)
            await self._drop(proxy)

    async def _drop(self, proxy: Proxy) -> None:
        proxy.toxics.stop_all_tasks()
        await proxy.stop()
        self.proxies.pop(proxy.name, None)
        self.events.append("proxy_deleted", proxy=proxy.name)

    async def populate(self, body: Any) -> tuple[list[Proxy], ApiError | None]:
        """POST /populate: create or replace each proxy; returns what was done and any error.

        All entries are validated before any is created. An existing proxy is kept as is when
        its (resolved) ``listen`` and ``upstream`` match, otherwise replaced.
        """
        if not isinstance(body, list):
            return [], ERR_BAD_REQUEST_BODY.joined("populate expects a JSON array of proxies")
        entries: list[dict[str, Any]] = []
        for i, item in enumerate(body, start=1):
            if not isinstance(item, Mapping):
                return [], ERR_BAD_REQUEST_BODY.joined(f"proxy {i} must be a JSON object")
            try:
                name = _field(item, "name", str, f" at proxy {i}")
                upstream = _field(item, "upstream", str, f" at proxy {i}")
                listen = _field(item, "listen", str, f" at proxy {i}") or "127.0.0.1:0"
                enabled = _field(item, "enabled", bool, f" at proxy {i}")
            except ApiError as exc:
                return [], exc
            if not name:
                return [], ERR_MISSING_FIELD.joined(f"name at proxy {i}")
            if not upstream:
                return [], ERR_MISSING_FIELD.joined(f"upstream at proxy {i}")
            entries.append({"name": name, "upstream": upstream, "listen": listen,
                            "enabled": enabled is not False})
        done: list[Proxy] = []
        for entry in entries:
            try:
                done.append(await self._add_or_replace(entry))
            except ApiError as exc:
                return done, exc
        return done, None

    async def _add_or_replace(self, entry: dict[str, Any]) -> Proxy:
        async with self.lock:
            old = self.proxies.get(entry["name"])
            if old is not None:
                same = await _resolve(old.listen) == await _resolve(entry["listen"]) and (
                    await _resolve(old.upstream) == await _resolve(entry["upstream"])
                )
                if same:
                    return old
                await self._drop(old)
        return await self.create(entry)

    async def reset(self) -> None:
        """POST /reset: enable every proxy and remove every toxic."""
        for proxy in list(self.proxies.values()):
            await proxy.toxics.clear()
            await proxy.start()
        self.events.append("reset")

    async def close(self) -> None:
        """Stop everything (server shutdown)."""
        for proxy in list(self.proxies.values()):
            proxy.toxics.stop_all_tasks()
            await proxy.stop()

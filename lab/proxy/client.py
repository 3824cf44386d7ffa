"""Async, typed client for the Toxiproxy HTTP API (this lab's server or Shopify's).

Each client has its own base URL, timeout and aiohttp session (no global state, unlike
toxiproxy-python's class attributes)::

    async with ToxiproxyClient("http://127.0.0.1:8474") as tp:
        proxy = await tp.create_proxy("redis", upstream="127.0.0.1:6379")
        async with proxy.toxic("latency", attributes={"latency": 300}):
            ...                      # every connection through proxy.listen is 300 ms slower
        async with proxy.down():
            ...                      # connections refused, live ones closed

``Proxy.toxics`` is what the client last knew: the server's list when the proxy was read
(``tp.proxy(name)``, :meth:`Proxy.refresh`, :meth:`Proxy.list_toxics`), kept up to date by this
client's own ``add_toxic``/``update_toxic``/``remove_toxic`` and ``proxy.toxic(...)`` blocks. Toxics
added by another client, a profile or a schedule show only after :meth:`Proxy.list_toxics`,
which asks the server. Cleanup: a ``proxy.toxic(...)`` block removes its toxic on exit, even on
error; :meth:`ToxiproxyClient.reset` removes every toxic of every proxy and enables them all
(Toxiproxy's ``POST /reset``); :meth:`Proxy.delete` removes the proxy.

Errors raise :class:`ToxiproxyError` (``status`` and ``message`` from the server's
``{"error", "status"}`` body) or its subclasses :class:`NotFound` (404), :class:`Conflict` (409)
and :class:`BadRequest` (400). ``schedule``/``target`` and the ``ws_*`` toxics are lab extras: a
real Toxiproxy ignores the first two and rejects the others with 400.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from lab.proxy.profiles import Profile


class ToxiproxyError(Exception):
    """The server answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class BadRequest(ToxiproxyError):
    """400: invalid body, type, stream or attribute."""


class NotFound(ToxiproxyError):
    """404: no such proxy or toxic."""


class Conflict(ToxiproxyError):
    """409: a proxy or toxic with that name exists."""


_ERRORS: dict[int, type[ToxiproxyError]] = {400: BadRequest, 404: NotFound, 409: Conflict}


@dataclass(frozen=True)
class Toxic:
    """A toxic as the server returned it."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]
    schedule: dict[str, Any] | None = None
    target: dict[str, Any] | None = None
    active: bool | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Toxic:
        return cls(name=data["name"], type=data["type"], stream=data["stream"],
                   toxicity=float(data["toxicity"]), attributes=dict(data.get("attributes") or {}),
                   schedule=data.get("schedule"), target=data.get("target"),
                   active=data.get("active"))


@dataclass
class Proxy:
    """A proxy snapshot plus methods acting on it (refresh with :meth:`refresh`). ``toxics``
    follows this client's own changes; :meth:`list_toxics` reads the server's current list."""

    client: ToxiproxyClient = field(repr=False)
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: list[Toxic]

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def _load(self, data: Mapping[str, Any]) -> Proxy:
        self.name = data["name"]
        self.listen = data["listen"]
        self.upstream = data["upstream"]
        self.enabled = bool(data["enabled"])
        self.toxics = [Toxic.from_json(t) for t in data.get("toxics") or []]
        return self

    async def refresh(self) -> Proxy:
        return self._load(await self.client._call("GET", f"/proxies/{self.name}"))

    async def update(self, *, listen: str | None = None, upstream: str | None = None,
                     enabled: bool | None = None) -> Proxy:
        """PATCH the proxy; omitted fields keep their values."""
        body: dict[str, Any] = {}
        if listen is not None:
            body["listen"] = listen
        if upstream is not None:
            body["upstream"] = upstream
        if enabled is not None:
            body["enabled"] = enabled
        return self._load(await self.client._call("PATCH", f"/proxies/{self.name}", body))

    async def enable(self) -> Proxy:
        return await self.update(enabled=True)

    async def disable(self) -> Proxy:
        """Close the listener (new connects are refused) and every live connection."""
        return await self.update(enabled=False)

    async def delete(self) -> None:
        await self.client._call("DELETE", f"/proxies/{self.name}")

    @asynccontextmanager
    async def down(self) -> AsyncIterator[Proxy]:
        """Disabled inside the block, enabled again after it (even on error)."""
        await self.disable()
        try:
            yield self
        finally:
            await self.enable()

    async def list_toxics(self) -> list[Toxic]:
        """The server's toxics of this proxy now (also stored in ``toxics``)."""
        data = await self.client._call("GET", f"/proxies/{self.name}/toxics")
        self.toxics = [Toxic.from_json(t) for t in data]
        return list(self.toxics)

    def _forget(self, name: str) -> None:
        self.toxics = [t for t in self.toxics if t.name != name]

    async def get_toxic(self, name: str) -> Toxic:
        return Toxic.from_json(
            await self.client._call("GET", f"/proxies/{self.name}/toxics/{name}")
        )

    async def add_toxic(self, type: str, *, name: str | None = None, stream: str = "downstream",
                        toxicity: float = 1.0, attributes: Mapping[str, Any] | None = None,
                        schedule: Mapping[str, Any] | None = None,
                        target: Mapping[str, Any] | None = None) -> Toxic:
        """POST a toxic; it applies to live connections too. Returns the server's view."""
        body: dict[str, Any] = {"type": type, "stream": stream, "toxicity": toxicity,
                                "attributes": dict(attributes or {})}
        if name is not None:
            body["name"] = name
        if schedule is not None:
            body["schedule"] = dict(schedule)
        if target is not None:
            body["target"] = dict(target)
        toxic = Toxic.from_json(
            await self.client._call("POST", f"/proxies/{self.name}/toxics", body)
        )
        self._forget(toxic.name)
        self.toxics.append(toxic)
        return toxic

    async def update_toxic(self, name: str, *, attributes: Mapping[str, Any] | None = None,
                           toxicity: float | None = None) -> Toxic:
        """PATCH a toxic: attributes are merged into the current ones."""
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = dict(attributes)
        if toxicity is not None:
            body["toxicity"] = toxicity
        toxic = Toxic.from_json(
            await self.client._call("PATCH", f"/proxies/{self.name}/toxics/{name}", body)
        )
        self.toxics = [toxic if t.name == name else t for t in self.toxics]
        return toxic

    async def remove_toxic(self, name: str) -> None:
        try:
            await self.client._call("DELETE", f"/proxies/{self.name}/toxics/{name}")
        finally:
            self._forget(name)

    @asynccontextmanager
    async def toxic(self, type: str, **kwargs: Any) -> AsyncIterator[Toxic]:
        """Add a toxic for the duration of the block (arguments as :meth:`add_toxic`); it is in
        ``toxics`` inside the block and removed (from the server and ``toxics``) after it."""
        toxic = await self.add_toxic(type, **kwargs)
        try:
            yield toxic
        finally:
            try:
                await self.remove_toxic(toxic.name)
            except NotFound:
                pass  # removed meanwhile (e.g. by /reset)


class ToxiproxyClient:
    """See the module docstring. ``timeout`` (seconds) bounds every request."""

    def __init__(self, base_url: str = "http://127.0.0.1:8474", *, timeout: float = 10.0,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> ToxiproxyClient:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["headers"] = {"Content-Type": "application/json"}
        async with self._http().request(method, self.base_url + path, **kwargs) as resp:
            text = await resp.text()
            if resp.status >= 400:
                raise self._error(resp.status, text)
            if not text:
                return None
            if path == "/metrics":
                return text
            return json.loads(text)

    @staticmethod
    def _error(status: int, text: str) -> ToxiproxyError:
        message = text.strip()
        try:
            data = json.loads(text)
            if isinstance(data, dict) and "error" in data:
                message = str(data["error"])
        except ValueError:
            pass
        return _ERRORS.get(status, ToxiproxyError)(status, message)

    # -- server-wide ------------------------------------------------------------------
    async def version(self) -> str:
        data = await self._call("GET", "/version")
        return str(data["version"])

    async def proxies(self) -> dict[str, Proxy]:
        data = await self._call("GET", "/proxies")
        return {name: self._proxy(p) for name, p in data.items()}

    async def proxy(self, name: str) -> Proxy:
        return self._proxy(await self._call("GET", f"/proxies/{name}"))

    async def create_proxy(self, name: str, upstream: str, *, listen: str = "127.0.0.1:0",
                           enabled: bool = True) -> Proxy:
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        return self._proxy(await self._call("POST", "/proxies", body))

    async def populate(self, proxies: Sequence[Mapping[str, Any]]) -> list[Proxy]:
        data = await self._call("POST", "/populate", [dict(p) for p in proxies])
        return [self._proxy(p) for p in data["proxies"]]

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        await self._call("POST", "/reset")

    async def metrics(self) -> str:
        """Prometheus text (404 -> :class:`NotFound` if the server runs without metrics)."""
        text: str = await self._call("GET", "/metrics")
        return text

    async def events(self, since: int = 0) -> list[dict[str, Any]]:
        """The lab server's event log after ``since`` (lab extra)."""
        data = await self._call("GET", f"/events?since={since}")
        return list(data["events"])

    async def apply_profile(self, profile: Profile) -> list[Proxy]:
        """Populate a :class:`lab.proxy.profiles.Profile`'s proxies and add its toxics."""
        proxies = await self.populate(profile.populate_body())
        for spec in profile.proxies:
            proxy = await self.proxy(spec.name)
            for body in spec.toxics:
                await self._call("POST", f"/proxies/{proxy.name}/toxics", body)
        return proxies

    def _proxy(self, data: Mapping[str, Any]) -> Proxy:
        return Proxy(self, "", "", "", False, [])._load(data)

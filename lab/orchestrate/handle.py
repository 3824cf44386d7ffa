"""A running lab seen from its description (``lab.json``): endpoints, faults, status, logs.

:class:`LabHandle` is what ``dubhe-lab status|fault|logs`` use from another process, and what
:class:`~lab.orchestrate.lab.Lab` (the process that owns the components) builds on. It talks to
the lab only over its public endpoints (the proxy's Toxiproxy API, nginx's stub_status, the
node's and mock chains' JSON-RPC); it never touches the processes.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from lab.nginx.status import parse as parse_stub_status
from lab.orchestrate.errors import SpecError
from lab.orchestrate.linkctl import LinkControl, ToxiproxyLinks
from lab.orchestrate.rundir import RunDir
from lab.proxy.client import Proxy, ToxiproxyClient
from lab.proxy.profiles import Profile, load_profile


class LabHandle:
    """A lab described by ``desc`` (the content of ``lab.json``) in ``run``."""

    def __init__(self, run: RunDir, desc: dict[str, Any]) -> None:
        self.run = run
        self.desc = desc
        self._links: LinkControl | None = None
        self._client: ToxiproxyClient | None = None

    @classmethod
    def attach(cls, run: RunDir) -> LabHandle:
        return cls(run, run.read_lab_json())

    # -- topology --------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def run_dir(self) -> Path:
        return self.run.path

    @property
    def seed(self) -> int:
        return int(self.desc["seed"])

    @property
    def endpoints(self) -> dict[str, str]:
        """``http``/``ws``/``https``/``wss``/``health`` through client-edge and nginx; ``node_rpc``,
        ``node_ws`` direct to the node; ``proxy_api``; ``l1_eth``, ``l1_sui`` (+ ``_admin``);
        ``stub_status``; ``ca_file``."""
        return dict(self.desc["endpoints"])

    @property
    def link_names(self) -> list[str]:
        return list(self.desc["links"])

    def link_addresses(self) -> dict[str, tuple[str, str]]:
        return {n: (v["listen"], v["upstream"]) for n, v in self.desc["links"].items()}

    @property
    def admin_token(self) -> str:
        return str(self.desc.get("admin_token", ""))

    @property
    def ca_file(self) -> Path | None:
        ca = self.desc["endpoints"].get("ca_file")
        return Path(ca) if ca else None

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts exactly this run's CA (https:// and wss:// endpoints)."""
        ca = self.ca_file
        if ca is None:
            raise SpecError(self.run_id, [("nginx", "this lab runs without nginx: no TLS")])
        return ssl.create_default_context(cafile=str(ca))

    def log_path(self, component: str) -> Path:
        comps = self.desc["components"]
        if component not in comps:
            raise SpecError(self.run_id, [(component, "no such component "
                                           f"(components: {', '.join(comps)})")])
        return Path(comps[component]["log"])

    # -- faults ----------------------------------------------------------------------------
    @property
    def links(self) -> LinkControl:
        """The lab's links on its proxy API (create, apply, clear, inspect)."""
        if self._links is None:
            links = ToxiproxyLinks(self.desc["proxy_api"],
                                   external=bool(self.desc.get("external_proxy")))
            links.names = self.link_names
            self._links = links
        return self._links

    def toxiproxy(self) -> ToxiproxyClient:
        """A fresh async client on the lab's proxy API (close it when done)."""
        return ToxiproxyClient(self.desc["proxy_api"])

    async def link(self, name: str) -> Proxy:
        """The proxy of one link (``add_toxic``, ``toxic(...)`` context manager, ``down()``)."""
        if name not in self.desc["links"]:
            raise SpecError(self.run_id, [(name, f"no such link (links: "
                                          f"{', '.join(self.link_names)})")])
        if self._client is None:
            self._client = self.toxiproxy()
        return await self._client.proxy(name)

    def toxiproxy_python(self) -> Any:
        """A stock ``toxiproxy-python`` ``Toxiproxy`` object pointed at this lab's API.

        That library keeps host and port as class attributes: one API per process at a time.
        """
        from urllib.parse import urlsplit

        import toxiproxy

        url = urlsplit(self.desc["proxy_api"])
        server = toxiproxy.Toxiproxy()
        server.update_api_consumer(url.hostname, url.port)
        return server

    def load_profile(self, path: Path | str) -> Profile:
        """A profile validated against this run's links (an unknown link names file, profile
        and link)."""
        return load_profile(path, addresses=self.link_addresses())

    async def apply_profile(self, profile: Profile | Path | str) -> list[tuple[str, str]]:
        """Add a profile's toxics to the running links; returns the (link, toxic) pairs."""
        if not isinstance(profile, Profile):
            profile = self.load_profile(profile)
        return await self.links.apply(profile)

    async def clear_faults(self, link: str | None = None) -> list[str]:
        """Remove every toxic from one link or all, and enable them."""
        return await self.links.clear(link)

    async def fault_events(self, since: int = 0) -> list[dict[str, Any]]:
        """The proxy's event log (toxic added/removed/fired...); empty on an external server."""
        return await self.links.events(since)

    # -- status ----------------------------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        """Each component's health, nginx counters, active toxics per link, L1 heads, node
        height. Unreachable parts are reported as errors, never raised."""
        eps = self.endpoints
        timeout = aiohttp.ClientTimeout(total=3)
        out: dict[str, Any] = {"run_id": self.run_id, "state": self.desc.get("state")}
        async with aiohttp.ClientSession(timeout=timeout) as http:

            async def get_json(url: str) -> Any:
                async with http.get(url) as r:
                    return orjson.loads(await r.read())

            async def rpc(url: str, method: str) -> Any:
                body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": []}
                async with http.post(url, json=body) as r:
                    return orjson.loads(await r.read()).get("result")

            async def guard(key: str, coro: Any) -> None:
                try:
                    out[key] = await coro
                except Exception as exc:  # status reports problems, never raises
                    out[key] = {"error": f"{type(exc).__name__}: {exc}".strip(": ")}

            async def nginx() -> Any:
                async with http.get(eps["stub_status"]) as r:
                    return vars(parse_stub_status(await r.text()))

            async def l1() -> Any:
                heads = {}
                for chain, method in (("eth", "eth_blockNumber"),
                                      ("sui", "sui_getLatestCheckpointSequenceNumber")):
                    if f"l1_{chain}" in eps:
                        head = await rpc(eps[f"l1_{chain}"], method)
                        heads[chain] = int(head, 16) if chain == "eth" else int(head)
                return heads

            jobs = [guard("node", get_json(eps["node_health"])),
                    guard("links", self.links.active()),
                    guard("l1_heads", l1())]
            if "stub_status" in eps:
                jobs.append(guard("nginx", nginx()))
            if "health" in eps:
                jobs.append(guard("edge", get_json(eps["health"])))
            await asyncio.gather(*jobs)
        return out

    async def close(self) -> None:
        """Close the HTTP sessions this handle opened (the lab keeps running)."""
        if self._links is not None:
            await self._links.close()
            self._links = None
        if self._client is not None:
            await self._client.close()
            self._client = None

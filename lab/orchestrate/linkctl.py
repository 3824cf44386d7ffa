"""The lab's links on a Toxiproxy API: create them, apply fault profiles, clear, inspect.

Works against the lab's own proxy (``lab.proxy``: every toxic type, schedules, targets, events)
and against an external Toxiproxy server (``--toxiproxy-url``), which has only Toxiproxy's
standard toxics: a profile that needs more is refused before anything is applied, naming the
toxic and what the server lacks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from lab.orchestrate.errors import SpecError
from lab.orchestrate.plan import LinkPlan
from lab.proxy.client import Conflict, NotFound, ToxiproxyClient, ToxiproxyError
from lab.proxy.profiles import Profile

#: The toxic types a stock Toxiproxy 2.x server implements.
STOCK_TOXICS = frozenset({"latency", "bandwidth", "slow_close", "timeout", "reset_peer",
                          "slicer", "limit_data", "noop"})


class LinkControl(Protocol):
    async def create(self, links: Iterable[LinkPlan]) -> None: ...

    async def apply(self, profile: Profile) -> list[tuple[str, str]]: ...

    async def clear(self, link: str | None = None) -> list[str]: ...

    async def active(self) -> dict[str, dict[str, Any]]: ...

    async def events(self, since: int = 0) -> list[dict[str, Any]]: ...

    async def remove(self, links: Iterable[str]) -> None: ...

    async def close(self) -> None: ...


def check_external(profile: Profile, url: str) -> None:
    """Refuse a profile an external (stock) Toxiproxy cannot run; every problem at once."""
    problems = []
    for i, spec in enumerate(profile.proxies):
        for j, body in enumerate(spec.toxics):
            where = f"proxies[{i}] ({spec.link}).toxics[{j}] ({body['name']})"
            if body["type"] not in STOCK_TOXICS:
                problems.append((where, f"type {body['type']!r} is a lab.proxy toxic; the "
                                 f"external Toxiproxy at {url} cannot run it"))
            for extra in ("schedule", "target"):
                if extra in body:
                    problems.append((where, f"'{extra}' is a lab.proxy extension; the external "
                                     f"Toxiproxy at {url} would ignore it"))
    if problems:
        raise SpecError(profile.path or profile.name, problems)


class ToxiproxyLinks:
    """:class:`LinkControl` on a Toxiproxy API (``lab.proxy`` or a real Toxiproxy)."""

    def __init__(self, url: str, *, external: bool = False, timeout_s: float = 10.0) -> None:
        self.url = url
        self.external = external
        self.client = ToxiproxyClient(url, timeout=timeout_s)
        self.names: list[str] = []

    async def create(self, links: Iterable[LinkPlan]) -> None:
        entries = [lp.populate_entry() for lp in links]
        if self.external:
            existing = await self.client.proxies()
            taken = [e["name"] for e in entries if e["name"] in existing]
            if taken:
                raise SpecError(self.url, [(name, "a proxy of that name already exists on the "
                                            "external Toxiproxy (another lab using it?)")
                                           for name in taken])
        try:
            await self.client.populate(entries)
        except ToxiproxyError as exc:
            raise SpecError(self.url, [("links", f"the proxy refused to create the links: "
                                        f"{exc.message}")]) from None
        self.names = [e["name"] for e in entries]

    async def apply(self, profile: Profile) -> list[tuple[str, str]]:
        """Add the profile's toxics to the links' proxies (and disable links it turns off);
        returns (link, toxic) pairs added."""
        if self.external:
            check_external(profile, self.url)
        added: list[tuple[str, str]] = []
        for spec in profile.proxies:
            proxy = await self.client.proxy(spec.link)
            if not spec.enabled:
                await proxy.disable()
            for body in spec.toxics:
                try:
                    await proxy.add_toxic(
                        body["type"], name=body["name"], stream=body["stream"],
                        toxicity=body["toxicity"], attributes=body["attributes"],
                        schedule=body.get("schedule"), target=body.get("target"))
                except Conflict:
                    raise SpecError(profile.path or profile.name, [(
                        f"{spec.link}.{body['name']}",
                        "a toxic of that name is already on this link (clear it first: "
                        f"dubhe-lab fault clear {spec.link})")]) from None
                except ToxiproxyError as exc:
                    raise SpecError(profile.path or profile.name, [(
                        f"{spec.link}.{body['name']}", exc.message)]) from None
                added.append((spec.link, body["name"]))
        return added

    async def clear(self, link: str | None = None) -> list[str]:
        """Remove every toxic of ``link`` (or of every lab link) and enable it again."""
        targets = [link] if link is not None else list(self.names)
        cleared = []
        for name in targets:
            try:
                proxy = await self.client.proxy(name)
            except NotFound:
                raise SpecError("fault clear", [(name, "no such link in this lab "
                                                 f"(links: {', '.join(self.names)})")]) from None
            for toxic in await proxy.list_toxics():
                try:
                    await proxy.remove_toxic(toxic.name)
                except NotFound:
                    pass  # removed meanwhile
            if not proxy.enabled:
                await proxy.enable()
            cleared.append(name)
        return cleared

    async def active(self) -> dict[str, dict[str, Any]]:
        proxies = await self.client.proxies()
        return {
            name: {"enabled": p.enabled, "listen": p.listen, "upstream": p.upstream,
                   "toxics": [{"name": t.name, "type": t.type, "stream": t.stream,
                               "toxicity": t.toxicity, "attributes": t.attributes}
                              for t in p.toxics]}
            for name, p in proxies.items() if name in self.names or not self.names
        }

    async def events(self, since: int = 0) -> list[dict[str, Any]]:
        if self.external:
            return []
        return await self.client.events(since)

    async def remove(self, links: Iterable[str]) -> None:
        for name in links:
            try:
                await (await self.client.proxy(name)).delete()
            except NotFound:
                pass

    async def close(self) -> None:
        await self.client.close()

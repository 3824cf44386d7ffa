"""Fault profiles: TOML data naming proxies (by lab link) and their toxics.

Schema (see fault-profiles/README.md)::

    name = "mobile-3g"                # required, a label
    description = "..."               # optional
    seed = 42                         # optional; --seed on the command line wins

    [[proxies]]
    link = "client-edge"              # required: a link of lab.links (or an array of them)
    name = "client-edge"              # optional, defaults to the link (not with an array)
    listen = "127.0.0.1:28080"        # optional, outside a lab run only (see below)
    upstream = "127.0.0.1:18080"      # optional, likewise
    enabled = true                    # optional

    [[proxies.toxics]]                # the Toxiproxy toxic shape plus schedule/target
    type = "latency"
    stream = "downstream"
    toxicity = 1.0
    attributes = { latency = 300, jitter = 100 }
    schedule = { start = 0, stop = 5000 }

Everything is checked before anything is applied; the first problem raises :class:`ProfileError`
naming the file, the profile and the key (``proxies[0].toxics[1].attributes.latncy``).

Links come from :mod:`lab.links`. Inside a lab run the orchestrator passes the run's links and
their addresses (``addresses``): a link the run does not have is an error, and a profile's own
``listen``/``upstream`` are ignored there (the run's proxies already exist). Outside a lab
(``python -m lab.proxy --config FILE``) the links get :data:`lab.links.STANDALONE_ADDRESSES`
unless the profile gives ``listen``/``upstream``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import links as lab_links
from lab.proxy.schedule import Schedule, ScheduleError, Target
from lab.proxy.stream import Direction
from lab.proxy.toxics import TOXICS, ToxicAttributeError

#: Toxic types that parse WebSocket frames: they cannot act on a link that carries TLS.
WS_AWARE_TOXICS = frozenset(t for t in TOXICS if t.startswith("ws_"))

_TOP_KEYS = {"name", "description", "seed", "proxies"}
_PROXY_KEYS = {"link", "name", "listen", "upstream", "enabled", "toxics"}
_TOXIC_KEYS = {"type", "name", "stream", "toxicity", "attributes", "schedule", "target"}


class ProfileError(ValueError):
    """A profile file is invalid; the message names the file, the profile (once its name is
    known) and the key."""

    def __init__(self, path: Path | str, key: str, message: str, profile: str = "") -> None:
        where = f"{path}: profile {profile!r}" if profile else str(path)
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")
        self.path = str(path)
        self.key = key
        self.profile = profile


@dataclass(frozen=True)
class ProxySpec:
    """One proxy of a profile; ``toxics`` are API bodies for POST /proxies/{p}/toxics."""

    name: str
    link: str
    listen: str
    upstream: str
    enabled: bool = True
    toxics: tuple[dict[str, Any], ...] = ()

    def populate_entry(self) -> dict[str, Any]:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream,
                "enabled": self.enabled}


@dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    seed: int | None = None
    proxies: tuple[ProxySpec, ...] = field(default_factory=tuple)
    path: str = ""

    def populate_body(self) -> list[dict[str, Any]]:
        """The body of POST /populate for this profile."""
        return [p.populate_entry() for p in self.proxies]


def load_profile(path: Path | str,
                 addresses: Mapping[str, tuple[str, str]] | None = None) -> Profile:
    """Read and validate a profile. ``addresses`` (link -> (listen, upstream)) are a lab run's
    links: then only those links are valid and their addresses win over the file's."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ProfileError(path, "", f"cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(path, "", f"invalid TOML: {exc}") from None
    return parse_profile(data, path, addresses)


def parse_profile(data: Mapping[str, Any], path: Path | str = "<profile>",
                  addresses: Mapping[str, tuple[str, str]] | None = None) -> Profile:
    """Validate already-parsed TOML (or JSON) data; see :func:`load_profile`."""
    in_lab = addresses is not None
    links = dict(addresses) if addresses is not None else dict(lab_links.STANDALONE_ADDRESSES)
    label = str(data["name"]) if isinstance(data.get("name"), str) else ""

    def fail(key: str, message: str) -> ProfileError:
        return ProfileError(path, key, message, label)

    for key in data:
        if key not in _TOP_KEYS:
            raise fail(key, f"unknown key (expected one of {', '.join(sorted(_TOP_KEYS))})")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise fail("name", "required string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("description", "must be a string")
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise fail("seed", f"must be an integer, got {seed!r}")
    raw_proxies = data.get("proxies", [])
    if not isinstance(raw_proxies, list):
        raise fail("proxies", "must be an array of tables ([[proxies]])")
    proxies: list[ProxySpec] = []
    names: set[str] = set()
    for i, raw in enumerate(raw_proxies):
        where = f"proxies[{i}]"
        if not isinstance(raw, Mapping):
            raise fail(where, "must be a table")
        for key in raw:
            if key not in _PROXY_KEYS:
                raise fail(f"{where}.{key}", "unknown key "
                           f"(expected one of {', '.join(sorted(_PROXY_KEYS))})")
        raw_link = raw.get("link")
        raw_names = raw_link if isinstance(raw_link, list) else [raw_link]
        if not raw_names or not all(isinstance(n, str) for n in raw_names):
            raise fail(f"{where}.link", "must be a link name or an array of link names")
        link_names = [str(n) for n in raw_names]
        if len(link_names) > 1 and "name" in raw:
            raise fail(f"{where}.name", "cannot be given with an array of links "
                       "(each link's proxy is named after the link)")
        for link in link_names:
            if link not in links and not (not in_lab and lab_links.get(link) is not None):
                if in_lab and lab_links.get(link) is not None:
                    raise fail(f"{where}.link", f"link {link!r} is not part of this lab "
                               f"(its links: {', '.join(links)})")
                known = ", ".join(links) if in_lab else ", ".join(
                    [*links, "node-l1-eth-N", "node-l1-sui-N"])
                raise fail(f"{where}.link", f"unknown link {link!r} (known: {known})")
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            raise fail(f"{where}.enabled", "must be true or false")
        raw_toxics = raw.get("toxics", [])
        if not isinstance(raw_toxics, list):
            raise fail(f"{where}.toxics", "must be an array of tables ([[proxies.toxics]])")
        toxics = []
        tnames: set[str] = set()
        for j, traw in enumerate(raw_toxics):
            body = _toxic(traw, f"{where}.toxics[{j}]", fail)
            if body["name"] in tnames:
                raise fail(f"{where}.toxics[{j}].name", f"duplicate toxic name {body['name']!r}")
            tnames.add(body["name"])
            toxics.append(body)
        for link in link_names:
            definition = lab_links.get(link)
            if definition is not None and definition.tls:
                for j, body in enumerate(toxics):
                    if body["type"] in WS_AWARE_TOXICS:
                        raise fail(f"{where}.toxics[{j}].type",
                                   f"{body['type']} parses WebSocket frames, but link {link!r} "
                                   "carries TLS; put it on nginx-node-ws or client-edge")
            pname = raw.get("name", link)
            if not isinstance(pname, str) or not pname:
                raise fail(f"{where}.name", "must be a non-empty string")
            if pname in names:
                raise fail(f"{where}.name", f"duplicate proxy name {pname!r}")
            names.add(pname)
            listen, upstream = links.get(link, ("", ""))
            if not in_lab:
                listen = raw.get("listen", listen)
                upstream = raw.get("upstream", upstream)
            for key, value in (("listen", listen), ("upstream", upstream)):
                if not value and not in_lab:
                    raise fail(f"{where}.{key}", f"required for link {link!r} outside a lab run")
                if not isinstance(value, str) or ":" not in value:
                    raise fail(f"{where}.{key}", f"must be 'host:port', got {value!r}")
            proxies.append(ProxySpec(pname, link, listen, upstream, enabled, tuple(toxics)))
    return Profile(name, description, seed, tuple(proxies), str(path))


def _toxic(raw: Any, where: str, fail: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise fail(where, "must be a table")
    for key in raw:
        if key not in _TOXIC_KEYS:
            raise fail(f"{where}.{key}",
                       f"unknown key (expected one of {', '.join(sorted(_TOXIC_KEYS))})")
    type_name = raw.get("type")
    if type_name not in TOXICS:
        raise fail(f"{where}.type",
                   f"unknown toxic type {type_name!r} (known: {', '.join(sorted(TOXICS))})")
    stream = raw.get("stream", "downstream")
    try:
        Direction.parse(stream)
    except (ValueError, AttributeError):
        raise fail(f"{where}.stream", "must be 'upstream' or 'downstream'") from None
    toxicity = raw.get("toxicity", 1.0)
    if isinstance(toxicity, bool) or not isinstance(toxicity, int | float) or not (
        0.0 <= toxicity <= 1.0
    ):
        raise fail(f"{where}.toxicity", f"must be a number in [0, 1], got {toxicity!r}")
    attrs = raw.get("attributes", {})
    try:
        TOXICS[type_name].from_attributes(attrs)
    except ToxicAttributeError as exc:
        raise fail(f"{where}.attributes.{exc.key}", str(exc).split(": ", 1)[1]) from None
    for key, parser in (("schedule", Schedule.parse), ("target", Target.parse)):
        if key in raw:
            try:
                parser(raw[key])
            except ScheduleError as exc:
                raise fail(f"{where}.{exc.key}", str(exc).split(": ", 1)[1]) from None
    body: dict[str, Any] = {
        "name": raw.get("name") or f"{type_name}_{stream}",
        "type": type_name,
        "stream": stream,
        "toxicity": float(toxicity),
        "attributes": dict(attrs),
    }
    for key in ("schedule", "target"):
        if key in raw:
            body[key] = raw[key]
    return body


async def apply_profile(collection: Any, profile: Profile) -> None:
    """Create the profile's proxies and toxics in a ``ProxyCollection`` (server side).

    Raises :class:`ProfileError` if a proxy cannot be created (e.g. its port is taken).
    """
    from lab.proxy.errors import ApiError

    for spec in profile.proxies:
        try:
            _, err = await collection.populate([spec.populate_entry()])
            if err is not None:
                raise err
            proxy = collection.get(spec.name)
            for body in spec.toxics:
                await proxy.toxics.add(body)
        except ApiError as exc:
            raise ProfileError(profile.path, f"proxies[{spec.name}]", exc.message) from None


def check(paths: list[str]) -> int:
    """Validate profile files (``python -m lab.proxy --check FILE...``); 1 if any is invalid."""
    import sys

    status = 0
    for path in paths:
        try:
            profile = load_profile(path)
        except ProfileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        toxics = sum(len(p.toxics) for p in profile.proxies)
        print(f"ok: {path}: {profile.name} ({len(profile.proxies)} proxies, {toxics} toxics)")
    return status

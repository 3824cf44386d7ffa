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

Everything is checked before anything is applied, and every problem of the file is reported at
once: :class:`ProfileError` lists each with the file, the profile and the key
(``proxies[0].toxics[1].attributes.latncy``). Numeric toxic attributes are checked against their
ranges (no negative latency or rate; ports in 0..65535).

Links come from :mod:`lab.links`. Inside a lab run the orchestrator passes the run's links and
their addresses (``addresses``): a link the run does not have is an error, and a profile's own
``listen``/``upstream`` are ignored there (the run's proxies already exist). Outside a lab
(``dubhe-proxy --profile FILE``) the links get :data:`lab.links.STANDALONE_ADDRESSES`
unless the profile gives ``listen``/``upstream``.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from collections.abc import Callable, Mapping
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
#: The keys of one proxy in Toxiproxy's own JSON config file (``toxiproxy-server -config``).
_TOXIPROXY_KEYS = {"name", "listen", "upstream", "enabled"}


class ProfileError(ValueError):
    """A profile file is invalid. ``problems`` lists every ``(key, message)`` found (a file is
    checked whole); the message has one line per problem naming the file, the profile (once its
    name is known) and the key. ``key`` is the first problem's key."""

    def __init__(self, path: Path | str, key: str, message: str, profile: str = "",
                 problems: list[tuple[str, str]] | None = None) -> None:
        self.problems = problems or [(key, message)]
        where = f"{path}: profile {profile!r}" if profile else str(path)
        super().__init__("\n".join(f"{where}: {k}: {m}" if k else f"{where}: {m}"
                                   for k, m in self.problems))
        self.path = str(path)
        self.key = self.problems[0][0]
        self.profile = profile

    @property
    def lines(self) -> list[str]:
        """One line per problem."""
        return str(self).splitlines()


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
    links: then only those links are valid and their addresses win over the file's.

    A ``.json`` file (or one whose text starts with ``[``) is read as JSON: a JSON array is
    Toxiproxy's own ``-config`` file (see :func:`parse_toxiproxy_config`), an object is a
    profile. Raises :class:`ProfileError` with every problem of the file."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except IsADirectoryError:
        raise ProfileError(path, "", "is a directory, not a profile file") from None
    except OSError as exc:
        raise ProfileError(path, "", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ProfileError(path, "", f"not UTF-8 text (byte {exc.start}: "
                           f"{exc.object[exc.start:exc.start + 1]!r})") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProfileError(path, "", f"invalid JSON: {exc}") from None
        if isinstance(data, list):
            return parse_toxiproxy_config(data, path)
        if not isinstance(data, dict):
            raise ProfileError(path, "", "a JSON profile is an object, or Toxiproxy's array of "
                               "proxies")
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ProfileError(path, "", f"invalid TOML: {exc}") from None
    return parse_profile(data, path, addresses)


def parse_toxiproxy_config(data: list[Any], path: Path | str = "<toxiproxy.json>") -> Profile:
    """Toxiproxy's ``-config`` file: a JSON array of ``{"name", "listen", "upstream",
    "enabled"?}``. Each entry becomes a proxy of that name with no toxics (as Toxiproxy starts
    it), not bound to a lab link; the profile is named after the file. Add toxics through the
    API, or write a TOML profile to have them at start."""
    problems: list[tuple[str, str]] = []
    proxies: list[ProxySpec] = []
    names: set[str] = set()
    for i, raw in enumerate(data):
        where = f"[{i}]"
        if not isinstance(raw, Mapping):
            problems.append((where, "must be an object {name, listen, upstream, enabled}"))
            continue
        bad = False
        for key in raw:
            if key not in _TOXIPROXY_KEYS:
                problems.append((f"{where}.{key}", _unknown(key, _TOXIPROXY_KEYS)))
                bad = True
        name, upstream = raw.get("name"), raw.get("upstream")
        listen = raw.get("listen", "127.0.0.1:0")
        enabled = raw.get("enabled", True)
        if not isinstance(name, str) or not name:
            problems.append((f"{where}.name", "required string"))
            bad = True
        elif name in names:
            problems.append((f"{where}.name", f"duplicate proxy name {name!r}"))
            bad = True
        for key, value, low in (("listen", listen, 0), ("upstream", upstream, 1)):
            why = _address_problem(value, low)
            if why:
                problems.append((f"{where}.{key}", why))
                bad = True
        if not isinstance(enabled, bool):
            problems.append((f"{where}.enabled", "must be true or false"))
            bad = True
        if not bad:
            names.add(str(name))
            proxies.append(ProxySpec(str(name), "", str(listen), str(upstream), bool(enabled)))
    if problems:
        raise ProfileError(path, problems[0][0], problems[0][1], problems=problems)
    return Profile(Path(str(path)).stem, "Toxiproxy config", None, tuple(proxies), str(path))


def _unknown(key: str, known: set[str] | frozenset[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key; {hint}expected one of {', '.join(sorted(known))}"


def _address_problem(value: Any, lowest_port: int) -> str | None:
    """Why ``value`` is not a usable ``host:port`` (None when it is)."""
    if not isinstance(value, str) or ":" not in value:
        return f"must be 'host:port', got {value!r}"
    host, _, port = value.rpartition(":")
    if not host.strip("[]"):
        return f"{value!r}: the host is missing ('127.0.0.1:{port}')"
    if not port.isdigit() or not lowest_port <= int(port) <= 65535:
        return f"{value!r}: the port must be a number in {lowest_port}..65535"
    return None


def parse_profile(data: Mapping[str, Any], path: Path | str = "<profile>",
                  addresses: Mapping[str, tuple[str, str]] | None = None) -> Profile:
    """Validate already-parsed TOML (or JSON) data; see :func:`load_profile`. Every problem is
    collected before :class:`ProfileError` is raised."""
    in_lab = addresses is not None
    links = dict(addresses) if addresses is not None else dict(lab_links.STANDALONE_ADDRESSES)
    label = str(data["name"]) if isinstance(data.get("name"), str) else ""
    problems: list[tuple[str, str]] = []

    def fail(key: str, message: str) -> None:
        problems.append((key, message))

    for key in data:
        if key not in _TOP_KEYS:
            fail(key, _unknown(key, _TOP_KEYS))
    name = data.get("name")
    if not isinstance(name, str) or not name:
        fail("name", "required string")
    description = data.get("description", "")
    if not isinstance(description, str):
        fail("description", "must be a string")
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        fail("seed", f"must be an integer, got {seed!r}")
    raw_proxies = data.get("proxies", [])
    if not isinstance(raw_proxies, list):
        fail("proxies", "must be an array of tables ([[proxies]])")
        raw_proxies = []
    proxies: list[ProxySpec] = []
    names: set[str] = set()
    for i, raw in enumerate(raw_proxies):
        where = f"proxies[{i}]"
        if not isinstance(raw, Mapping):
            fail(where, "must be a table")
            continue
        for key in raw:
            if key not in _PROXY_KEYS:
                fail(f"{where}.{key}", _unknown(key, _PROXY_KEYS))
        raw_link = raw.get("link")
        raw_names = raw_link if isinstance(raw_link, list) else [raw_link]
        link_names: list[str] = []
        if not raw_names or not all(isinstance(n, str) for n in raw_names):
            fail(f"{where}.link", "must be a link name or an array of link names")
        else:
            link_names = [str(n) for n in raw_names]
        if len(link_names) > 1 and "name" in raw:
            fail(f"{where}.name", "cannot be given with an array of links "
                 "(each link's proxy is named after the link)")
        good_links = []
        for link in link_names:
            if link not in links and not (not in_lab and lab_links.get(link) is not None):
                if in_lab and lab_links.get(link) is not None:
                    fail(f"{where}.link", f"link {link!r} is not part of this lab "
                         f"(its links: {', '.join(links)})")
                else:
                    known = ", ".join(links) if in_lab else ", ".join(
                        [*links, "node-l1-eth-N", "node-l1-sui-N"])
                    close = difflib.get_close_matches(link, list(links), n=1, cutoff=0.6)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                    fail(f"{where}.link", f"unknown link {link!r}; {hint}known: {known}")
            else:
                good_links.append(link)
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            fail(f"{where}.enabled", "must be true or false")
        raw_toxics = raw.get("toxics", [])
        if not isinstance(raw_toxics, list):
            fail(f"{where}.toxics", "must be an array of tables ([[proxies.toxics]])")
            raw_toxics = []
        toxics = []
        tnames: set[str] = set()
        for j, traw in enumerate(raw_toxics):
            body = _toxic(traw, f"{where}.toxics[{j}]", fail)
            if body is None:
                continue
            if body["name"] in tnames:
                fail(f"{where}.toxics[{j}].name", f"duplicate toxic name {body['name']!r}")
            tnames.add(body["name"])
            toxics.append(body)
        for link in good_links:
            definition = lab_links.get(link)
            if definition is not None and definition.tls:
                for j, body in enumerate(toxics):
                    if body["type"] in WS_AWARE_TOXICS:
                        fail(f"{where}.toxics[{j}].type",
                             f"{body['type']} parses WebSocket frames, but link {link!r} "
                             "carries TLS; put it on nginx-node-ws or client-edge")
            pname = raw.get("name", link)
            if not isinstance(pname, str) or not pname:
                fail(f"{where}.name", "must be a non-empty string")
                continue
            if pname in names:
                fail(f"{where}.name", f"duplicate proxy name {pname!r}")
            names.add(pname)
            listen, upstream = links.get(link, ("", ""))
            if not in_lab:
                listen = raw.get("listen", listen)
                upstream = raw.get("upstream", upstream)
            for key, value, low in (("listen", listen, 0), ("upstream", upstream, 1)):
                if not value and not in_lab:
                    fail(f"{where}.{key}", f"required for link {link!r} outside a lab run")
                    continue
                why = _address_problem(value, low)
                if why:
                    fail(f"{where}.{key}", why)
            proxies.append(ProxySpec(pname, link, str(listen), str(upstream), bool(enabled),
                                     tuple(toxics)))
    if problems:
        raise ProfileError(path, problems[0][0], problems[0][1], label, problems=problems)
    assert isinstance(name, str)
    return Profile(name, str(description), seed, tuple(proxies), str(path))


#: Ranges of toxic attributes in profiles (every other numeric attribute: >= 0). The API takes
#: what Toxiproxy takes; a profile is checked stricter, since a negative latency there is a typo.
_ATTR_RANGES: dict[tuple[str, str], tuple[float, float | None]] = {
    ("ws_close", "code"): (1000, 4999),
    ("ws_message", "every"): (1, None),
    ("ws_message", "probability"): (0.0, 1.0),
    ("flap", "up"): (1, None),
    ("flap", "down"): (1, None),
}


def _toxic(raw: Any, where: str, fail: Callable[[str, str], None]) -> dict[str, Any] | None:
    """The API body of one toxic, or None when it has problems (each reported to ``fail``)."""
    if not isinstance(raw, Mapping):
        fail(where, "must be a table")
        return None
    ok = True

    def bad(key: str, message: str) -> None:
        nonlocal ok
        ok = False
        fail(key, message)

    for key in raw:
        if key not in _TOXIC_KEYS:
            bad(f"{where}.{key}", _unknown(key, _TOXIC_KEYS))
    type_name = raw.get("type")
    if type_name not in TOXICS:
        close = difflib.get_close_matches(str(type_name), sorted(TOXICS), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        bad(f"{where}.type", f"unknown toxic type {type_name!r}; {hint}known: "
            f"{', '.join(sorted(TOXICS))}")
    stream = raw.get("stream", "downstream")
    try:
        Direction.parse(stream)
    except (ValueError, AttributeError):
        bad(f"{where}.stream", "must be 'upstream' or 'downstream'")
    toxicity = raw.get("toxicity", 1.0)
    if isinstance(toxicity, bool) or not isinstance(toxicity, int | float) or not (
        0.0 <= toxicity <= 1.0
    ):
        bad(f"{where}.toxicity", f"must be a number in [0, 1], got {toxicity!r}")
    attrs = raw.get("attributes", {})
    if type_name in TOXICS:
        if not isinstance(attrs, Mapping):
            bad(f"{where}.attributes", "must be a table")
        else:
            cls = TOXICS[type_name]
            for key, value in attrs.items():  # each attribute alone: every problem is reported
                try:
                    cls.from_attributes({key: value})
                except ToxicAttributeError as exc:
                    bad(f"{where}.attributes.{exc.key}", str(exc).split(": ", 1)[1])
                    continue
                if isinstance(value, int | float) and not isinstance(value, bool):
                    lo, hi = _ATTR_RANGES.get((type_name, key), (0, None))
                    if value < lo or (hi is not None and value > hi):
                        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
                        bad(f"{where}.attributes.{key}", f"{value!r} is out of range "
                            f"(must be {rng})")
            if ok:  # each attribute is fine alone: now together (a toxic may check pairs)
                try:
                    cls.from_attributes(attrs)
                except ToxicAttributeError as exc:
                    bad(f"{where}.attributes.{exc.key}", str(exc).split(": ", 1)[1])
    for key, parser in (("schedule", Schedule.parse), ("target", Target.parse)):
        if key in raw:
            try:
                parser(raw[key])
            except ScheduleError as exc:
                bad(f"{where}.{exc.key}", str(exc).split(": ", 1)[1])
    if not ok:
        return None
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
    """Validate profile files (``dubhe-proxy --check FILE...``): one ``ok:`` line per valid file,
    one ``error:`` line per problem of each invalid one (every problem of every file); 1 if any
    is invalid."""
    import sys

    status = 0
    for path in paths:
        try:
            profile = load_profile(path)
        except ProfileError as exc:
            for line in exc.lines:
                print(f"error: {line}", file=sys.stderr)
            status = 1
            continue
        toxics = sum(len(p.toxics) for p in profile.proxies)
        print(f"ok: {path}: {profile.name} ({len(profile.proxies)} proxies, {toxics} toxics)")
    return status

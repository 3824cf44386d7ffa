"""Browser-origin protection, as geth does it (pure, no I/O).

A web page can make a browser send requests to a node on loopback: a "simple" cross-origin POST
(``text/plain`` body, no preflight) executes before the browser's same-origin policy hides the
answer, and a page on a rebinding domain name can even read answers. Three rules stop that:

* **virtual hosts** (geth's ``--http.vhosts``, default ``localhost``): a request whose ``Host``
  header names a host that is not listed is refused (403). A ``Host`` that is an IP address is
  always accepted: DNS rebinding needs a *name*;
* **origins** (geth's ``--http.corsdomain`` and ``--ws.origins``): a request carrying an
  ``Origin`` header (browsers always send one cross-origin, and on WebSocket handshakes) must
  match a rule, else 403. Requests without ``Origin`` (every non-browser client) pass. A rule is
  ``*``, a host (``localhost``: any scheme and port), ``scheme://host`` or
  ``scheme://host:port``; a part the rule leaves out matches anything;
* **JSON only**: a JSON-RPC POST must say ``Content-Type: application/json`` (the media types
  geth accepts), which a browser cannot send cross-origin without a CORS preflight.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

#: Media types a JSON-RPC POST may carry (geth's list); parameters (``charset``) are ignored.
JSON_MEDIA_TYPES = frozenset({"application/json", "application/json-rpc",
                              "application/jsonrequest"})


def is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() in JSON_MEDIA_TYPES


def _host_of(host_header: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8545`` -> ``::1``, ``a.b:1`` -> ``a.b``)."""
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[1:h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


class VirtualHosts:
    """``allows(host_header)``: the host is an IP address, listed, or ``*`` is listed."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(n.strip().lower() for n in names)
        self.any = "*" in self.names
        self._cache: dict[str, bool] = {}

    def allows(self, host_header: str | None) -> bool:
        if self.any or not host_header:
            return True  # no Host at all: HTTP/1.0 tools; a browser always sends one
        hit = self._cache.get(host_header)
        if hit is None:
            host = _host_of(host_header)
            try:
                ipaddress.ip_address(host)
                hit = True
            except ValueError:
                hit = host in self.names or host.rstrip(".") in self.names
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[host_header] = hit
        return hit


def _parse(origin: str) -> tuple[str, str, str]:
    """(scheme, hostname, port) of an origin or rule; the scheme is "" when not written."""
    scheme = ""
    text = origin.strip().lower()
    if "://" in text:
        scheme = text.split("://", 1)[0]
    else:
        text = "http://" + text
    try:
        u = urlsplit(text)
        return scheme, u.hostname or "", str(u.port) if u.port is not None else ""
    except ValueError:
        return scheme, "", ""


class OriginRules:
    """``allows(origin)`` for the rules of the module docstring; an empty rule list allows
    nothing (every cross-origin browser request is refused)."""

    def __init__(self, rules: Iterable[str]) -> None:
        self.rules = tuple(r for r in rules if r.strip())
        self.any = any(r.strip() == "*" for r in self.rules)
        self._parsed = [_parse(r) for r in self.rules if r.strip() != "*"]
        self._cache: dict[str, bool] = {}

    def allows(self, origin: str) -> bool:
        if self.any:
            return True
        hit = self._cache.get(origin)
        if hit is None:
            scheme, host, port = _parse(origin)
            hit = bool(host) and any(
                (not rs or rs == scheme) and (not rh or rh == host) and (not rp or rp == port)
                for rs, rh, rp in self._parsed
            )
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[origin] = hit
        return hit

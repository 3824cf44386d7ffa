"""The lab's links: every hop between two parts of the lab runs through a fault proxy.

This module is the one list of links. Fault profiles name links from it
(:mod:`lab.proxy.profiles` validates against it), the orchestrator creates one proxy per link
of a run (:mod:`lab.orchestrate`), and reports label fault windows with these names.

::

    client ─[client-edge]──────▶ nginx :http  ─[nginx-node-rpc]─▶ node :rpc ─[node-l1-eth]─▶ l1-eth
    client ─[client-edge-tls]──▶ nginx :https ─[nginx-node-ws]──▶ node :ws  ─[node-l1-sui]─▶ l1-sui

A mock L1 with more than one endpoint gets one link per extra endpoint, numbered from 2
(``node-l1-eth-2`` is the node's first fallback endpoint of the Ethereum mock).

A link carries TCP. Links marked ``tls`` carry TLS records (the client's TLS session ends at
nginx), so the WebSocket-aware toxics, which parse frames, cannot act on them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class LinkDef:
    """One link: who connects (``client``) to which port of which component (``server``)."""

    name: str
    client: str
    server: str
    port: str
    description: str
    tls: bool = False


#: The links of a full lab, in data-flow order (clients first).
LINKS: tuple[LinkDef, ...] = (
    LinkDef("client-edge", "client", "nginx", "http", "clients -> nginx (plain HTTP and ws://)"),
    LinkDef("client-edge-tls", "client", "nginx", "https",
            "clients -> nginx (TLS: https:// and wss://)", tls=True),
    LinkDef("nginx-node-rpc", "nginx", "node", "rpc", "nginx -> node JSON-RPC over HTTP"),
    LinkDef("nginx-node-ws", "nginx", "node", "ws", "nginx -> node WebSocket"),
    LinkDef("node-l1-eth", "node", "l1-eth", "rpc", "node -> mock Ethereum L1 (primary endpoint)"),
    LinkDef("node-l1-sui", "node", "l1-sui", "rpc", "node -> mock Sui L1 (primary endpoint)"),
)

_BY_NAME = {link.name: link for link in LINKS}
_EXTRA_ENDPOINT = re.compile(r"^node-l1-(eth|sui)-([2-9]|[1-9][0-9]+)$")

#: Addresses a profile's proxies get when it is loaded outside a lab run
#: (``dubhe-proxy --profile FILE``): listen, upstream. Inside a lab the orchestrator
#: allocates free ports per run and passes them instead.
STANDALONE_ADDRESSES: dict[str, tuple[str, str]] = {
    "client-edge": ("127.0.0.1:28080", "127.0.0.1:18080"),
    "client-edge-tls": ("127.0.0.1:28443", "127.0.0.1:18443"),
    "nginx-node-rpc": ("127.0.0.1:28545", "127.0.0.1:8545"),
    "nginx-node-ws": ("127.0.0.1:28546", "127.0.0.1:8546"),
    "node-l1-eth": ("127.0.0.1:28547", "127.0.0.1:18545"),
    "node-l1-sui": ("127.0.0.1:29000", "127.0.0.1:19000"),
}


def get(name: str) -> LinkDef | None:
    """The link called ``name`` (including numbered extra L1 endpoints), or None."""
    link = _BY_NAME.get(name)
    if link is not None:
        return link
    m = _EXTRA_ENDPOINT.match(name)
    if m is None:
        return None
    chain, n = m.group(1), m.group(2)
    return LinkDef(name, "node", f"l1-{chain}", f"rpc{n}",
                   f"node -> mock {'Ethereum' if chain == 'eth' else 'Sui'} L1 (endpoint {n})")


def l1_link(chain: str, endpoint: int) -> LinkDef:
    """The link to endpoint ``endpoint`` (1-based) of mock chain ``chain`` (``eth``/``sui``)."""
    name = f"node-l1-{chain}" if endpoint == 1 else f"node-l1-{chain}-{endpoint}"
    link = get(name)
    if link is None:
        raise ValueError(f"no link for endpoint {endpoint} of chain {chain!r}")
    return link


def names(links: Iterable[LinkDef]) -> list[str]:
    return [link.name for link in links]

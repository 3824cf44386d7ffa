"""What the adapters take (endpoints) and what they emit (heads, reorgs, L1 events, code upgrades).

All events are frozen dataclasses; ``chain`` is ``"ethereum"`` or ``"sui"``. Hashes, addresses and
package ids are lowercase ``0x`` hex strings (Sui checkpoint digests are base58, as on the wire).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One L1 endpoint: an HTTP JSON-RPC URL and, optionally, its WebSocket URL."""

    rpc_url: str
    ws_url: str | None = None

    def __post_init__(self) -> None:
        if not self.rpc_url.startswith(("http://", "https://")):
            raise ValueError(f"rpc_url must be http(s): {self.rpc_url!r}")
        if self.ws_url is not None and not self.ws_url.startswith(("ws://", "wss://")):
            raise ValueError(f"ws_url must be ws(s): {self.ws_url!r}")


def endpoint_list(
    rpc_url: str | None, ws_url: str | None = None, fallbacks: Iterable[object] = ()
) -> list[Endpoint]:
    """The primary (``rpc_url``/``ws_url``) then each fallback, as config lists them.

    A fallback is anything with ``rpc_url``/``ws_url`` attributes (a config model) or keys (a dict).
    """
    out = [Endpoint(rpc_url, ws_url)] if rpc_url else []
    for f in fallbacks:
        if isinstance(f, Mapping):
            url, ws = f.get("rpc_url"), f.get("ws_url")
        else:
            url, ws = getattr(f, "rpc_url", None), getattr(f, "ws_url", None)
        if not isinstance(url, str) or not url:
            raise ValueError("every fallback endpoint needs an rpc_url")
        out.append(Endpoint(url, ws if isinstance(ws, str) else None))
    if not out:
        raise ValueError("no endpoint configured")
    return out


@dataclass(frozen=True, slots=True)
class Header:
    """The part of a block (Sui: checkpoint) that following needs."""

    number: int
    hash: str
    parent_hash: str
    timestamp_ms: int = 0


@dataclass(frozen=True, slots=True)
class NewHead:
    """``header`` joined the canonical chain; emitted in strictly increasing order between
    reorgs."""

    chain: str
    header: Header


@dataclass(frozen=True, slots=True)
class Reorg:
    """Blocks above ``fork_point`` left the chain (``dropped``, newest first).

    ``fork_point`` is None when the reorg was deeper than the adapter's window: forget everything
    and treat the following :class:`NewHead` as a fresh start. ``reverted_code`` lists contracts
    (Ethereum addresses / Sui original package ids) whose deploy or upgrade was in a dropped block:
    their cached code may be stale.
    """

    chain: str
    fork_point: Header | None
    dropped: tuple[Header, ...]
    reverted_code: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class L1Event:
    """One log (Ethereum) or Move event (Sui) of the followed chain.

    ``kind`` is the log's ``topics[0]`` or the Sui event ``type``; ``id`` is unique per event
    (``blockHash:logIndex`` / ``txDigest:eventSeq``); ``raw`` is the wire object.
    """

    chain: str
    id: str
    address: str
    kind: str
    header: Header | None
    raw: Mapping[str, object] = field(repr=False)


@dataclass(frozen=True, slots=True)
class CodeUpgrade:
    """Dubhe code was deployed (``version == 1``) or upgraded at ``address``.

    Ethereum: ``address`` is the contract, ``location`` the same address (``get_code`` it). Sui:
    ``address`` is the package's *original* id, ``location`` the new package id (pass it to
    ``get_package_modules``).
    """

    chain: str
    address: str
    location: str
    version: int
    code_hash: str
    header: Header | None


AdapterEvent = NewHead | Reorg | L1Event | CodeUpgrade

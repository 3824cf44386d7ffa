"""What every wire surface of a mock chain provides, and the helpers they share.

A *wire* turns JSON-RPC calls into model queries and model changes into subscription results. It
is sans-I/O: :mod:`lab.l1.server` owns sockets and calls :meth:`Wire.call` /
:meth:`Wire.subscribe`; it pushes :meth:`Subscription.results` for each :class:`Change`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from lab.l1.chain_model import Block
from node.core import errors

MethodNotFound = errors.MethodNotFound


class ServerError(errors.RemoteError):
    """geth's generic ``-32000`` (header not found, unknown block...)."""

    rpc_code = errors.SERVER_ERROR


@dataclass(frozen=True, slots=True)
class Change:
    """Blocks that left (``dropped``, newest first) and joined (``added``, oldest first) the
    chain."""

    dropped: tuple[Block, ...]
    added: tuple[Block, ...]


class Subscription(Protocol):
    def results(self, change: Change) -> list[object]:
        """The notification results this subscription emits for ``change``, in order."""
        ...


class Wire(Protocol):
    #: Method name of pushed notifications (``eth_subscription``, ``suix_subscribeEvent``).
    notify_method: str
    subscribe_method: str
    unsubscribe_method: str

    def call(self, method: str, params: list[Any] | dict[str, Any]) -> object:
        """Answer one call; raises :class:`~node.core.errors.NodeError` for JSON-RPC errors."""
        ...

    def subscribe(self, params: list[Any] | dict[str, Any]) -> Subscription:
        """Parse subscribe params; raises ``InvalidParams`` for an unsupported kind."""
        ...

    def subscription_id(self, n: int) -> object:
        """The wire form of the ``n``-th subscription id on a connection."""
        ...


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(b: bytes) -> str:
    """Bitcoin-alphabet base58 (Sui digests)."""
    n = int.from_bytes(b, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    pad = len(b) - len(b.lstrip(b"\0"))
    return "1" * pad + out


def b58decode(s: str) -> bytes:
    n = 0
    for c in s:
        i = _B58.find(c)
        if i < 0:
            raise ValueError(f"invalid base58 character {c!r}")
        n = n * 58 + i
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(s) - len(s.lstrip("1"))
    return b"\0" * pad + body

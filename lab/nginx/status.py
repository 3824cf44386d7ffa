"""Parse nginx's ``stub_status`` page."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PAT = re.compile(
    r"Active connections:\s*(\d+)\s*server accepts handled requests\s*(\d+)\s+(\d+)\s+(\d+)\s*"
    r"Reading:\s*(\d+)\s*Writing:\s*(\d+)\s*Waiting:\s*(\d+)", re.S)


@dataclass(frozen=True)
class StubStatus:
    """The counters of ``stub_status``. Upgraded WebSocket sessions count under ``writing``;
    ``requests`` grows once per handshake, not per message."""

    active: int
    accepts: int
    handled: int
    requests: int
    reading: int
    writing: int
    waiting: int


def parse(text: str) -> StubStatus:
    """Parse the page; ``ValueError`` naming what was expected if it is not a stub_status page."""
    m = _PAT.search(text)
    if m is None:
        raise ValueError(f"not an nginx stub_status page: {text[:80]!r}")
    return StubStatus(*(int(g) for g in m.groups()))

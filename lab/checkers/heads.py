"""Gap, duplicate and order checker for head subscriptions (pure: history events in, figures out).

For each subscriber, the heads it handed to its consumer (``deliver`` events, or ``notify`` for
what the wire brought) are compared with the chain: every block from the first one it delivered
(or ``start``) up to ``until`` (the node's head read at the end) must appear exactly once, in
increasing order, with the chain's hash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class HeadReport:
    """One subscriber's figures. ``missed`` lists block numbers (capped at 50 in ``as_dict``)."""

    client: str
    first: int | None = None
    last: int | None = None
    delivered: int = 0
    missed: list[int] = field(default_factory=list)
    duplicates: int = 0
    out_of_order: int = 0
    wrong_hash: int = 0
    beyond: int = 0

    @property
    def clean(self) -> bool:
        return not (self.missed or self.duplicates or self.out_of_order or self.wrong_hash)

    def as_dict(self) -> dict[str, Any]:
        return {"client": self.client, "first": self.first, "last": self.last,
                "delivered": self.delivered, "missed": len(self.missed),
                "missed_blocks": self.missed[:50], "duplicates": self.duplicates,
                "out_of_order": self.out_of_order, "wrong_hash": self.wrong_hash}


def check_subscriber(client: str, numbers: list[tuple[int, str | None]], *,
                     until: int | None, start: int | None = None,
                     chain: Mapping[int, str] | None = None) -> HeadReport:
    """``numbers``: (block number, hash) in the order the subscriber saw them."""
    r = HeadReport(client, delivered=len(numbers))
    if not numbers:
        if start is not None and until is not None:
            r.missed = list(range(start, until + 1))
        return r
    seen = Counter(n for n, _ in numbers)
    r.first = start if start is not None else numbers[0][0]
    r.last = max(seen)
    r.duplicates = sum(c - 1 for c in seen.values())
    prev = None
    for n, h in numbers:
        if prev is not None and n < prev:
            r.out_of_order += 1
        prev = n if prev is None else max(prev, n)
        if chain is not None and h is not None and n in chain and chain[n] != h:
            r.wrong_hash += 1
    end = until if until is not None else r.last
    r.missed = [n for n in range(r.first, end + 1) if n not in seen]
    r.beyond = sum(1 for n in seen if n > end)
    return r


def check_heads(events: Iterable[dict[str, Any]], *, until: int | None,
                chain: Mapping[int, str] | None = None, source: str = "deliver",
                start: Mapping[str, int] | None = None,
                clients: Iterable[str] | None = None) -> dict[str, HeadReport]:
    """Per client, the report over its ``source`` events (``deliver`` or ``notify``).
    ``clients`` lists subscribers that must be there even if they saw nothing."""
    seqs: dict[str, list[tuple[int, str | None]]] = {c: [] for c in (clients or ())}
    for e in events:
        if e.get("ev") == source:
            seqs.setdefault(e["client"], []).append((int(e["n"]), e.get("hash")))
    return {c: check_subscriber(c, seq, until=until, chain=chain,
                                start=(start or {}).get(c)) for c, seq in sorted(seqs.items())}


def totals(reports: Mapping[str, HeadReport]) -> dict[str, int]:
    """Sums over subscribers (and how many were clean)."""
    rs = list(reports.values())
    return {
        "subscribers": len(rs),
        "delivered": sum(r.delivered for r in rs),
        "missed": sum(len(r.missed) for r in rs),
        "duplicates": sum(r.duplicates for r in rs),
        "out_of_order": sum(r.out_of_order for r in rs),
        "wrong_hash": sum(r.wrong_hash for r in rs),
        "clean_subscribers": sum(1 for r in rs if r.clean),
    }


__all__ = ["HeadReport", "check_heads", "check_subscriber", "totals"]

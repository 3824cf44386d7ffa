""""No acknowledged transaction lost" (pure): the senders' histories against the receipts read
from the chain at the end.

A transaction is *acknowledged* when the node answered its submission with the hash
(``request`` events with ``outcome = "ack"``); *rejected* when it answered with an error; *unknown*
when no answer came (the request or the reply was lost: it may or may not be on the chain, as in
Jepsen's indeterminate ``info`` operations). Every acknowledged transaction must have a receipt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TxReport:
    acked: int = 0
    rejected: int = 0
    unknown: int = 0
    lost: list[str] = field(default_factory=list)
    unknown_included: int = 0
    rejected_included: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"acked": self.acked, "rejected": self.rejected, "unknown": self.unknown,
                "lost": len(self.lost), "lost_txs": self.lost[:50],
                "unknown_included": self.unknown_included,
                "rejected_included": len(self.rejected_included)}


def submissions(events: Iterable[dict[str, Any]]) -> dict[str, str]:
    """tx hash -> its final outcome (an ack wins over earlier failures of the same tx)."""
    out: dict[str, str] = {}
    for e in events:
        if e.get("ev") == "request" and "tx" in e and "outcome" in e:
            if out.get(e["tx"]) != "ack":
                out[e["tx"]] = e["outcome"]
    return out


def check_acked(events: Iterable[dict[str, Any]], receipts: Mapping[str, Any]) -> TxReport:
    """``receipts``: tx hash -> receipt (None or missing: not on the chain)."""
    r = TxReport()
    for tx, outcome in submissions(events).items():
        included = receipts.get(tx) is not None
        if outcome == "ack":
            r.acked += 1
            if not included:
                r.lost.append(tx)
        elif outcome == "rejected":
            r.rejected += 1
            if included:
                # refused, yet on the chain: the node said no and did it anyway
                r.rejected_included.append(tx)
        else:
            r.unknown += 1
            r.unknown_included += included
    return r


__all__ = ["TxReport", "check_acked", "submissions"]

"""No acknowledged transaction lost: an acked transaction without a receipt fails the check."""

from __future__ import annotations

from lab.checkers.txs import check_acked


def sent(tx: str, outcome: str) -> dict[str, object]:
    return {"ev": "request", "client": "s", "method": "dubhe_sendTransaction", "tx": tx,
            "outcome": outcome}


def test_acked_with_receipts_pass_and_a_lost_one_is_named() -> None:
    events = [
        sent("0x1", "ack"),
        sent("0x2", "ack"),
        sent("0x3", "unknown"),
        sent("0x4", "rejected"),
        sent("0x5", "unknown"),
        sent("0x5", "ack"),
    ]
    r = check_acked(events, {"0x1": {}, "0x3": {}, "0x5": {}})
    assert (r.acked, r.unknown, r.rejected) == (3, 1, 1)
    assert r.lost == ["0x2"]
    assert r.unknown_included == 1
    assert check_acked(events, {"0x1": {}, "0x2": {}, "0x5": {}}).lost == []


def test_a_rejected_transaction_on_the_chain_is_flagged() -> None:
    assert check_acked(
        [sent("0x9", "rejected")], {"0x9": {"status": "success"}}
    ).rejected_included == ["0x9"]

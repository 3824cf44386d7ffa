"""The head checker on synthetic histories: clean runs pass; gaps, duplicates, reordering and
wrong hashes are each caught and counted."""

from __future__ import annotations

from typing import Any

from lab.checkers.heads import check_heads, check_subscriber, totals


def deliver(client: str, *numbers: int, bad_hash: int | None = None) -> list[dict[str, Any]]:
    return [{"ev": "deliver", "client": client, "n": n,
             "hash": "0xbad" if n == bad_hash else f"0x{n:x}"} for n in numbers]


CHAIN = {n: f"0x{n:x}" for n in range(100)}


def test_a_clean_subscriber() -> None:
    r = check_subscriber("a", [(n, f"0x{n:x}") for n in range(5, 11)], until=10, chain=CHAIN)
    assert r.clean and (r.first, r.last, r.delivered) == (5, 10, 6)


def test_each_kind_of_fault_is_counted() -> None:
    events = (deliver("gap", 1, 2, 4, 5) + deliver("dup", 1, 2, 2, 3, 4, 5)
              + deliver("order", 1, 3, 2, 4, 5) + deliver("hash", 1, 2, 3, 4, 5, bad_hash=3)
              + deliver("short", 1, 2, 3))
    reports = check_heads(events, until=5, chain=CHAIN)
    assert reports["gap"].missed == [3] and not reports["gap"].clean
    assert reports["dup"].duplicates == 1 and reports["dup"].missed == []
    assert reports["order"].out_of_order == 1 and reports["order"].missed == []
    assert reports["hash"].wrong_hash == 1
    assert reports["short"].missed == [4, 5]  # stopped before the chain's end
    t = totals(reports)
    assert (t["missed"], t["duplicates"], t["out_of_order"], t["wrong_hash"]) == (3, 1, 1, 1)
    assert t["clean_subscribers"] == 0


def test_a_subscriber_that_saw_nothing_is_reported() -> None:
    reports = check_heads([], until=9, clients=["silent"], start={"silent": 5})
    assert reports["silent"].missed == [5, 6, 7, 8, 9]


def test_notify_source_sees_what_the_wire_brought() -> None:
    events = [{"ev": "notify", "client": "a", "n": n, "hash": None} for n in (1, 2, 2, 3)]
    assert check_heads(events, until=3, source="notify")["a"].duplicates == 1
    assert check_heads(events, until=3) == {}  # nothing delivered, no subscriber named

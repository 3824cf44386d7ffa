"""The follower at its edges: constructor checks, malformed and unlinked fetch replies, the
window's edge, the walk-back's span per step, backfill targets that move, and ``truncate``."""

from __future__ import annotations

import pytest
from test_adapter_follow import Chain

from node.adapters.events import Header
from node.adapters.follow import Advance, Dropped, Fetch, Follower, Rollback


def follow_all(f: Follower, c: Chain, first: int = 0) -> None:
    f.anchor(c.blocks[first])
    for b in c.blocks[first + 1:]:
        assert f.on_header(b) == [Advance(b)]


@pytest.mark.parametrize(("kw", "ok"), [
    ({"window": 1}, False), ({"window": 2}, True),
    ({"max_fetch": 0}, False), ({"max_fetch": 1}, True),
    ({"walk_start": 0}, False), ({"walk_start": 1}, True),
])
def test_the_constructor_checks_its_bounds(kw: dict[str, int], ok: bool) -> None:
    if ok:
        f = Follower(**kw)
        assert (f.window, f.max_fetch) == (kw.get("window", 256), kw.get("max_fetch", 64))
    else:
        with pytest.raises(ValueError, match=r"^window >= 2, max_fetch >= 1 and walk_start >= 1"):
            Follower(**kw)


def test_an_empty_follower_knows_nothing_and_anchors_on_the_first_header() -> None:
    f = Follower()
    assert f.head is None and f.floor == 0 and f.chain() == [] and f.hash_at(0) is None
    h = Header(7, "h7", "h6")
    assert f.on_header(h) == [Advance(h)]
    assert f.head == h and f.floor == 7 and f.hash_at(7) == "h7" and f.hash_at(6) is None


@pytest.mark.parametrize("reply", [
    "unlinked numbers", "wrong parent", "wrong first number", "empty", "unasked",
])
def test_a_malformed_fetch_reply_is_refused_and_the_next_header_retries(reply: str) -> None:
    c = Chain()
    c.extend(5)
    f = Follower()
    f.anchor(c.blocks[1])
    if reply != "unasked":
        assert f.on_header(c.blocks[5]) == [Fetch(2, 5)]
    b = c.blocks
    headers = {
        "unlinked numbers": [b[2], b[4], b[5]],
        "wrong parent": [b[2], Header(3, "3/x", "elsewhere"), b[4]],
        "wrong first number": [b[3], b[4], b[5]],
        "empty": [],
        "unasked": [b[2], b[3]],
    }[reply]
    assert f.on_fetched(headers) == []
    assert f.head == c.blocks[1] and f.awaiting is None
    # nothing half-applied: the next header asks for the same range again
    assert f.on_header(c.blocks[5]) == [Fetch(2, 5)]
    acts = f.on_fetched(c.range(2, 5))
    assert acts == [Advance(h) for h in c.blocks[2:6]] and f.head == c.blocks[5]


def test_a_short_reply_is_taken_and_the_rest_is_asked_for() -> None:
    c = Chain()
    c.extend(6)
    f = Follower()
    f.anchor(c.blocks[1])
    assert f.on_header(c.blocks[6]) == [Fetch(2, 6)]
    assert f.on_fetched(c.range(2, 3)) == [Advance(c.blocks[2]), Advance(c.blocks[3]),
                                           Fetch(4, 6)]
    assert f.on_fetched(c.range(4, 6)) == [Advance(h) for h in c.blocks[4:7]]
    assert f.awaiting is None


@pytest.mark.parametrize("window", [2, 3, 5])
def test_the_window_keeps_exactly_the_last_n_headers(window: int) -> None:
    c = Chain()
    c.extend(window + 3)
    f = Follower(window=window)
    f.anchor(c.blocks[0])
    for i, b in enumerate(c.blocks[1:], 1):
        f.on_header(b)
        assert len(f.chain()) == min(i + 1, window)
    assert f.chain() == c.blocks[-window:] and f.floor == c.blocks[-window].number
    below = c.blocks[-window - 1]
    assert f.on_header(below) == [Dropped(below, "stale")]  # just under the window
    at_floor = c.blocks[-window]
    assert f.on_header(at_floor) == [Dropped(at_floor, "duplicate")]  # the oldest kept


def test_a_fork_at_the_floor_cannot_be_resolved_and_resyncs() -> None:
    c = Chain()
    c.extend(6)
    f = Follower(window=3)
    follow_all(f, c)
    floor = f.floor
    other = Header(floor, f"{floor}/other", "unknown")
    acts = f.on_header(other)  # its parent is below the window
    assert acts == [Rollback(None, tuple(reversed(c.blocks[-3:]))), Advance(other)]
    assert f.chain() == [other]


def drain(f: Follower, c: Chain, acts: list[object]) -> tuple[list[object], list[tuple[int, int]]]:
    """Carry out actions, answering each fetch from ``c``: (every action, the fetched spans)."""
    out: list[object] = []
    spans: list[tuple[int, int]] = []
    while acts:
        a = acts.pop(0)
        out.append(a)
        if isinstance(a, Fetch):
            spans.append((a.first, a.last))
            acts.extend(f.on_fetched(c.range(a.first, a.last)))
    return out, spans


def test_the_walk_back_doubles_its_span_up_to_max_fetch_and_starts_over_after() -> None:
    c = Chain()
    c.extend(22)
    f = Follower(window=64, max_fetch=8, walk_start=2)
    follow_all(f, c)
    c.reorg(18, 19)  # forks after block 4; the new branch runs to 23, one past our head
    out, spans = drain(f, c, list(f.on_header(c.blocks[-1])))
    assert spans == [(21, 22), (17, 20), (9, 16), (1, 8)]  # 2, 4, 8, then 8 (max_fetch)
    rollbacks = [a for a in out if isinstance(a, Rollback)]
    assert len(rollbacks) == 1 and rollbacks[0].fork_point == c.blocks[4]
    assert [h.number for h in rollbacks[0].dropped] == list(range(22, 4, -1))
    assert [a.header.number for a in out if isinstance(a, Advance)] == list(range(5, 24))
    assert f.chain() == c.blocks
    # the next reorg starts at the first span again
    c.reorg(3, 4)
    assert f.on_header(c.blocks[-1]) == [Fetch(22, 23)]


def test_the_walk_back_never_asks_below_the_window() -> None:
    c = Chain()
    c.extend(12)
    f = Follower(window=6, max_fetch=64, walk_start=4)
    follow_all(f, c)  # keeps 7..12
    old = list(c.blocks)
    c.reorg(3, 4)  # forks after 9: 10', 11', 12', 13'
    assert f.on_header(c.blocks[-1]) == [Fetch(9, 12)]
    acts = f.on_fetched(c.range(9, 12))
    assert acts == [Rollback(old[9], (old[12], old[11], old[10])),
                    *(Advance(h) for h in c.blocks[10:14])]
    assert f.floor == 8
    c.reorg(8, 9)  # now forks after 5, below the window: 6''..14''
    assert f.on_header(c.blocks[-1]) == [Fetch(10, 13)]
    assert f.on_fetched(c.range(10, 13)) == [Fetch(8, 9)]  # clamped at the floor, not 2
    before = f.chain()
    acts = f.on_fetched(c.range(8, 9))
    assert acts[0] == Rollback(None, tuple(reversed(before)))
    assert [a.header for a in acts[1:]] == c.blocks[-6:]  # re-anchored on the new chain


def test_a_header_announced_during_a_backfill_moves_its_target_up_only() -> None:
    c = Chain()
    c.extend(14)
    f = Follower(max_fetch=3)
    f.anchor(c.blocks[1])
    assert f.on_header(c.blocks[10]) == [Fetch(2, 4)]
    # a stray lower header restarts the request; the target stays at 10
    assert f.on_header(c.blocks[6]) == [Fetch(2, 4)]
    # a higher one raises it
    assert f.on_header(c.blocks[12]) == [Fetch(2, 4)]
    _, spans = drain(f, c, list(f.on_fetched(c.range(2, 4))))
    assert spans == [(5, 7), (8, 10), (11, 12)] and f.head == c.blocks[12]


def test_a_walk_back_reply_that_no_longer_meets_the_new_head_takes_the_canonical_part() -> None:
    c = Chain()
    c.extend(8)
    f = Follower(walk_start=2)
    follow_all(f, c)
    old = list(c.blocks)
    c.reorg(2, 3)  # forks after 6: 7', 8', 9'
    assert f.on_header(c.blocks[-1]) == [Fetch(7, 8)]
    c.reorg(3, 3)  # the peer moved again before answering: 7'', 8'', 9''
    acts = f.on_fetched(c.range(7, 8))
    assert acts == [Rollback(old[6], (old[8], old[7])), Advance(c.blocks[7]),
                    Advance(c.blocks[8])]
    assert f.head == c.blocks[8] and f.awaiting is None


def test_truncate_forgets_without_a_rollback_and_withdraws_a_backfill() -> None:
    c = Chain()
    c.extend(8)
    f = Follower(max_fetch=2)
    follow_all(f, c)
    f.truncate(5)
    assert f.chain() == c.blocks[:6] and f.head == c.blocks[5]
    assert f.on_header(c.blocks[6]) == [Advance(c.blocks[6])]
    f.truncate(100)  # nothing above: nothing forgotten
    assert f.head == c.blocks[6]
    c.extend(6)
    assert f.on_header(c.blocks[14]) == [Fetch(7, 8)]  # backfilling towards 14
    f.truncate(6)
    assert f.awaiting is None
    # the backfill's target went with it: a header of 9 backfills to 9 only
    assert f.on_header(c.blocks[9]) == [Fetch(7, 8)]
    assert f.on_fetched(c.range(7, 8)) == [Advance(c.blocks[7]), Advance(c.blocks[8]),
                                           Fetch(9, 9)]
    assert f.on_fetched(c.range(9, 9)) == [Advance(c.blocks[9])]
    f.truncate(8)
    assert f.on_fetched(c.range(9, 9)) == []  # nothing was asked for any more
    assert f.head == c.blocks[8]


def test_a_stray_header_withdraws_the_outstanding_request() -> None:
    c = Chain()
    c.extend(5)
    f = Follower()
    f.anchor(c.blocks[1])
    assert f.on_header(c.blocks[5]) == [Fetch(2, 5)]
    assert f.on_header(c.blocks[1]) == [Dropped(c.blocks[1], "duplicate")]
    assert f.awaiting is None
    assert f.on_fetched(c.range(2, 5)) == []  # the answer to a withdrawn request is ignored
    assert f.head == c.blocks[1]


def test_one_missing_header_is_backfilled_not_walked_back() -> None:
    c = Chain()
    c.extend(7)
    f = Follower()
    f.anchor(c.blocks[5])
    assert f.on_header(c.blocks[7]) == [Fetch(6, 7)]


def test_the_default_walk_back_starts_at_4_and_a_bad_reply_starts_it_over() -> None:
    c = Chain()
    c.extend(30)
    f = Follower(max_fetch=64)
    follow_all(f, c)
    c.reorg(12, 13)  # forks after 18; the new branch runs to 31
    assert f.on_header(c.blocks[-1]) == [Fetch(27, 30)]  # 4 (the default walk_start)
    assert f.on_fetched(c.range(27, 30)) == [Fetch(19, 26)]  # then 8
    assert f.on_fetched([c.blocks[19], c.blocks[21]]) == []  # an unlinked reply
    assert f.on_header(c.blocks[-1]) == [Fetch(27, 30)]  # the walk starts over at 4
    out, spans = drain(f, c, [Fetch(27, 30)])
    assert spans == [(27, 30), (19, 26)]
    rollback = next(a for a in out if isinstance(a, Rollback))
    assert rollback.fork_point == c.blocks[18] and f.chain() == c.blocks

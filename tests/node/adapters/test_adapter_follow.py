"""The pure follower: gaps, duplicates, reorgs, deep reorgs, and a property test over random
feeds."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from node.adapters.events import Header
from node.adapters.follow import Advance, Dropped, Fetch, Follower, Rollback


class Chain:
    """A toy canonical chain with forks: hashes name the branch, so reorgs change them."""

    def __init__(self) -> None:
        self.blocks = [Header(0, "g", "")]
        self.forks = 0

    def extend(self, n: int = 1) -> None:
        for _ in range(n):
            p = self.blocks[-1]
            self.blocks.append(Header(p.number + 1, f"{p.number + 1}/{self.forks}", p.hash))

    def reorg(self, depth: int, new_len: int) -> None:
        depth = min(depth, len(self.blocks) - 1)
        del self.blocks[len(self.blocks) - depth :]
        self.forks += 1
        self.extend(new_len)

    def range(self, first: int, last: int) -> list[Header]:
        return [b for b in self.blocks if first <= b.number <= last]


def drive(f: Follower, chain: Chain, header: Header, seen: list[Header]) -> None:
    """What the shell does: carry out actions, answer fetches from the chain, record the result."""
    actions = f.on_header(header)
    while actions:
        a = actions.pop(0)
        if isinstance(a, Fetch):
            actions.extend(f.on_fetched(chain.range(a.first, a.last)))
        elif isinstance(a, Advance):
            if seen:
                assert a.header.number == seen[-1].number + 1
                assert a.header.parent_hash == seen[-1].hash
            seen.append(a.header)
        elif isinstance(a, Rollback):
            assert a.fork_point is not None
            while seen and seen[-1].number > a.fork_point.number:
                seen.pop()
            assert seen[-1] == a.fork_point


def follow(f: Follower, chain: Chain) -> list[Header]:
    """Deliver every header of ``chain`` to ``f``, in order from genesis; returns what it
    emitted (as ``drive`` records it)."""
    seen: list[Header] = []
    for b in chain.blocks:
        drive(f, chain, b, seen)
    return seen


def test_extends_and_drops_duplicates() -> None:
    c = Chain()
    c.extend(3)
    f = Follower()
    assert f.anchor(c.blocks[1]) == [Advance(c.blocks[1])]
    assert f.on_header(c.blocks[2]) == [Advance(c.blocks[2])]
    assert f.on_header(c.blocks[2]) == [Dropped(c.blocks[2], "duplicate")]
    assert f.on_header(c.blocks[3]) == [Advance(c.blocks[3])]


def test_gap_is_backfilled_in_chunks_in_order() -> None:
    c = Chain()
    c.extend(10)
    f = Follower(max_fetch=3)
    f.anchor(c.blocks[1])
    acts = f.on_header(c.blocks[10])
    assert acts == [Fetch(2, 4)]
    acts = f.on_fetched(c.range(2, 4))
    assert [a.header.number for a in acts if isinstance(a, Advance)] == [2, 3, 4]
    assert acts[-1] == Fetch(5, 7)
    acts = f.on_fetched(c.range(5, 7))
    assert acts[-1] == Fetch(8, 10)
    acts = f.on_fetched(c.range(8, 10))
    assert [a.header.number for a in acts if isinstance(a, Advance)] == [8, 9, 10]
    assert f.head == c.blocks[10]


def test_reorg_with_known_parent_rolls_back_directly() -> None:
    c = Chain()
    c.extend(5)
    f = Follower()
    f.anchor(c.blocks[0])
    seen = [c.blocks[0]]
    for b in c.blocks[1:]:
        drive(f, c, b, seen)
    c.reorg(2, 3)  # drop 4,5; add 4',5',6'
    acts = f.on_header(c.blocks[4])
    assert isinstance(acts[0], Rollback) and acts[0].fork_point == c.blocks[3]
    assert [h.number for h in acts[0].dropped] == [5, 4]
    assert acts[1] == Advance(c.blocks[4])


def test_reorg_seen_only_at_new_head_walks_back_to_fork_point() -> None:
    c = Chain()
    c.extend(20)
    f = Follower(walk_start=2)
    seen = follow(f, c)
    c.reorg(7, 9)
    drive(f, c, c.blocks[-1], seen)
    assert seen == c.blocks
    assert f.head == c.blocks[-1]


def test_reorg_deeper_than_window_resyncs() -> None:
    c = Chain()
    c.extend(30)
    f = Follower(window=5)
    f.anchor(c.blocks[0])
    seen = [c.blocks[0]]
    for b in c.blocks[1:]:
        drive(f, c, b, seen)
    c.reorg(10, 11)
    acts: list[object] = list(f.on_header(c.blocks[-1]))
    out: list[object] = []
    while acts:
        a = acts.pop(0)
        out.append(a)
        if isinstance(a, Fetch):
            acts.extend(f.on_fetched(c.range(a.first, a.last)))
    rollbacks = [a for a in out if isinstance(a, Rollback)]
    assert rollbacks and rollbacks[-1].fork_point is None
    assert f.head == c.blocks[-1]


def test_fetch_answered_with_nothing_gives_up_quietly() -> None:
    c = Chain()
    c.extend(5)
    f = Follower()
    f.anchor(c.blocks[1])
    assert f.on_header(c.blocks[5]) == [Fetch(2, 5)]
    assert f.on_fetched([]) == []
    assert f.head == c.blocks[1]
    assert f.awaiting is None


def test_stale_header_below_window_is_dropped() -> None:
    c = Chain()
    c.extend(10)
    f = Follower(window=3)
    assert follow(f, c) == c.blocks
    other = Header(2, "other", "x")
    assert f.on_header(other) == [Dropped(other, "stale")]


@given(st.integers(0, 2**32 - 1))
def test_random_feeds_converge_without_gaps_or_duplicates(seed: int) -> None:
    """Random extends and reorgs; headers delivered late, twice, or not at all; heads polled at
    times.
    Whatever happens, the emitted chain is always parent-linked and ends equal to the canonical
    one."""
    rng = random.Random(seed)
    c = Chain()
    f = Follower(window=64, max_fetch=rng.choice([1, 3, 16]), walk_start=rng.choice([1, 4]))
    seen: list[Header] = []
    drive(f, c, c.blocks[0], seen)
    for _ in range(60):
        r = rng.random()
        if r < 0.6:
            c.extend(rng.randint(1, 3))
        elif r < 0.75 and len(c.blocks) > 3:
            c.reorg(rng.randint(1, 8), rng.randint(1, 9))
        # deliver a random recent header (possibly old, duplicate or from a dead branch)
        pick = rng.choice(c.blocks[-5:])
        if rng.random() < 0.8:
            drive(f, c, pick, seen)
        if rng.random() < 0.3:
            drive(f, c, c.blocks[-1], seen)
    drive(f, c, c.blocks[-1], seen)
    assert seen[-1] == c.blocks[-1]
    assert seen == c.blocks[seen[0].number :]

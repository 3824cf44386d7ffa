"""Gap-free head following with backfill, duplicate dropping and reorg handling, free of I/O.

The :class:`Follower` is fed headers (from a subscription or a poll of "latest") and canonical
header ranges it asked for; it answers with *actions* the shell carries out in order:

* :class:`Advance` - this header joins the chain (always ``head.number + 1``, linked by parent
  hash);
* :class:`Rollback` - headers above ``fork_point`` left the chain (newest first);
* :class:`Fetch` - fetch canonical headers ``first..last`` by number and pass them, ascending, to
  :meth:`Follower.on_fetched` before feeding anything else;
* :class:`Dropped` - a duplicate (already on our chain) or a header older than the window.

Invariants (checked by the property tests):

1. Between rollbacks, advanced numbers are consecutive and each header's ``parent_hash`` is the
   previous header's ``hash``: no gaps, no duplicates.
2. A header whose parent is not on our chain is never advanced: the follower first walks back
   (fetching earlier canonical headers, doubling the span) to the highest common ancestor, the fork
   point, and rolls back to it.
3. A reorg below the window (``window`` headers are remembered) rolls back everything with
   ``fork_point=None`` and re-anchors on the new chain.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass

from node.adapters.events import Header


@dataclass(frozen=True, slots=True)
class Advance:
    header: Header


@dataclass(frozen=True, slots=True)
class Rollback:
    fork_point: Header | None
    dropped: tuple[Header, ...]


@dataclass(frozen=True, slots=True)
class Fetch:
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class Dropped:
    header: Header
    reason: str


Action = Advance | Rollback | Fetch | Dropped


class Follower:
    """Follows one chain. ``window``: headers kept for reorg detection; ``max_fetch``: range
    size."""

    def __init__(self, *, window: int = 256, max_fetch: int = 64, walk_start: int = 4) -> None:
        if window < 2 or max_fetch < 1 or walk_start < 1:
            raise ValueError("window >= 2, max_fetch >= 1 and walk_start >= 1 are required")
        self.window = window
        self.max_fetch = max_fetch
        self._walk_start = walk_start
        self._chain: OrderedDict[int, Header] = OrderedDict()
        self._pending: list[Header] = []
        self._walk = walk_start
        #: Highest number announced that we are backfilling towards.
        self._target: int | None = None
        self.awaiting: Fetch | None = None

    # ------------------------------------------------------------------ queries

    @property
    def head(self) -> Header | None:
        return next(reversed(self._chain.values())) if self._chain else None

    @property
    def floor(self) -> int:
        """Lowest remembered number; reorgs below it cannot be resolved."""
        return next(iter(self._chain)) if self._chain else 0

    def hash_at(self, number: int) -> str | None:
        h = self._chain.get(number)
        return None if h is None else h.hash

    def chain(self) -> list[Header]:
        return list(self._chain.values())

    # ------------------------------------------------------------------ inputs

    def anchor(self, header: Header) -> list[Action]:
        """Start (or restart) following at ``header``."""
        self._chain.clear()
        self._pending = []
        self._target = None
        self.awaiting = None
        self._chain[header.number] = header
        return [Advance(header)]

    def on_header(self, header: Header) -> list[Action]:
        """A header announced by the peer (any order, possibly repeated or on another branch)."""
        if self.head is None:
            return self.anchor(header)
        if self.awaiting is not None:
            # the shell must answer a Fetch first; a stray header restarts the resolution
            self.awaiting = None
            self._pending = []
        if self.hash_at(header.number) == header.hash:
            return [Dropped(header, "duplicate")]
        if header.number < self.floor:
            return [Dropped(header, "stale")]
        return self._extend([header])

    def on_fetched(self, headers: list[Header]) -> list[Action]:
        """Canonical headers for the outstanding :class:`Fetch`, ascending (fewer if the peer has
        fewer)."""
        req, self.awaiting = self.awaiting, None
        pending, self._pending = self._pending, []
        if req is None or not headers or not _linked(headers) or headers[0].number != req.first:
            # nothing usable (the peer lost them, or answered inconsistently): the next header
            # retries
            self._walk = self._walk_start
            self._target = None
            return []
        if (
            pending
            and headers[-1].number + 1 == pending[0].number
            and headers[-1].hash == pending[0].parent_hash
        ):
            actions = self._extend(headers + pending)
        else:
            # a gap chunk, or the peer's chain moved under a walk-back: take what is canonical now
            actions = self._extend(headers)
        if self.awaiting is None:
            actions += self._continue()
        return actions

    def _continue(self) -> list[Action]:
        head = self.head
        if self._target is not None and head is not None and head.number < self._target:
            return [self._fetch(head.number + 1, min(self._target, head.number + self.max_fetch))]
        self._target = None
        return []

    def truncate(self, number: int) -> None:
        """Forget headers above ``number`` without a rollback event (the shell failed to apply
        them)."""
        for n in [n for n in self._chain if n > number]:
            del self._chain[n]
        self._pending = []
        self._target = None
        self.awaiting = None

    # ------------------------------------------------------------------ core

    def _extend(self, seg: list[Header]) -> list[Action]:
        head = self.head
        assert head is not None
        i = 0
        while i < len(seg) and self.hash_at(seg[i].number) == seg[i].hash:
            i += 1
        seg = seg[i:]
        if not seg:
            return []
        first = seg[0]
        if first.number > head.number + 1:
            # a gap: backfill by number from our head up to seg's end, in chunks (seg is only a
            # hint)
            self._target = max(self._target or 0, seg[-1].number)
            return self._continue()
        parent = first.number - 1
        if parent < self.floor:
            return self._resync(seg)
        if self.hash_at(parent) == first.parent_hash:
            actions: list[Action] = []
            if head.number > parent:
                dropped = tuple(self._chain[n] for n in range(head.number, parent, -1))
                for h in dropped:
                    del self._chain[h.number]
                actions.append(Rollback(self._chain[parent], dropped))
            for h in seg:
                self._chain[h.number] = h
                actions.append(Advance(h))
            while len(self._chain) > self.window:
                self._chain.popitem(last=False)
            self._walk = self._walk_start
            return actions
        # the parent is not ours: walk back to the fork point, doubling the span each time
        self._pending = seg
        lo = max(self.floor, parent - self._walk + 1)
        self._walk = min(self._walk * 2, self.max_fetch)
        return [self._fetch(lo, parent)]

    def _resync(self, seg: list[Header]) -> list[Action]:
        dropped = tuple(reversed(self._chain.values()))
        self._chain.clear()
        self._pending = []
        self._walk = self._walk_start
        actions: list[Action] = [Rollback(None, dropped)]
        for h in seg[-self.window :]:
            self._chain[h.number] = h
            actions.append(Advance(h))
        return actions

    def _fetch(self, first: int, last: int) -> Fetch:
        f = Fetch(first, last)
        self.awaiting = f
        return f


def _linked(headers: list[Header]) -> bool:
    return all(
        b.number == a.number + 1 and b.parent_hash == a.hash for a, b in itertools.pairwise(headers)
    )

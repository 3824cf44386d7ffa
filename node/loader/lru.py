"""An LRU of prepared programs bounded by entry count and by bytes (``Program.footprint``)."""

from __future__ import annotations

from collections import OrderedDict

from node.vm.program import Program


class ProgramLRU:
    """Not thread-safe on its own: the :class:`~node.loader.loader.Loader` holds a lock."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("LRU bounds must be positive")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[bytes, Program] = OrderedDict()
        self.bytes = 0
        self.evictions = 0

    def get(self, code_hash: bytes) -> Program | None:
        p = self._items.get(code_hash)
        if p is not None:
            self._items.move_to_end(code_hash)
        return p

    def put(self, program: Program) -> list[bytes]:
        """Insert (or refresh) ``program``; returns the code hashes evicted to make room. A
        program larger than ``max_bytes`` on its own is still kept (alone) until displaced."""
        h = program.code_hash
        if h in self._items:
            self._items.move_to_end(h)
            return []
        self._items[h] = program
        self.bytes += program.footprint
        evicted: list[bytes] = []
        while len(self._items) > 1 and (
            len(self._items) > self.max_entries or self.bytes > self.max_bytes
        ):
            old_h, old = self._items.popitem(last=False)
            self.bytes -= old.footprint
            self.evictions += 1
            evicted.append(old_h)
        return evicted

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, code_hash: bytes) -> bool:
        return code_hash in self._items

"""Per-transaction state access: declared-set enforcement, read recording, write buffering.

Every :class:`~node.core.execution.TxExecutor` runs a transaction through a :class:`TxState`, so
all executors (Python reference, RISC-V VM) enforce the same rules and record the same read set.
"""

from __future__ import annotations

from collections.abc import Mapping

from node.core.execution import StateReader


class UndeclaredAccess(Exception):
    """Raised inside an execution when a key outside the declared sets is touched."""

    def __init__(self, op: str, key: bytes) -> None:
        super().__init__(f"undeclared {op} of key 0x{key.hex()}")
        self.op = op
        self.key = key


class TxState:
    """A transaction's view of state: its own writes over ``base``.

    ``reads`` records each key read from ``base`` once, in first-read order (a key written first by
    the transaction itself is not a base read). ``writes`` maps key -> value or ``None`` (delete).
    """

    __slots__ = ("_base", "_may_read", "_may_write", "reads", "writes")

    def __init__(
        self,
        base: StateReader,
        may_read: frozenset[bytes] | None,
        may_write: frozenset[bytes] | None,
    ) -> None:
        """``may_read`` / ``may_write`` of ``None`` disable enforcement (system calls only)."""
        self._base = base
        self._may_read = may_read
        self._may_write = may_write
        self.reads: dict[bytes, None] = {}
        self.writes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        if self._may_read is not None and key not in self._may_read:
            raise UndeclaredAccess("read", key)
        self.reads[key] = None
        return self._base.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        if self._may_write is not None and key not in self._may_write:
            raise UndeclaredAccess("write", key)
        self.writes[key] = value

    def delete(self, key: bytes) -> None:
        if self._may_write is not None and key not in self._may_write:
            raise UndeclaredAccess("write", key)
        self.writes[key] = None


class Overlay:
    """A block-level write buffer over a base reader (used by schedulers and read-only calls)."""

    __slots__ = ("base", "writes")

    def __init__(self, base: StateReader) -> None:
        self.base = base
        self.writes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        w = self.writes
        if key in w:
            return w[key]
        return self.base.get(key)

    def apply(self, writes: Mapping[bytes, bytes | None]) -> None:
        self.writes.update(writes)

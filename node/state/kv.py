"""The key-value store interface and the in-memory reference implementation."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Mapping
from typing import Protocol


class KV(Protocol):
    """An ordered byte-key store with atomic batch writes.

    ``write`` applies every put (value) and delete (``None``) atomically: after a crash either all
    of them are visible or none. Reads may run concurrently with writes from another thread.
    """

    def get(self, key: bytes) -> bytes | None: ...

    def get_many(self, keys: list[bytes]) -> list[bytes | None]: ...

    def write(self, ops: Mapping[bytes, bytes | None], *, sync: bool = False) -> None: ...

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...

    def flush(self) -> None:
        """Make every write so far independent of the write-ahead log (RocksDB: memtables to
        table files)."""
        ...

    def close(self) -> None: ...


class MemoryKV:
    """The reference store: a dict plus a sorted key index. Not durable."""

    def __init__(self) -> None:
        self._d: dict[bytes, bytes] = {}
        self._sorted: list[bytes] = []
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        return self._d.get(key)

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        d = self._d
        return [d.get(k) for k in keys]

    def write(self, ops: Mapping[bytes, bytes | None], *, sync: bool = False) -> None:
        with self._lock:
            for k, v in ops.items():
                if v is None:
                    if self._d.pop(k, None) is not None:
                        i = bisect.bisect_left(self._sorted, k)
                        del self._sorted[i]
                else:
                    if k not in self._d:
                        bisect.insort(self._sorted, k)
                    self._d[k] = v

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        with self._lock:
            i = bisect.bisect_left(self._sorted, prefix)
            keys = []
            while i < len(self._sorted) and self._sorted[i].startswith(prefix):
                keys.append(self._sorted[i])
                i += 1
            items = [(k, self._d[k]) for k in keys]
        yield from items

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

"""The persistent compile cache's storage protocol and two small implementations.

The node's RocksDB state layer implements :class:`CodeCacheStore` (e.g. a column family or a key
prefix outside the consensus keyspace); the loader stores one entry per code hash under
:func:`cache_key`. Values are :meth:`node.vm.program.Program.encode` bytes, which carry their own
checksum, ABI version and code hash, so a stale or corrupt entry is detected and re-verified,
never trusted.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Protocol

from node.vm import abi

PREFIX = b"vm/program/"


def cache_key(code_hash: bytes) -> bytes:
    """Store key of the prepared program for ``code_hash`` (versioned by the ABI)."""
    return PREFIX + b"v%d/" % abi.ABI_VERSION + code_hash


class CodeCacheStore(Protocol):
    """Bytes by key. Must be safe to call from several threads; ``put`` may be lossy (a failed or
    dropped put only costs a re-verification later), and ``get`` returns ``None`` when absent."""

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...


class MemoryCodeCache:
    """A dict-backed store (tests, and a node without persistence)."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.gets = 0
        self.puts = 0

    def get(self, key: bytes) -> bytes | None:
        self.gets += 1
        return self.data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.puts += 1
        self.data[key] = value


class DirectoryCodeCache:
    """One file per key under ``root`` (benchmarks and tools); writes are atomic renames."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: bytes) -> Path:
        return self.root / key.hex()

    def get(self, key: bytes) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: bytes, value: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root)
        with os.fdopen(fd, "wb") as f:
            f.write(value)
        os.replace(tmp, self._path(key))

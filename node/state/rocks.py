"""RocksDB key-value store (rocksdict). The only module that imports rocksdict."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import rocksdict

from node.core.errors import StorageError


class RocksKV:
    """A RocksDB database in raw (bytes) mode. Batches go through one ``WriteBatch`` (atomic).

    With ``sync=False`` a write is in the WAL (in the OS page cache) before ``write`` returns, so it
    survives a kill of the process but not of the OS; ``sync=True`` also fsyncs.
    """

    def __init__(self, path: str | Path) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        opts = rocksdict.Options(raw_mode=True)
        opts.create_if_missing(True)
        try:
            self._db = rocksdict.Rdict(str(path), options=opts)
        except Exception as e:  # rocksdict raises plain Exception with RocksDB's message
            raise StorageError(f"cannot open RocksDB at {path}: {e}") from None
        self._wo = rocksdict.WriteOptions()
        self._wo_sync = rocksdict.WriteOptions()
        self._wo_sync.sync = True

    def get(self, key: bytes) -> bytes | None:
        v: bytes | None = self._db.get(key)
        return v

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        if not keys:
            return []
        out = self._db.get(list[Any](keys))
        return cast(list[bytes | None], out)

    def write(self, ops: Mapping[bytes, bytes | None], *, sync: bool = False) -> None:
        wb = rocksdict.WriteBatch(raw_mode=True)
        for k, v in ops.items():
            if v is None:
                wb.delete(k)
            else:
                wb.put(k, v)
        try:
            self._db.write(wb, self._wo_sync if sync else self._wo)
        except Exception as e:
            raise StorageError(f"RocksDB write failed: {e}") from None

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        it = self._db.iter()
        it.seek(prefix)
        while it.valid():
            k = it.key()
            if not k.startswith(prefix):
                break
            yield k, it.value()
            it.next()

    def close(self) -> None:
        self._db.close()

"""RocksDB key-value store (rocksdict). The only module that imports rocksdict.

Opened for consistency-critical data, as RocksDB documents it: ``paranoid_checks`` on, the WAL
replayed in ``kAbsoluteConsistency`` mode (any unreadable WAL record, a torn tail included, fails
the open instead of being dropped), and every read verifies block checksums. A failed open or
read raises :class:`~node.core.errors.StorageCorruption` (damaged data) or
:class:`~node.core.errors.StorageError` (anything else) with RocksDB's own words, never a bare
``Exception``. :func:`node.state.integrity.open_checked` decides what the node does about it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import rocksdict

from node.core.errors import StorageCorruption, StorageError

Recovery = Literal["absolute", "point_in_time"]
_MODES: dict[Recovery, Callable[[], Any]] = {
    "absolute": rocksdict.DBRecoveryMode.absolute_consistency,
    "point_in_time": rocksdict.DBRecoveryMode.point_in_time,
}
# RocksDB's LOG line for a WAL record it cannot replay:
#   "<dir>/000004.log: dropping 319 bytes; Corruption: truncated record body"
_DROPPING = re.compile(r"(\S+\.log): dropping (\d+) bytes; (.+)$")
# The checksum's "stored(context removed) = 1, computed = 2, type = 4 " carries no meaning for
# an operator; the file and offset after it do.
_NOISE = re.compile(r": stored\(context removed\) = \d+, computed = \d+, type = \d+\s*")
# Errors reach clients: name the damaged file, not where the operator keeps it.
_DIR = re.compile(r"/\S*/(?=[^/\s]+)")


def storage_error(e: BaseException, doing: str, lead: str = "") -> StorageError:
    """RocksDB's exception as the node's error: corruption or other, naming what failed
    (``lead`` replaces the usual "storage corruption/failure while <doing>")."""
    msg = _DIR.sub("", " ".join(_NOISE.sub(" ", str(e)).split()))
    if "Corruption" in msg:
        return StorageCorruption(f"{lead or 'storage corruption while ' + doing}: {msg}")
    return StorageError(f"{lead or 'storage failure while ' + doing}: {msg}")


@dataclass(frozen=True, slots=True)
class WalDrop:
    """What RocksDB's LOG says it could not replay: the WAL file, the bytes and the reason."""

    file: str
    bytes: int
    reason: str


def wal_drops(path: str | Path) -> list[WalDrop]:
    """The WAL records the last open of ``path`` could not replay, from RocksDB's ``LOG``."""
    log = Path(path) / "LOG"
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        m = _DROPPING.search(line)
        if m:
            out.append(WalDrop(m.group(1), int(m.group(2)), m.group(3).strip()))
    return out


class RocksKV:
    """A RocksDB database in raw (bytes) mode. Batches go through one ``WriteBatch`` (atomic).

    With ``sync=False`` a write is in the WAL (in the OS page cache) before ``write`` returns, so it
    survives a kill of the process but not of the OS; ``sync=True`` also fsyncs the WAL.

    ``recovery`` is how the WAL is replayed at open: ``absolute`` (the default) fails on any
    unreadable record; ``point_in_time`` replays up to the first one and drops the rest (the
    operator's explicit choice after damage). ``read_only`` opens without changing any file, so
    what ``point_in_time`` *would* drop can be inspected first. ``on_error(kind)`` is called
    with ``"corruption"`` or ``"io"`` for every failed read or write (metrics).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        recovery: Recovery = "absolute",
        read_only: bool = False,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.on_error = on_error
        if not read_only:
            self.path.mkdir(parents=True, exist_ok=True)
        elif not (self.path / "CURRENT").is_file():
            # RocksDB would create the directory before failing: "without changing any file"
            raise StorageError(f"cannot open RocksDB at {path}: no store there (no CURRENT file)")
        opts = rocksdict.Options(raw_mode=True)
        opts.create_if_missing(not read_only)
        opts.set_paranoid_checks(True)
        opts.set_wal_recovery_mode(_MODES[recovery]())
        at = rocksdict.AccessType
        access = at.read_only() if read_only else at.read_write()
        try:
            self._db = rocksdict.Rdict(str(path), options=opts, access_type=access)
        except Exception as e:  # rocksdict raises plain Exception with RocksDB's message
            raise storage_error(e, "opening", f"cannot open RocksDB at {path}") from None
        self._ro = rocksdict.ReadOptions()
        self._ro.set_verify_checksums(True)
        self._db.set_read_options(self._ro)
        self._wo = rocksdict.WriteOptions()
        self._wo_sync = rocksdict.WriteOptions()
        self._wo_sync.sync = True

    def _fail(self, e: Exception, doing: str) -> StorageError:
        err = storage_error(e, doing)
        if self.on_error is not None:
            self.on_error("corruption" if isinstance(err, StorageCorruption) else "io")
        return err

    def get(self, key: bytes) -> bytes | None:
        try:
            v: bytes | None = self._db.get(key)
        except Exception as e:
            raise self._fail(e, "reading") from None
        return v

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            out = self._db.get(list[Any](keys))
        except Exception as e:
            raise self._fail(e, "reading") from None
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
            raise self._fail(e, "writing") from None

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        # An iterator keeps the database open: never let one outlive a failure (a traceback
        # holding it would keep RocksDB's lock after close()).
        it: Any = self._db.iter(self._ro)
        err: StorageError | None = None
        try:
            it.seek(prefix)
            while it.valid():
                k = it.key()
                if not k.startswith(prefix):
                    break
                yield k, it.value()
                it.next()
        except Exception as e:
            err = self._fail(e, "reading")
        finally:
            it = None
        if err is not None:
            raise err

    def verify(self) -> tuple[int, float]:
        """Read every stored block, verifying its checksum (without filling the block cache);
        returns (keys, seconds). Raises StorageCorruption naming the first damaged file."""
        ro = rocksdict.ReadOptions()
        ro.set_verify_checksums(True)
        ro.fill_cache(False)  # type: ignore[call-arg]  # (the stub omits the argument)
        t0 = time.perf_counter()
        n = 0
        it: Any = self._db.iter(ro)
        err: StorageError | None = None
        try:
            it.seek_to_first()
            while it.valid():
                n += 1
                it.next()
            it.status()
        except Exception as e:
            err = self._fail(e, "verifying every stored block")
        finally:
            it = None  # (see iter_prefix)
        if err is not None:
            raise err
        return n, time.perf_counter() - t0

    def flush(self) -> None:
        """Write the memtables to table files and wait: what the WAL held is then in SSTs."""
        try:
            self._db.flush(True)
        except Exception as e:
            raise self._fail(e, "flushing") from None

    def close(self) -> None:
        self._db.close()

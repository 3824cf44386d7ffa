"""The acknowledgement journal: a witness, kept outside RocksDB, of what the node told the world.

RocksDB's WAL is the node's log; if it is damaged, RocksDB can only say how many bytes it could
not replay. This small append-only file says what those bytes *meant*: every acknowledged
transaction (its mempool sequence number and hash) and every committed block (number, hash and
transaction hashes), appended right after the RocksDB write that made it durable and before the
acknowledgement or the announcement. Comparing it with what RocksDB recovered gives the exact
account of what a damaged WAL dropped (:mod:`node.state.integrity`).

Format (big-endian): the magic ``DUBHEJ1\\n``, then records ``u32 length, u32 crc32(type +
payload), u8 type, payload``:

- ``CHECKPOINT`` (1): head number u64 (``2**64 - 1``: no block yet), head hash (32 bytes), next
  acknowledgement sequence number u64. Always the first record: everything at or before it was
  in RocksDB's table files (not only in its WAL) when the journal was started.
- ``ACK`` (2): first sequence number u64, then one 32-byte transaction hash per consecutive
  sequence number (one mempool write).
- ``BLOCK`` (3): number u64, block hash (32 bytes), then the 32-byte hashes of its transactions.

A record whose length runs past the end of the file is a torn append (a crash while writing it:
never acknowledged) and is ignored; a complete record with a bad checksum is damage.

The journal is restarted from a checkpoint at every clean start and when it outgrows
``max_bytes`` (after RocksDB flushed its memtables, so the records it drops are no longer needed
to account for a WAL loss): it covers exactly what RocksDB holds only in its WAL.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = b"DUBHEJ1\n"
NO_HEAD = 2**64 - 1
CHECKPOINT, ACK, BLOCK = 1, 2, 3
_HDR = struct.Struct(">IIB")
_U64 = struct.Struct(">Q")
_CKPT = struct.Struct(">Q32sQ")
_BLOCK = struct.Struct(">Q32s")
JOURNAL_NAME = "dubhe-ack-journal"
DEFAULT_MAX_BYTES = 64 << 20


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Watermarks: the head block (None before genesis) and the next acknowledgement seq."""

    head: int | None
    head_hash: bytes
    next_seq: int


@dataclass(frozen=True, slots=True)
class JournalBlock:
    number: int
    hash: bytes
    txs: tuple[bytes, ...]


@dataclass
class JournalContents:
    """What a journal file holds: its checkpoint, then acknowledgements and blocks in order.
    ``damage`` describes an unreadable record (None when the file reads cleanly, a torn last
    append included)."""

    checkpoint: Checkpoint | None = None
    acks: list[tuple[int, bytes]] = field(default_factory=list)
    blocks: list[JournalBlock] = field(default_factory=list)
    damage: str | None = None
    torn_bytes: int = 0

    @property
    def next_seq(self) -> int:
        """The sequence number after the last acknowledgement recorded."""
        last = self.acks[-1][0] + 1 if self.acks else 0
        return max(last, self.checkpoint.next_seq if self.checkpoint else 0)

    @property
    def head(self) -> int | None:
        """The last block recorded (or the checkpoint's head)."""
        if self.blocks:
            return self.blocks[-1].number
        return self.checkpoint.head if self.checkpoint else None


def _record(kind: int, payload: bytes) -> bytes:
    body = bytes([kind]) + payload
    return _HDR.pack(len(payload), zlib.crc32(body), kind) + payload


@dataclass(frozen=True, slots=True)
class Record:
    """One encoded record and the watermark it advances (a block's number and hash, or the
    sequence number after an acknowledgement's last transaction)."""

    data: bytes
    head: int | None = None
    head_hash: bytes = b""
    next_seq: int | None = None


def checkpoint_record(c: Checkpoint) -> bytes:
    head = NO_HEAD if c.head is None else c.head
    return _record(CHECKPOINT, _CKPT.pack(head, c.head_hash, c.next_seq))


def ack_record(first_seq: int, tx_hashes: list[bytes]) -> Record:
    data = _record(ACK, _U64.pack(first_seq) + b"".join(tx_hashes))
    return Record(data, next_seq=first_seq + len(tx_hashes))


def block_record(number: int, block_hash: bytes, tx_hashes: Iterable[bytes]) -> Record:
    data = _record(BLOCK, _BLOCK.pack(number, block_hash) + b"".join(tx_hashes))
    return Record(data, head=number, head_hash=block_hash)


def read(path: str | Path) -> JournalContents | None:
    """Parse a journal file; None when there is none."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    out = JournalContents()
    if not raw.startswith(MAGIC):
        if len(raw) < len(MAGIC) and MAGIC.startswith(raw):
            out.torn_bytes = len(raw)  # torn while being created: nothing in it yet
        else:
            out.damage = "it does not start with the journal's magic bytes"
        return out
    pos = len(MAGIC)
    while pos < len(raw):
        if pos + _HDR.size > len(raw):
            out.torn_bytes = len(raw) - pos
            break
        length, crc, kind = _HDR.unpack_from(raw, pos)
        end = pos + _HDR.size + length
        if end > len(raw):
            out.torn_bytes = len(raw) - pos
            break
        payload = raw[pos + _HDR.size : end]
        if zlib.crc32(bytes([kind]) + payload) != crc or not _parse(out, kind, payload):
            out.damage = (f"the record at byte {pos:,} is damaged; {len(raw) - pos:,} bytes "
                          "from there on are unreadable")
            break
        pos = end
    return out


def _parse(out: JournalContents, kind: int, p: bytes) -> bool:
    if kind == CHECKPOINT and len(p) == _CKPT.size and out.checkpoint is None:
        head, h, nxt = _CKPT.unpack(p)
        out.checkpoint = Checkpoint(None if head == NO_HEAD else head, h, nxt)
        return True
    if out.checkpoint is None:
        return False  # the checkpoint must come first
    if kind == ACK and len(p) >= 8 and (len(p) - 8) % 32 == 0:
        (first,) = _U64.unpack_from(p)
        out.acks.extend((first + i, p[8 + 32 * i : 40 + 32 * i]) for i in range((len(p) - 8) // 32))
        return True
    if kind == BLOCK and len(p) >= _BLOCK.size and (len(p) - _BLOCK.size) % 32 == 0:
        number, h = _BLOCK.unpack_from(p)
        txs = tuple(p[i : i + 32] for i in range(_BLOCK.size, len(p), 32))
        out.blocks.append(JournalBlock(number, h, txs))
        return True
    return False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """The open journal of a data directory. ``append`` is thread-safe; with ``sync=True`` the
    records are on disk (fdatasync) when it returns."""

    def __init__(self, path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._fd = -1
        self._size = 0
        self._mark = Checkpoint(None, bytes(32), 0)  # watermarks of what was appended

    @property
    def size(self) -> int:
        return self._size

    def start(self, checkpoint: Checkpoint, tail: bytes = b"") -> None:
        """Replace the file (atomically: write, fsync, rename, fsync the directory) with one that
        holds ``checkpoint`` then ``tail`` (records), and append to it from now on."""
        tmp = self.path.with_name(self.path.name + ".new")
        body = MAGIC + checkpoint_record(checkpoint) + tail
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._size = len(body)
        if not tail:
            self._mark = checkpoint

    def append(self, records: list[Record], *, sync: bool) -> None:
        """Append ``records`` in one write (and fdatasync with ``sync``)."""
        data = b"".join(r.data for r in records)
        with self._lock:
            if self._fd < 0:
                raise OSError("the journal is closed")
            _write_all(self._fd, data)
            if sync:
                os.fdatasync(self._fd)
            self._size += len(data)
            m = self._mark
            for r in records:
                if r.head is not None:
                    m = Checkpoint(r.head, r.head_hash, m.next_seq)
                if r.next_seq is not None and r.next_seq > m.next_seq:
                    m = Checkpoint(m.head, m.head_hash, r.next_seq)
            self._mark = m

    def rotation_point(self) -> tuple[int, Checkpoint]:
        """(size, watermarks) now: call, flush RocksDB's memtables, then :meth:`rotate` with it."""
        with self._lock:
            return self._size, self._mark

    def rotate(self, offset: int, checkpoint: Checkpoint) -> None:
        """Restart the journal at ``checkpoint`` (the watermarks at ``offset``), keeping the
        records appended after ``offset``: call it once RocksDB has flushed everything written
        before :meth:`rotation_point`."""
        with self._lock:
            with open(self.path, "rb") as f:
                f.seek(offset)
                tail = f.read()
            mark = self._mark
            self.start(checkpoint, tail)
            self._mark = mark

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

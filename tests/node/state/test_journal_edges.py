"""The acknowledgement journal's format at its edges: a file torn at every possible byte reads as
"torn" with the exact torn length (never as damage), what each kind of damage says, the rule that
the checkpoint comes first, acknowledgement payload sizes, the watermarks ``append`` keeps, and a
closed journal. Byte layouts are built here from the format in the module docstring, so the
parser is checked against the spec, not against itself."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from node.state import journal as jr
from node.state.journal import (
    ACK,
    BLOCK,
    CHECKPOINT,
    MAGIC,
    NO_HEAD,
    Checkpoint,
    Journal,
    ack_record,
    block_record,
)

H = b"\x11" * 32


def rec(kind: int, payload: bytes) -> bytes:
    """A record as the docstring specifies it: u32 length, u32 crc32(type + payload), u8 type."""
    return struct.pack(">IIB", len(payload), zlib.crc32(bytes([kind]) + payload), kind) + payload


def ckpt(head: int | None = 3, next_seq: int = 7) -> bytes:
    return rec(CHECKPOINT, struct.pack(">Q32sQ", NO_HEAD if head is None else head, H, next_seq))


def read(tmp_path: Path, data: bytes) -> jr.JournalContents:
    p = tmp_path / "j"
    p.write_bytes(data)
    got = jr.read(p)
    assert got is not None
    return got


def test_the_writer_produces_the_documented_bytes(tmp_path: Path) -> None:
    p = tmp_path / "j"
    j = Journal(p)
    j.start(Checkpoint(3, H, 7))
    j.append([ack_record(7, [b"\x01" * 32, b"\x02" * 32]), block_record(4, H, [b"\x01" * 32])],
             sync=False)
    j.close()
    assert p.read_bytes() == (MAGIC + ckpt(3, 7)
                              + rec(ACK, struct.pack(">Q", 7) + b"\x01" * 32 + b"\x02" * 32)
                              + rec(BLOCK, struct.pack(">Q", 4) + H + b"\x01" * 32))
    assert read(tmp_path, MAGIC + ckpt(None, 0)).checkpoint == Checkpoint(None, H, 0)


def test_a_file_torn_anywhere_is_torn_by_exactly_the_bytes_after_its_last_record(
    tmp_path: Path,
) -> None:
    good = MAGIC + ckpt() + rec(ACK, struct.pack(">Q", 7) + b"\x01" * 32)
    ends = [len(MAGIC), len(MAGIC + ckpt()), len(good)]  # where whole records end
    for cut in range(len(good) + 1):
        got = read(tmp_path, good[:cut])
        assert got.damage is None, (cut, got.damage)
        last_end = max((e for e in ends if e <= cut), default=0)
        assert got.torn_bytes == cut - last_end, cut
        assert got.acks == ([(7, b"\x01" * 32)] if cut == len(good) else [])


def test_what_does_not_start_with_the_magic_is_damage_not_a_tear(tmp_path: Path) -> None:
    got = read(tmp_path, b"DUBHEX")  # shorter than the magic, but not a prefix of it
    assert got.damage == "it does not start with the journal's magic bytes"
    assert got.torn_bytes == 0
    got = read(tmp_path, b"something else entirely")
    assert got.damage == "it does not start with the journal's magic bytes"
    assert got.checkpoint is None


def test_a_damaged_record_names_its_offset_and_what_is_lost(tmp_path: Path) -> None:
    first = MAGIC + ckpt()
    bad = bytearray(rec(ACK, struct.pack(">Q", 7) + b"\x01" * 32))
    bad[-1] ^= 0xFF  # a payload byte: the checksum no longer matches
    got = read(tmp_path, first + bytes(bad) + rec(ACK, struct.pack(">Q", 8) + H))
    n = len(first)
    assert got.damage == (f"the record at byte {n:,} is damaged; "
                          f"{len(bad) + len(rec(ACK, struct.pack('>Q', 8) + H)):,} bytes "
                          "from there on are unreadable")
    assert got.acks == [] and got.checkpoint is not None


@pytest.mark.parametrize("first", [
    rec(ACK, struct.pack(">Q", 7) + H),  # an acknowledgement before any checkpoint
    rec(CHECKPOINT, b"\x00" * 40),  # a checkpoint of the wrong size
    rec(9, b""),  # an unknown kind
])
def test_the_checkpoint_must_come_first_and_be_whole(tmp_path: Path, first: bytes) -> None:
    got = read(tmp_path, MAGIC + first + ckpt())
    assert got.damage is not None and got.damage.startswith(f"the record at byte {len(MAGIC)}")
    assert got.checkpoint is None and got.acks == []


def test_a_second_checkpoint_is_damage(tmp_path: Path) -> None:
    got = read(tmp_path, MAGIC + ckpt(3, 7) + ckpt(5, 9))
    assert got.checkpoint == Checkpoint(3, H, 7)
    assert got.damage is not None and f"at byte {len(MAGIC + ckpt()):,}" in got.damage


@pytest.mark.parametrize(("payload", "acks"), [
    (struct.pack(">Q", 7), []),  # an acknowledgement of nothing: valid, empty
    (struct.pack(">Q", 7) + H, [(7, H)]),
    (struct.pack(">Q", 7) + H + b"\x22" * 32, [(7, H), (8, b"\x22" * 32)]),
    (struct.pack(">Q", 7) + H + b"\x22", None),  # a partial hash: damage
    (b"\x00" * 7, None),  # shorter than its sequence number
])
def test_acknowledgement_payload_sizes(tmp_path: Path, payload: bytes,
                                       acks: list[tuple[int, bytes]] | None) -> None:
    got = read(tmp_path, MAGIC + ckpt() + rec(ACK, payload))
    if acks is None:
        assert got.damage is not None and got.acks == []
    else:
        assert got.damage is None and got.acks == acks


@pytest.mark.parametrize(("payload", "ok"), [
    (struct.pack(">Q", 4) + H, True),  # a block without transactions
    (struct.pack(">Q", 4) + H + b"\x01" * 32, True),
    (struct.pack(">Q", 4) + H + b"\x01" * 31, False),
    (struct.pack(">Q", 4) + H[:31], False),
])
def test_block_payload_sizes(tmp_path: Path, payload: bytes, ok: bool) -> None:
    got = read(tmp_path, MAGIC + ckpt() + rec(BLOCK, payload))
    assert (got.damage is None) is ok
    assert len(got.blocks) == (1 if ok else 0)


def test_append_keeps_the_highest_watermarks(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j")
    j.start(Checkpoint(3, H, 7))
    j.append([ack_record(7, [b"\x01" * 32])], sync=False)
    assert j.rotation_point()[1] == Checkpoint(3, H, 8)
    j.append([block_record(4, b"\x04" * 32, [])], sync=False)
    assert j.rotation_point()[1] == Checkpoint(4, b"\x04" * 32, 8)
    j.append([ack_record(8, [])], sync=False)  # an empty acknowledgement: next_seq stays 8
    j.append([ack_record(2, [b"\x02" * 32])], sync=False)  # older: never moves it back
    assert j.rotation_point()[1] == Checkpoint(4, b"\x04" * 32, 8)
    size = j.rotation_point()[0]
    assert size == (tmp_path / "j").stat().st_size
    j.close()


def test_a_closed_journal_refuses_appends_and_closes_once(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j")
    with pytest.raises(OSError, match=r"^the journal is closed$"):
        j.append([ack_record(0, [H])], sync=False)  # never started
    j.start(Checkpoint(None, bytes(32), 0))
    j.close()
    j.close()  # a second close is harmless
    with pytest.raises(OSError, match=r"^the journal is closed$"):
        j.append([ack_record(0, [H])], sync=False)
    j.start(Checkpoint(None, bytes(32), 0))  # a restarted journal appends again
    j.append([ack_record(0, [H])], sync=False)
    j.close()
    got = jr.read(tmp_path / "j")
    assert got is not None and got.acks == [(0, H)]


def test_a_last_record_with_an_empty_payload_is_read_not_taken_for_a_tear(
    tmp_path: Path,
) -> None:
    """A header that ends exactly at the end of the file is a whole record (of no payload): no
    kind accepts an empty payload, so it is damage, not a torn append."""
    got = read(tmp_path, MAGIC + ckpt() + rec(9, b""))
    assert got.torn_bytes == 0
    assert got.damage == (f"the record at byte {len(MAGIC + ckpt()):,} is damaged; 9 bytes "
                          "from there on are unreadable")


def test_the_journal_file_is_0644_and_written_aside_then_renamed(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        j = Journal(tmp_path / "j")
        j.start(Checkpoint(None, bytes(32), 0))
        j.close()
    finally:
        os.umask(old)
    assert (tmp_path / "j").stat().st_mode & 0o777 == 0o644
    assert not (tmp_path / "j.new").exists()  # written aside, then renamed over

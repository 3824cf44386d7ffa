"""The state keyspace (node.core.keys) and per-transaction access (node.core.access): key layouts
and their limits at N and N+1, declared-set enforcement for reads, writes and deletes, the read
set each execution records, and the block overlay."""

from __future__ import annotations

import pytest

from node.core import keys
from node.core.access import Overlay, TxState, UndeclaredAccess

C = bytes(19) + b"\x07"
OWNER = bytes(19) + b"\x09"


def test_key_layouts() -> None:
    assert keys.storage_key(C, b"x") == b"s" + C + b"x"
    assert keys.nonce_key(OWNER) == b"n" + OWNER and keys.code_key(OWNER) == b"c" + OWNER
    assert keys.balance_key(OWNER) == b"s" + keys.NATIVE_TOKEN + b"b" + OWNER
    assert keys.implicit_keys(OWNER) == (b"n" + OWNER,)
    assert keys.MAX_KEY_LEN == 1 + 20 + 96


@pytest.mark.parametrize(("contract", "slot", "error"), [
    (bytes(19), b"x", "contract address must be 20 bytes"),
    (bytes(21), b"x", "contract address must be 20 bytes"),
    (C, b"", "storage slot must be 1..96 bytes"),
    (C, bytes(97), "storage slot must be 1..96 bytes"),
])
def test_storage_keys_are_checked(contract: bytes, slot: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=rf"^{error}$"):
        keys.storage_key(contract, slot)
    assert len(keys.storage_key(C, bytes(96))) == keys.MAX_KEY_LEN  # the longest slot
    assert keys.storage_key(C, b"\x00") == b"s" + C + b"\x00"  # the shortest


@pytest.mark.parametrize(("key", "ok"), [
    (b"s" + C, False),  # no slot
    (b"s" + C + b"a", True),
    (b"s" + C + bytes(96), True),
    (b"s" + C + bytes(97), False),
    (b"n" + C + b"a", False),
    (b"c" + C + b"a", False),
    (b"", False),
    (b"s", False),
])
def test_what_counts_as_a_storage_key(key: bytes, ok: bool) -> None:
    assert keys.is_storage_key(key) is ok


class Base:
    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.data = data
        self.asked: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        self.asked.append(key)
        return self.data.get(key)


def test_reads_are_enforced_and_recorded_once_in_order() -> None:
    base = Base({b"a": b"1", b"b": b"2"})
    ts = TxState(base, frozenset({b"a", b"b", b"z"}), frozenset({b"w"}))
    assert ts.get(b"b") == b"2" and ts.get(b"a") == b"1" and ts.get(b"b") == b"2"
    assert ts.get(b"z") is None  # declared, absent
    assert list(ts.reads) == [b"b", b"a", b"z"] and ts.writes == {}
    with pytest.raises(UndeclaredAccess) as e:
        ts.get(b"c")
    assert (e.value.op, e.value.key, str(e.value)) == ("read", b"c", "undeclared read of key 0x63")
    assert b"c" not in ts.reads and base.asked.count(b"c") == 0


def test_writes_and_deletes_are_enforced_and_buffered() -> None:
    base = Base({b"w": b"old"})
    ts = TxState(base, frozenset(), frozenset({b"w", b"v"}))
    ts.put(b"w", b"new")
    assert ts.get(b"w") == b"new"  # its own write, not a base read (and w is not readable)
    assert ts.reads == {} and base.asked == []
    ts.delete(b"v")
    assert ts.writes == {b"w": b"new", b"v": None} and ts.get(b"v") is None
    for op in (lambda: ts.put(b"x", b"1"), lambda: ts.delete(b"x")):
        with pytest.raises(UndeclaredAccess) as e:
            op()
        assert (e.value.op, e.value.key, str(e.value)) == ("write", b"x",
                                                           "undeclared write of key 0x78")
    assert ts.writes == {b"w": b"new", b"v": None}


def test_none_sets_disable_enforcement() -> None:
    ts = TxState(Base({b"k": b"v"}), None, None)
    assert ts.get(b"k") == b"v" and ts.get(b"q") is None
    ts.put(b"any", b"1")
    ts.delete(b"other")
    assert list(ts.reads) == [b"k", b"q"] and ts.writes == {b"any": b"1", b"other": None}


def test_the_overlay_buffers_writes_over_its_base() -> None:
    base = Base({b"a": b"1", b"b": b"2"})
    ov = Overlay(base)
    assert ov.get(b"a") == b"1" and base.asked == [b"a"]
    ov.apply({b"a": b"9", b"b": None, b"c": b"3"})
    ov.apply({b"c": b"4"})
    assert (ov.get(b"a"), ov.get(b"b"), ov.get(b"c")) == (b"9", None, b"4")
    assert base.asked == [b"a"]  # buffered keys never reach the base
    assert ov.writes == {b"a": b"9", b"b": None, b"c": b"4"} and ov.base is base

"""State: MemoryKV (reference) vs RocksKV, the state root, atomic block commits."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from node.core.block import ZERO_HASH, BlockHeader, list_root
from node.state.chain_store import ChainStore, root_of
from node.state.kv import MemoryKV
from node.state.rocks import RocksKV

keys_st = st.binary(min_size=1, max_size=4)
ops_st = st.lists(
    st.dictionaries(keys_st, st.none() | st.binary(max_size=4), max_size=8), max_size=8
)
_counter = itertools.count()


@settings(max_examples=40)
@given(ops_st)
def test_rocks_matches_memory(
    tmp_path_factory: object, batches: list[dict[bytes, bytes | None]]
) -> None:
    path = Path(str(tmp_path_factory.mktemp(f"r{next(_counter)}")))  # type: ignore[attr-defined]
    mem, rocks = MemoryKV(), RocksKV(path)
    try:
        for b in batches:
            mem.write(b)
            rocks.write(b)
        for prefix in (b"", b"\x00", b"a"):
            assert list(mem.iter_prefix(prefix)) == list(rocks.iter_prefix(prefix))
        probe = [k for b in batches for k in b] + [b"zz"]
        assert mem.get_many(probe) == rocks.get_many(probe)
    finally:
        rocks.close()


def _commit(store: ChainStore, writes: dict[bytes, bytes | None]) -> None:
    head = store.head
    acc = store.next_accumulator(writes)
    number = head.number + 1 if head else 0
    h = BlockHeader(
        number,
        head.hash if head else ZERO_HASH,
        number,
        list_root([]),
        list_root([]),
        root_of(acc),
        0,
        0,
    )
    store.commit_block(h, [], [], writes, acc, [])


@given(
    st.dictionaries(keys_st, st.binary(max_size=4), min_size=1, max_size=12),
    st.randoms(use_true_random=False),
)
def test_state_root_is_order_independent(final: dict[bytes, bytes], rnd: object) -> None:
    # One store writes everything at once; another gets the same final state through shuffled
    # blocks with overwrites and deletes on the way.
    a = ChainStore(MemoryKV())
    _commit(a, dict(final))
    b = ChainStore(MemoryKV())
    items = list(final.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    _commit(b, {k: b"junk" for k, _ in items[: len(items) // 2]})
    _commit(b, {b"tmp": b"x"})
    for k, v in items:
        _commit(b, {k: v})
    _commit(b, {b"tmp": None})
    assert a.state_root() == b.state_root()
    assert a.state_root() != ChainStore(MemoryKV()).state_root()


def test_root_survives_reopen(tmp_path: Path) -> None:
    s = ChainStore(RocksKV(tmp_path))
    _commit(s, {b"k": b"v"})
    root, head = s.state_root(), s.head
    s.close()
    s2 = ChainStore(RocksKV(tmp_path))
    assert s2.state_root() == root and s2.head == head
    s2.close()


def test_commit_is_atomic_with_mempool_removal(tmp_path: Path) -> None:
    s = ChainStore(RocksKV(tmp_path))
    _commit(s, {})
    s.pool_put(0, b"tx0")
    s.pool_put(1, b"tx1")
    head = s.head
    assert head is not None
    acc = s.next_accumulator({b"a": b"1"})
    h = BlockHeader(1, head.hash, 5, list_root([b"tx0"]), list_root([]), root_of(acc), 0, 0)
    from node.core.execution import Receipt, TxStatus

    rc = Receipt(b"\x01" * 32, 1, 0, TxStatus.SUCCESS, 1, b"", (), "")
    s.commit_block(h, [(b"\x01" * 32, b"tx0")], [rc], {b"a": b"1"}, acc, [0])
    assert s.pool_load() == [(1, b"tx1")]
    loc = s.tx_location(b"\x01" * 32)
    assert loc is not None and (loc.number, loc.index, loc.raw) == (1, 0, b"tx0")
    assert s.receipt(b"\x01" * 32) == rc
    assert s.number_of(h.hash) == 1 and s.block_tx_hashes(1) == [b"\x01" * 32]
    s.close()


def test_mismatched_root_is_refused() -> None:
    s = ChainStore(MemoryKV())
    h = BlockHeader(0, ZERO_HASH, 0, list_root([]), list_root([]), b"\x00" * 32, 0, 0)
    try:
        s.commit_block(h, [], [], {b"a": b"b"}, s.next_accumulator({b"a": b"b"}), [])
    except ValueError as e:
        assert "state_root" in str(e)
    else:
        raise AssertionError("commit with a wrong state root was accepted")
    assert s.head is None and s.get(b"a") is None

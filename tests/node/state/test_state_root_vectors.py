"""The chain store against written-down answers: the state-root vectors of docs/state-root.md
(read from the doc itself, so doc and code cannot drift apart), and the lookups a reader makes:
several transactions in one block, the positions of their receipts, absent blocks and hashes,
chain parameters, auxiliary data and mempool deletion."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from node.core.block import ZERO_HASH, BlockHeader, execution_digest, list_root
from node.core.execution import Event, Receipt, TxStatus
from node.state.chain_store import ChainStore, StoredReceipt, entry_hash, root_of
from node.state.kv import MemoryKV

DOC = Path(__file__).resolve().parents[3] / "docs" / "state-root.md"
_ROW = re.compile(r"^\|(.+)\|$")


def _tables() -> tuple[list[tuple[bytes, bytes, int]], list[tuple[str, list[int], int, bytes]]]:
    """(entries: key, value, entry_hash), (states: name, entry rows, acc, root) from the doc."""
    entries: list[tuple[bytes, bytes, int]] = []
    states: list[tuple[str, list[int], int, bytes]] = []
    for line in DOC.read_text().splitlines():
        m = _ROW.match(line.strip())
        if m is None:
            continue
        cells = [c.strip().strip("`") for c in m.group(1).split("|")]
        if len(cells) == 3 and re.fullmatch(r"[0-9a-f]{64}", cells[2]):
            entries.append((bytes.fromhex(cells[0]), bytes.fromhex(cells[1]),
                            int(cells[2], 16)))
        elif len(cells) == 4 and re.fullmatch(r"[0-9a-f]{64}", cells[3]):
            rows = [] if cells[1] == "none" else [int(x) for x in cells[1].split(",")]
            states.append((cells[0], rows, int(cells[2], 16), bytes.fromhex(cells[3])))
    return entries, states


ENTRIES, STATES = _tables()


def test_the_doc_has_vectors() -> None:
    assert len(ENTRIES) == 2 and [s[0] for s in STATES] == [
        "empty", "nonce 1", "nonce 1, balance 1000"]
    assert sum(ENTRIES[i][2] for i in (0, 1)) >= 2**256  # the third row wraps


@pytest.mark.parametrize(("key", "value", "expected"), ENTRIES)
def test_entry_hashes_match_the_doc(key: bytes, value: bytes, expected: int) -> None:
    assert entry_hash(key, value) == expected


def _commit(store: ChainStore, writes: dict[bytes, bytes | None],
            txs: Sequence[tuple[bytes, bytes]] = (), receipts: Sequence[Receipt] = (),
            stats: bytes | None = None) -> BlockHeader:
    head = store.head
    acc = store.next_accumulator(writes)
    number = head.number + 1 if head else 0
    h = BlockHeader(number, head.hash if head else ZERO_HASH, number, list_root(r for _, r in txs),
                    list_root(rc.encode() for rc in receipts), root_of(acc), len(txs), 0)
    store.commit_block(h, list(txs), list(receipts), writes, acc, [], stats)
    return h


@pytest.mark.parametrize(("name", "rows", "acc", "root"), STATES)
def test_state_roots_match_the_doc(name: str, rows: list[int], acc: int, root: bytes) -> None:
    assert root_of(acc) == root
    fresh = ChainStore(MemoryKV())
    writes: dict[bytes, bytes | None] = {ENTRIES[i - 1][0]: ENTRIES[i - 1][1] for i in rows}
    assert fresh.next_accumulator(writes) == acc
    _commit(fresh, writes)
    assert fresh.state_root() == root
    # reopened from its key-value store, the accumulator is the committed one
    assert ChainStore(fresh.kv).state_root() == root


def test_deleting_entries_walks_the_roots_back() -> None:
    s = ChainStore(MemoryKV())
    assert s.state_root() == STATES[0][3]  # a new store is the empty state
    (k1, v1, _), (k2, v2, _) = ENTRIES
    _commit(s, {k1: v1, k2: v2})
    assert s.state_root() == STATES[2][3]
    _commit(s, {k2: None, b"absent": None})  # deleting an absent key changes nothing
    assert s.state_root() == STATES[1][3]
    _commit(s, {k1: b"\x00" * 8})  # an overwrite subtracts the old entry
    _commit(s, {k1: v1})
    assert s.state_root() == STATES[1][3]
    _commit(s, {k1: None})
    assert s.state_root() == STATES[0][3]


def _receipt(tx_hash: bytes, number: int, index: int, gas: int, events: int) -> Receipt:
    evs = tuple(Event(bytes(20), (bytes([index]) * 32,), b"e") for _ in range(events))
    return Receipt(tx_hash, number, index, TxStatus.SUCCESS, gas, b"", evs, "")


def test_a_block_of_several_transactions_reads_back_in_order() -> None:
    s = ChainStore(MemoryKV())
    _commit(s, {})
    hashes = [bytes([i]) * 32 for i in (1, 2, 3)]
    txs = [(h, b"raw" + h[:1]) for h in hashes]
    rcs = [_receipt(h, 1, i, gas, ev) for i, (h, gas, ev) in
           enumerate(zip(hashes, (10, 20, 30), (2, 0, 1), strict=True))]
    header = _commit(s, {b"k": b"v"}, txs, rcs, stats=b'{"path":"serial"}')
    assert s.block_tx_hashes(1) == hashes
    assert s.block_tx_hashes(0) == [] and s.block_tx_hashes(2) == []
    assert s.number_of(header.hash) == 1 and s.header(1) == header and s.head == header
    for i, h in enumerate(hashes):
        loc = s.tx_location(h)
        assert loc is not None and (loc.number, loc.index, loc.raw) == (1, i, txs[i][1])
        assert s.receipt(h) == rcs[i]
    expected = [StoredReceipt(rcs[0], txs[0][1], 10, 0), StoredReceipt(rcs[1], txs[1][1], 30, 2),
                StoredReceipt(rcs[2], txs[2][1], 60, 2)]
    assert s.block_receipts(1) == expected
    assert [s.stored_receipt(h) for h in hashes] == expected
    assert s.execution_digest(1) == execution_digest(rcs)
    assert s.block_stats(1) == b'{"path":"serial"}' and s.block_stats(0) is None


def test_a_block_committed_before_positions_and_digests_were_stored_is_still_served() -> None:
    """Blocks written before the G/E keys existed: positions from the earlier receipts, the
    digest from the receipts."""
    s = ChainStore(MemoryKV())
    _commit(s, {})
    hashes = [bytes([i]) * 32 for i in (4, 5, 6)]
    rcs = [_receipt(h, 1, i, gas, ev) for i, (h, gas, ev) in
           enumerate(zip(hashes, (7, 8, 9), (1, 3, 0), strict=True))]
    _commit(s, {}, [(h, b"r") for h in hashes], rcs)
    digest = s.execution_digest(1)
    s.kv.write({b"G" + h: None for h in hashes} | {b"E" + (1).to_bytes(8, "big"): None})
    assert s.stored_receipt(hashes[0]) == StoredReceipt(rcs[0], b"r", 7, 0)
    assert s.stored_receipt(hashes[2]) == StoredReceipt(rcs[2], b"r", 24, 4)
    assert s.execution_digest(1) == digest == execution_digest(rcs)


def test_lookups_of_what_is_not_there_return_none() -> None:
    s = ChainStore(MemoryKV())
    assert s.head is None and s.header(0) is None
    _commit(s, {})
    missing = b"\xee" * 32
    assert s.header(5) is None and s.number_of(missing) is None
    assert s.tx_location(missing) is None and s.receipt(missing) is None
    assert s.stored_receipt(missing) is None
    assert s.block_receipts(5) is None and s.execution_digest(5) is None
    assert s.block_receipts(0) == [] and s.execution_digest(0) == execution_digest([])
    assert s.get(b"nope") is None and s.get_many([b"nope", b"no"]) == [None, None]
    s.kv.write({b"L" + (0).to_bytes(8, "big"): missing})  # a hash whose receipt is gone
    with pytest.raises(LookupError, match="block 0: a receipt or transaction is missing"):
        s.block_receipts(0)


def test_state_reads_and_iteration_see_committed_state_only() -> None:
    s = ChainStore(MemoryKV())
    _commit(s, {b"a1": b"x", b"a2": b"y", b"b1": b"z"})
    assert s.get(b"a1") == b"x" and s.get_many([b"a2", b"b1", b"c"]) == [b"y", b"z", None]
    assert list(s.iter_state(b"a")) == [(b"a1", b"x"), (b"a2", b"y")]
    assert dict(s.iter_state()) == {b"a1": b"x", b"a2": b"y", b"b1": b"z"}
    s.pool_put(0, b"pending")  # not state
    s.aux_put(b"a9", b"cache")  # not state either
    assert dict(s.iter_state()) == {b"a1": b"x", b"a2": b"y", b"b1": b"z"}


def test_params_and_aux_data_are_kept_apart_from_state() -> None:
    s = ChainStore(MemoryKV())
    assert s.param("vm") is None and s.aux_get(b"elf/1") is None
    s.set_param("vm", b"riscv")
    s.set_param("chain_id", b"\x07")
    s.aux_put(b"elf/1", b"one")
    s.aux_put(b"elf/2", b"two")
    s.aux_put(b"other", b"three")
    assert s.param("vm") == b"riscv" and s.param("chain_id") == b"\x07"
    assert s.param("vmx") is None
    assert s.aux_get(b"elf/2") == b"two"
    assert s.aux_iter(b"elf/") == [(b"elf/1", b"one"), (b"elf/2", b"two")]
    assert s.state_root() == STATES[0][3] and list(s.iter_state()) == []
    assert ChainStore(s.kv).param("vm") == b"riscv"  # kept across a reopen


def test_pool_entries_are_kept_in_order_and_deleted_by_sequence() -> None:
    s = ChainStore(MemoryKV())
    s.pool_put(2, b"c")
    s.pool_put_many([(0, b"a"), (1, b"b"), (300, b"d")])
    assert s.pool_load() == [(0, b"a"), (1, b"b"), (2, b"c"), (300, b"d")]
    s.pool_delete([1, 300, 7])  # an unknown sequence is no error
    assert s.pool_load() == [(0, b"a"), (2, b"c")]
    s.pool_delete([])
    assert s.pool_load() == [(0, b"a"), (2, b"c")]

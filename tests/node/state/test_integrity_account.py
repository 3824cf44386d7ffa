"""The account of a damaged store, word for word: what an operator reads in the refusal, the log
and ``dubhe-recovery-*.json`` must say exactly what is lost (singular or plural, one height or a
range), and :func:`account` must compare a store with its journal exactly (blocks above the head
dropped, blocks below it differing, acknowledgements at or above the store's next sequence
number lost, transactions of dropped blocks pending again or lost)."""

from __future__ import annotations

from node.core.block import BlockHeader, list_root
from node.core.codec import U64, sha3
from node.state import journal as jr
from node.state.chain_store import META_SEQ, NS_POOL, ChainStore, root_of
from node.state.integrity import Account, account
from node.state.journal import Checkpoint, JournalBlock, JournalContents
from node.state.kv import MemoryKV

A, B, C = b"\xaa" * 32, b"\xbb" * 32, b"\xcc" * 32


def test_nothing_lost_says_so() -> None:
    acc = Account(4, 10, True)
    assert not acc.loses_anything and acc.provable
    assert acc.summary() == "nothing the node acknowledged or announced"
    assert acc.lines() == ["the database now ends at block 4, next sequence number 10"]
    assert Account(None, 0, True).lines() == [
        "the database now holds no block, next sequence number 0"]


def test_one_of_each_is_singular_and_a_height_not_a_range() -> None:
    acc = Account(4, 10, True, dropped_blocks=[JournalBlock(5, A, (B,))],
                  lost_txs=[(10, C)], repending=[B])
    assert acc.loses_anything
    assert acc.summary() == ("1 announced block (height 5), 1 acknowledged transaction "
                             "(1 transaction of dropped blocks would be pending again)")
    assert acc.summary(done=True).endswith("(1 transaction of dropped blocks are pending again)")
    assert acc.lines() == [
        "the database now ends at block 4, next sequence number 10",
        f"dropped block 5 0x{A.hex()} (announced; 1 transactions)",
        f"dropped acknowledged transaction 0x{C.hex()} (sequence 10)",
        f"transaction 0x{B.hex()} of a dropped block is pending again (it will be in a "
        "different block)",
    ]


def test_many_are_plural_with_ranges() -> None:
    acc = Account(4, 10, True,
                  dropped_blocks=[JournalBlock(n, A, ()) for n in (5, 6, 7)],
                  differing_blocks=[2, 3], lost_txs=[(10, A), (None, B)],
                  repending=[A, B], unlisted=["blocks 8..9 (committed before the checkpoint)"])
    assert acc.summary() == (
        "3 announced blocks (height 5..7), 2 block(s) that differ from the announced ones "
        "(height 2..3), 2 acknowledged transactions, blocks 8..9 (committed before the "
        "checkpoint) (2 transactions of dropped blocks would be pending again)")
    lines = acc.lines()
    assert "block 2 in the database differs from the announced one" in lines
    assert f"dropped acknowledged transaction 0x{B.hex()} (acknowledged before the journal)" \
        in lines
    assert lines[-1] == "dropped, not listed: blocks 8..9 (committed before the checkpoint)"


def test_without_or_with_a_damaged_journal_the_account_says_how_far_it_can_tell() -> None:
    none = Account(4, 10, False)
    assert not none.provable
    assert none.summary() == ("nothing the node acknowledged or announced as far as can be told: "
                              "there is no acknowledgement journal to compare with")
    bad = Account(4, 10, True, journal_damage="the record at byte 9 is damaged")
    assert not bad.provable
    assert bad.summary() == ("nothing the node acknowledged or announced as far as the journal "
                             "can tell (the record at byte 9 is damaged)")
    assert bad.lines()[-1] == ("the journal is damaged (the record at byte 9 is damaged): the "
                               "account may miss what it recorded after that")


def test_the_json_account() -> None:
    acc = Account(4, 10, True, dropped_blocks=[JournalBlock(5, A, (B,))],
                  differing_blocks=[3], lost_txs=[(10, C)], repending=[B], unlisted=["x"])
    assert acc.as_dict() == {
        "databaseHead": 4, "databaseNextSeq": 10, "journal": True, "journalDamage": None,
        "droppedBlocks": [{"number": 5, "hash": "0x" + A.hex(), "transactions": ["0x" + B.hex()]}],
        "differingBlocks": [3],
        "droppedTransactions": [{"hash": "0x" + C.hex(), "seq": 10}],
        "pendingAgain": ["0x" + B.hex()], "notListed": ["x"],
    }


def _store(blocks: int, next_seq: int, pending: list[bytes]) -> tuple[ChainStore, list[bytes]]:
    """A store with ``blocks`` empty blocks, ``pending`` raw transactions in the pool."""
    store = ChainStore(MemoryKV())
    hashes = []
    for number in range(blocks):
        head = store.head
        acc = store.next_accumulator({})
        header = BlockHeader(number, head.hash if head else bytes(32), number, list_root([]),
                             list_root([]), root_of(acc), 0, 0)
        store.commit_block(header, [], [], {}, acc, [])
        hashes.append(header.hash)
    store.pool_put_many([(next_seq - len(pending) + i, raw) for i, raw in enumerate(pending)])
    store.kv.write({META_SEQ: U64.pack(next_seq)})  # earlier numbers were used and included
    return store, hashes


def test_account_compares_the_store_with_its_journal() -> None:
    kept = b"tx-kept"
    store, hashes = _store(3, 5, [kept])  # blocks 0..2; sequence numbers up to 4 used
    kv = store.kv
    assert U64.unpack(kv.get(META_SEQ) or b"")[0] == 5
    jc = JournalContents(
        checkpoint=Checkpoint(0, hashes[0], 2),
        acks=[(2, A), (4, sha3(kept)), (5, B), (6, C)],
        blocks=[JournalBlock(1, hashes[1], ()), JournalBlock(2, b"\x01" * 32, ()),
                JournalBlock(3, b"\x03" * 32, (sha3(kept), A, C))],
    )
    acc = account(kv, jc)
    assert (acc.db_head, acc.db_next_seq, acc.has_journal) == (2, 5, True)
    assert [b.number for b in acc.dropped_blocks] == [3]  # above the store's head
    assert acc.differing_blocks == [2]  # below it, another hash
    # acknowledged at or after the store's next sequence number: gone; A was acknowledged
    # before the store's sequence number (kept), but its block 3 is gone and it is not pending
    assert acc.lost_txs == [(5, B), (6, C), (None, A)]
    assert acc.repending == [sha3(kept)]
    assert acc.unlisted == []


def test_account_lists_what_lies_before_the_checkpoint_but_is_gone() -> None:
    store, _ = _store(2, 3, [])  # blocks 0..1, next sequence number 3
    jc = JournalContents(checkpoint=Checkpoint(4, b"\x04" * 32, 7))
    acc = account(store.kv, jc)
    assert acc.unlisted == [
        "blocks 2..4 (committed before the journal's checkpoint: their hashes are not recorded)",
        "acknowledgements with sequence numbers 3..6 (before the journal's checkpoint: their "
        "hashes are not recorded)",
    ]
    one = account(store.kv, JournalContents(checkpoint=Checkpoint(2, b"\x02" * 32, 4)))
    assert one.unlisted == [
        "blocks 2 (committed before the journal's checkpoint: their hashes are not recorded)",
        "acknowledgements with sequence numbers 3 (before the journal's checkpoint: their "
        "hashes are not recorded)",
    ]
    fresh = JournalContents(checkpoint=Checkpoint(None, bytes(32), 0))
    none = account(ChainStore(MemoryKV()).kv, fresh)
    assert none.db_head is None and not none.loses_anything


def test_account_without_a_journal_or_checkpoint_compares_nothing() -> None:
    store, _ = _store(2, 3, [])
    acc = account(store.kv, None)
    assert (acc.db_head, acc.db_next_seq, acc.has_journal) == (1, 3, False)
    assert not acc.loses_anything
    damaged = account(store.kv, JournalContents(damage="broken"))
    assert damaged.has_journal and damaged.journal_damage == "broken"
    assert not damaged.loses_anything


def test_a_store_from_before_sequence_numbers_were_kept_numbers_after_its_pool() -> None:
    kv = MemoryKV()
    kv.write({NS_POOL + U64.pack(4): b"a", NS_POOL + U64.pack(9): b"b"})
    assert account(kv, None).db_next_seq == 10
    assert account(MemoryKV(), None).db_next_seq == 0
    assert jr.NO_HEAD == 2**64 - 1

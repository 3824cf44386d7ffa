"""The mock chain model (no I/O): determinism, code versions, events, reorgs and finality."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.l1.chain_model import Chain, ChainError, Deploy, Transfer, Upgrade, code_hash


def script(c: Chain) -> None:
    c.produce(2)
    a = c.new_address()
    c.submit(Deploy(a, {"code": b"\x7fELF1"}))
    c.produce()
    c.submit(Upgrade(a, {"code": b"\x7fELF2"}))
    c.submit(Transfer(c.accounts[0], c.accounts[1], 5))
    c.produce(3)


def test_same_seed_same_chain_other_seed_other_chain() -> None:
    a, b, other = Chain(seed=1), Chain(seed=1), Chain(seed=2)
    for c in (a, b, other):
        script(c)
    assert [x.hash for x in a.blocks] == [x.hash for x in b.blocks]
    assert a.accounts == b.accounts
    assert a.blocks[-1].hash != other.blocks[-1].hash
    assert a.accounts != other.accounts


def test_blocks_link_and_times_derive_from_the_number() -> None:
    c = Chain(seed=0, block_time_ms=250)
    script(c)
    for p, b in zip(c.blocks, c.blocks[1:], strict=False):
        assert b.parent_hash == p.hash and b.number == p.number + 1
        assert b.timestamp_ms - p.timestamp_ms == 250


def test_code_versions_events_and_history() -> None:
    c = Chain(seed=0)
    script(c)
    (addr,) = c.head.state.contracts
    k = c.contract(addr)
    assert k is not None and k.version == 2 and k.modules == {"code": b"\x7fELF2"}
    assert k.code_hash == code_hash({"code": b"\x7fELF2"})
    assert c.contract(addr, c.blocks[3].state) is not None
    assert c.contract(addr, c.blocks[2].state) is None
    kinds = [(b.number, e.kind, e.index) for b in c.blocks for e in b.events]
    assert kinds == [(3, "CodeDeployed", 0), (4, "CodeUpgraded", 0), (4, "Transfer", 1)]
    assert c.head.state.balances[c.accounts[1]] - c.blocks[3].state.balances[c.accounts[1]] == 5


def test_invalid_ops_are_refused_up_front() -> None:
    c = Chain(seed=0)
    a = c.new_address()
    with pytest.raises(ChainError):
        c.submit(Upgrade(a, {"code": b"x"}))
    c.submit(Deploy(a, {"code": b"x"}))
    with pytest.raises(ChainError):
        c.submit(Deploy(a, {"code": b"y"}))  # already pending
    with pytest.raises(ChainError):
        c.submit(Deploy(b"\x01" * 3, {"code": b"y"}))
    with pytest.raises(ChainError):
        c.submit(Transfer(b"\x09" * 20, c.accounts[0], 1))


def test_reorg_replaces_blocks_and_keeps_or_drops_transactions() -> None:
    c = Chain(seed=0)
    script(c)
    old = list(c.blocks)
    r = c.reorg(3, keep_txs=True)
    assert r.fork_point == old[3]
    assert [b.number for b in r.dropped] == [4, 5, 6]
    assert [b.number for b in r.added] == [4, 5, 6, 7]
    assert all(a.hash != d.hash for a, d in zip(r.added, r.dropped, strict=False))
    assert [t.hash for t in r.added[0].txs] == [t.hash for t in old[4].txs]  # re-included
    (addr,) = c.head.state.contracts
    k = c.contract(addr)
    assert k is not None and k.version == 2
    r2 = c.reorg(4, 1, keep_txs=False)
    assert c.head.number == 4 and not r2.added[0].txs
    k = c.contract(addr)
    assert k is not None and k.version == 1
    assert old[5].hash in c.by_hash  # orphans stay addressable by hash


def test_reorgs_beyond_finality_are_refused() -> None:
    c = Chain(seed=0, finality_depth=4)
    c.produce(10)
    assert c.finalized.number == 6 and c.safe.number == 8
    with pytest.raises(ChainError):
        c.reorg(5)
    with pytest.raises(ChainError):
        c.reorg(0)
    c.reorg(4)


@given(
    st.lists(
        st.tuples(st.sampled_from(["produce", "deploy", "upgrade", "reorg"]), st.integers(1, 4)),
        max_size=25,
    )
)
def test_any_history_keeps_the_chain_linked_and_replayable(ops: list[tuple[str, int]]) -> None:
    def run(seed: int) -> Chain:
        c = Chain(seed=seed, finality_depth=8)
        deployed: list[bytes] = []
        for op, n in ops:
            if op == "produce":
                c.produce(n)
            elif op == "deploy":
                a = c.new_address()
                c.submit(Deploy(a, {"code": bytes([n])}))
                deployed.append(a)
            elif op == "upgrade" and deployed and c.contract(deployed[0]) is not None:
                c.submit(Upgrade(deployed[0], {"code": bytes([n, n])}))
            elif op == "reorg" and c.head.number >= n:
                c.reorg(n, keep_txs=n % 2 == 0)
        return c

    a, b = run(3), run(3)
    assert [x.hash for x in a.blocks] == [x.hash for x in b.blocks]
    for p, x in zip(a.blocks, a.blocks[1:], strict=False):
        assert x.parent_hash == p.hash

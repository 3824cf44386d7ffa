"""The block-production loop in-process: a real in-memory chain, no sockets."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping

import pytest
from inproc import MemoryChain  # type: ignore[import-not-found]
from timing import scaled, wait_until  # type: ignore[import-not-found]

from node.chain.mempool import PoolEntry
from node.chain.producer import ProducedBlock
from node.core import keys
from node.core.codec import unpack_u64
from node.core.tx import Signer
from node.server.production import BlockProduction

A, B = Signer.from_seed(b"prod-a"), Signer.from_seed(b"prod-b")


def production(chain: MemoryChain, **kw: object) -> tuple[BlockProduction, list[ProducedBlock]]:
    seen: list[ProducedBlock] = []
    opts: dict[str, object] = {"block_time_s": 3600.0, "max_block_txs": 2,
                               "on_block": lambda b, s: seen.append(b), "clock_ms": lambda: 5_000}
    opts.update(kw)
    return BlockProduction(chain.producer, chain.mempool, **opts), seen  # type: ignore[arg-type]


async def test_one_round_builds_commits_and_publishes() -> None:
    chain = MemoryChain.new()
    prod, seen = production(chain)
    for tx in (chain.mint(A.address, 5), chain.mint(B.address, 6), chain.mint(A.address, 7)):
        chain.mempool.submit_tx(tx)
    b = await prod.produce_one()
    assert b is not None and seen == [b]
    assert (
        b.header.number == 1 and len(b.txs) == 2 and b.header.timestamp_ms == 5_000
    )  # max_block_txs
    assert (
        len(chain.mempool) == 1 and prod.last_stats["number"] == 1 and prod.last_stats["txs"] == 2
    )
    assert unpack_u64(chain.store.get(keys.balance_key(B.address))) == 6
    b2 = await prod.produce_one()
    assert b2 is not None and b2.header.number == 2 and len(chain.mempool) == 0


async def test_system_writes_apply_at_the_next_block_and_resolve_to_its_number() -> None:
    chain = MemoryChain.new()
    prod, _ = production(chain)
    key = keys.code_key(bytes(19) + b"\x09")
    done = prod.schedule_system_write({key: b"code-v1"})
    prod.queue_system_writes({keys.code_key(bytes(20)): b"other"})
    assert not done.done()
    b = await prod.produce_one()
    assert b is not None and await done == 1
    assert (
        chain.store.get(key) == b"code-v1" and chain.store.get(keys.code_key(bytes(20))) == b"other"
    )


async def test_a_failed_build_keeps_transactions_writes_and_waiters() -> None:
    chain = MemoryChain.new()
    prod, seen = production(chain)
    chain.mempool.submit_tx(chain.mint(A.address, 5))
    real = chain.producer.build
    calls = 0

    def flaky(*args: object) -> ProducedBlock:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk on fire")
        return real(*args)  # type: ignore[arg-type]

    chain.producer.build = flaky  # type: ignore[method-assign]
    key = keys.code_key(bytes(19) + b"\x07")
    done = prod.schedule_system_write({key: b"old"})
    assert await prod.produce_one() is None
    assert len(chain.mempool) == 1 and not done.done() and seen == []
    prod.queue_system_writes({key: b"new"})  # newer writes win over the kept ones
    b = await prod.produce_one()
    assert b is not None and await done == 1 and len(chain.mempool) == 0
    assert chain.store.get(key) == b"new"


async def test_the_hook_adds_writes_for_the_blocks_transactions() -> None:
    chain = MemoryChain.new()
    got: list[tuple[list[PoolEntry], dict[bytes, bytes | None]]] = []
    key = keys.code_key(bytes(19) + b"\x05")

    async def before(
        entries: list[PoolEntry], queued: Mapping[bytes, bytes | None]
    ) -> dict[bytes, bytes | None]:
        got.append((entries, dict(queued)))
        return {key: b"fetched"}

    prod, _ = production(chain, before_block=before)
    assert await prod.produce_one() is not None and got == []  # no transactions: no hook
    prod.queue_system_writes({keys.code_key(bytes(20)): b"q"})
    tx = chain.mint(A.address, 1)
    chain.mempool.submit_tx(tx)
    await prod.produce_one()
    assert [e.tx for e in got[0][0]] == [tx] and got[0][1] == {keys.code_key(bytes(20)): b"q"}
    assert chain.store.get(key) == b"fetched"


async def test_pause_returns_after_the_block_in_progress_and_nothing_follows() -> None:
    chain = MemoryChain.new()
    prod, seen = production(chain, block_time_s=0.001)
    started, release = threading.Event(), threading.Event()
    real = chain.producer.build

    def slow(*args: object) -> ProducedBlock:
        started.set()
        release.wait(scaled(10))
        return real(*args)  # type: ignore[arg-type]

    chain.producer.build = slow  # type: ignore[method-assign]
    prod.start()
    try:
        await wait_until(started.is_set, what="a block build in progress")
        pausing = asyncio.create_task(prod.pause())
        await asyncio.sleep(0.01)
        assert prod.paused and not pausing.done()  # the block in progress is still building
        release.set()
        head = await asyncio.wait_for(pausing, scaled(5))
        built = len(seen)
        assert built >= 1
        # the answer names the block that was in progress: the last one committed
        assert head is not None and head == seen[-1].header == chain.store.head
        await asyncio.sleep(0.05)  # the window of the check: fifty block periods, none may build
        assert len(seen) == built and prod.running
        prod.resume()
        await wait_until(lambda: len(seen) > built, what="a block after resume")
    finally:
        release.set()
        await prod.stop()
    assert not prod.running


async def test_stop_fails_pending_deploys_and_health_follows() -> None:
    chain = MemoryChain.new()
    prod, _ = production(chain)
    assert not prod.running
    prod.start()
    assert prod.running
    done = prod.schedule_system_write({keys.code_key(bytes(20)): b"x"})
    await prod.stop()
    assert not prod.running
    with pytest.raises(RuntimeError, match="shutting down"):
        await done


async def test_deploys_while_paused_are_queued_visible_and_land_in_the_next_block() -> None:
    chain = MemoryChain.new()
    prod, seen = production(chain, block_time_s=0.001)
    k1, k2 = keys.code_key(bytes(19) + b"\x01"), keys.code_key(bytes(19) + b"\x02")
    prod.start()
    try:
        await wait_until(lambda: len(seen) >= 1, what="a first block")
        head = await prod.pause()
        assert head is not None and head == chain.store.head
        # while paused: answered at once (None = queued), listed, and no block appears
        d1 = prod.schedule_system_write({k1: b"one"}, {"address": "0x01"})
        assert d1.done() and d1.result() is None
        d2 = prod.schedule_system_write({k2: b"two"}, {"address": "0x02"})
        assert d2.done() and d2.result() is None
        assert prod.queued_deploys() == [{"address": "0x01"}, {"address": "0x02"}]
        await asyncio.sleep(0.05)  # fifty block periods: none may build while paused
        assert chain.store.head == head and chain.store.get(k1) is None
        # resume: both land in the very next block, in the order they were queued
        n_before = len(seen)
        prod.resume()
        await wait_until(lambda: len(seen) > n_before, what="the first block after resume")
        first = seen[n_before]
        assert first.header.number == head.number + 1
        assert chain.store.get(k1) == b"one" and chain.store.get(k2) == b"two"
        assert prod.queued_deploys() == []
    finally:
        await prod.stop()


async def test_a_deploy_waiting_for_a_block_answers_queued_when_production_pauses() -> None:
    chain = MemoryChain.new()
    prod, _ = production(chain)  # one block an hour: the deploy would wait for it
    prod.start()
    try:
        key = keys.code_key(bytes(19) + b"\x03")
        waiting = prod.schedule_system_write({key: b"code"}, {"address": "0x03"})
        assert not waiting.done() and prod.queued_deploys() == [{"address": "0x03"}]
        head = await prod.pause()
        assert await asyncio.wait_for(waiting, scaled(1)) is None  # queued, not hanging
        assert prod.queued_deploys() == [{"address": "0x03"}] and chain.store.head == head
        prod.resume()
        b = await prod.produce_one()  # the next block takes it
        assert b is not None and b.header.number == head.number + 1
        assert chain.store.get(key) == b"code" and prod.queued_deploys() == []
    finally:
        await prod.stop()

"""The block-production loop: one block every ``block_time_ms`` while not paused.

Each round takes up to ``max_block_txs`` pending transactions of at most ``max_block_bytes``
together (raw signed encodings), lets the ``before_block`` hook
add system writes (L1 code the transactions need), takes the queued system writes (admin deploys,
L1 upgrades), builds and commits the block on a worker thread
(:meth:`~node.chain.producer.BlockProducer.build`), forgets the included transactions, resolves
the deploys' waiters with the block number and hands the block to ``on_block`` (metrics and
pubsub). A failed build leaves the transactions pending and keeps the system writes for the next
round (newer writes to the same key win).

:meth:`BlockProduction.pause` returns once no block is being built, with the last committed
block, so no block appears after it returns until :meth:`BlockProduction.resume`. System writes
scheduled while paused (admin deploys) stay queued, visible in :meth:`queued_deploys`, and land
in the first block after the resume; their waiters resolve at once to ``None`` ("queued") instead
of waiting for a block that a paused node will not build. :meth:`BlockProduction.stop` lets the
block in progress finish (up to ``stop_timeout_s``) before returning.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from node.chain.mempool import Mempool, PoolEntry
from node.chain.producer import BlockProducer, ProducedBlock
from node.core.block import BlockHeader
from node.server.metrics import Metrics
from node.server.pubsub import PubSub

log = logging.getLogger("node")

SystemWrites = dict[bytes, bytes | None]
#: ``(transactions of the next block, system writes queued so far) -> more system writes``.
BeforeBlock = Callable[[list[PoolEntry], Mapping[bytes, bytes | None]], Awaitable[SystemWrites]]
#: ``(block, seconds it took to build) -> None``; called on the event loop after each commit.
OnBlock = Callable[[ProducedBlock, float], None]


class BlockProduction:
    def __init__(
        self,
        producer: BlockProducer,
        mempool: Mempool,
        *,
        block_time_s: float,
        max_block_txs: int,
        on_block: OnBlock,
        max_block_bytes: int | None = None,
        before_block: BeforeBlock | None = None,
        stop_timeout_s: float = 3.0,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.producer = producer
        self.mempool = mempool
        self.block_time_s = block_time_s
        self.max_block_txs = max_block_txs
        self.max_block_bytes = max_block_bytes
        self.on_block = on_block
        self.before_block = before_block
        self.stop_timeout_s = stop_timeout_s
        self.clock_ms = clock_ms
        self.last_stats: dict[str, Any] = {}
        self._paused = False
        self._pending_writes: SystemWrites = {}
        self._waiters: list[asyncio.Future[int | None]] = []
        self._queued: list[dict[str, Any]] = []  # what the scheduled writes are, for status
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()  # set while no block is being built
        self._idle.set()

    # -- control --------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self._paused

    async def pause(self) -> BlockHeader | None:
        """Stop producing; returns the last committed block once the block in progress (if any)
        is committed. Deploys waiting for a block resolve to ``None``: they stay queued."""
        self._paused = True
        await self._idle.wait()
        if self._paused:  # (a resume while we waited wins)
            self._release_waiters(None)
        return self.producer.store.head

    def _release_waiters(self, number: int | None) -> None:
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(number)

    def resume(self) -> None:
        self._paused = False

    @property
    def running(self) -> bool:
        """The loop is running and not stopping (``/health`` says ``ok``)."""
        return self._task is not None and not self._task.done() and not self._stopping.is_set()

    # -- system writes --------------------------------------------------------------------
    def queue_system_writes(self, writes: Mapping[bytes, bytes | None]) -> None:
        """Apply ``writes`` at the start of the next block (L1 code reloads)."""
        self._pending_writes.update(writes)

    def schedule_system_write(
        self, writes: Mapping[bytes, bytes | None], info: Mapping[str, Any] | None = None
    ) -> asyncio.Future[int | None]:
        """Apply ``writes`` at the start of the next block (admin deploys); the future resolves
        to that block's number once it is committed, or to ``None`` when production is paused
        (now, or before a block takes the writes): they stay queued for the first block after
        the resume. ``info`` describes them in :meth:`queued_deploys` until then."""
        self._pending_writes.update(writes)
        self._queued.append(dict(info or {}))
        fut: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        if self._paused:
            fut.set_result(None)
        else:
            self._waiters.append(fut)
        return fut

    def queued_deploys(self) -> list[dict[str, Any]]:
        """The scheduled system writes no block has taken yet (their ``info``), oldest first."""
        return [dict(q) for q in self._queued]

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="block-producer")

    async def stop(self) -> None:
        """Stop after the block in progress; pending deploys fail with "shutting down"."""
        self._stopping.set()
        for w in self._waiters:
            if not w.done():
                w.set_exception(RuntimeError("node is shutting down"))
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._task, timeout=self.stop_timeout_s)
        except TimeoutError:
            log.warning(
                "block production did not finish within %.0f s; cancelling", self.stop_timeout_s
            )
            self._task.cancel()

    async def _loop(self) -> None:
        period = self.block_time_s
        next_at = time.monotonic() + period
        while not self._stopping.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                    break
                except TimeoutError:
                    pass
            next_at = max(next_at + period, time.monotonic())
            if self._paused:
                continue
            self._idle.clear()
            try:
                await self.produce_one()
            finally:
                self._idle.set()

    async def produce_one(self) -> ProducedBlock | None:
        """Build and commit one block now; returns it, or None when the build failed (logged)."""
        entries = self.mempool.pending(self.max_block_txs, self.max_block_bytes)
        if self.before_block is not None and entries:
            self._pending_writes.update(await self.before_block(entries, self._pending_writes))
        system, waiters, queued = self._pending_writes, self._waiters, self._queued
        self._pending_writes, self._waiters, self._queued = {}, [], []
        t0 = time.perf_counter()
        try:
            produced = await asyncio.to_thread(
                self.producer.build, entries, self.clock_ms(), system
            )
        except Exception:
            log.exception("block production failed; transactions stay pending")
            # keep the system writes for the next attempt (newer ones win)
            self._pending_writes = {**system, **self._pending_writes}
            self._waiters = waiters + self._waiters
            self._queued = queued + self._queued
            return None
        self.mempool.remove(entries)
        for w in waiters:
            if not w.done():
                w.set_result(produced.header.number)
        self.last_stats = {"number": produced.header.number, **produced.stats.as_dict()}
        self.on_block(produced, time.perf_counter() - t0)
        return produced


class BlockPublisher:
    """The usual ``on_block``: count the block in the metrics, then notify subscribers."""

    def __init__(self, metrics: Metrics, pubsub: PubSub, mempool: Mempool) -> None:
        self.metrics = metrics
        self.pubsub = pubsub
        self.mempool = mempool

    def __call__(self, b: ProducedBlock, seconds: float) -> None:
        m = self.metrics
        m.blocks.inc()
        m.head.set(b.header.number)
        m.mempool.set(len(self.mempool))
        m.block_seconds.observe(seconds)
        m.observe_block(b.stats, b.header.number)
        for rc in b.receipts:
            m.txs.labels(rc.status.name.lower()).inc()
        self.pubsub.publish(b.header, b.txs, b.receipts)

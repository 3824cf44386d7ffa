"""The node's composition root: builds every service from the config and runs them.

Start-up order: state store -> genesis (first start only) -> mempool restore -> executor and
scheduler -> block production -> HTTP and WebSocket listeners. Shutdown (``stop``) reverses it:
stop accepting, finish the block in progress, close WebSockets with 1001, flush and close state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from node import __version__
from node.chain.mempool import Mempool, PoolEntry
from node.chain.producer import BlockProducer, ProducedBlock
from node.config import Config, split_bind
from node.core import keys
from node.core.execution import BlockExecutor
from node.scheduler import registry
from node.scheduler.adaptive import ParallelGate
from node.server import contract_methods, execution, methods
from node.server.dispatch import Dispatcher, Handler
from node.server.http import HttpShell
from node.server.l1 import L1Service
from node.server.metrics import Metrics
from node.server.pubsub import PubSub
from node.server.security import AuditLog
from node.server.ws import WsShell
from node.state.chain import ChainStore, open_store

log = logging.getLogger("node")


class Node:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.metrics = Metrics()
        self.audit = AuditLog(cfg.security.audit_log if cfg.state.backend == "rocksdb" or cfg.security.audit_log else None)
        self.store: ChainStore = open_store(cfg.state.backend, cfg.state.path, sync_writes=cfg.state.sync_writes)
        try:
            self.execution = execution.build(cfg, self.store)
        except BaseException:
            self.store.close()
            raise
        self.tx_executor = self.execution.executor
        self.loader = self.execution.loader
        self.block_executor: BlockExecutor = registry.create(
            cfg.scheduler.strategy, self.tx_executor, cfg.scheduler.worker_threads,
            executor_factory=self.execution.worker_factory, substrate=cfg.scheduler.substrate,
            adaptive=cfg.scheduler.adaptive,
        )
        self.producer = BlockProducer(self.store, self.block_executor, chain_id=cfg.node.chain_id)
        self.mempool = Mempool(self.store, chain_id=cfg.node.chain_id, max_txs=cfg.node.max_mempool_txs)
        self.pubsub = PubSub(self.metrics)
        self.l1 = L1Service(cfg, self.store, self.metrics, self.queue_system_writes)
        self.paused = False
        self.started = time.monotonic()
        self.last_stats: dict[str, Any] = {}
        self.pending_system_writes: dict[bytes, bytes | None] = {}
        self._system_waiters: list[asyncio.Future[int]] = []
        self._extra: dict[str, Handler] = contract_methods.build(self)
        self.dispatcher = Dispatcher(
            methods.build(self),
            metrics=self.metrics,
            audit=self.audit,
            timeout_s=cfg.api.request_timeout_ms / 1000,
            max_batch=cfg.api.max_batch,
            ws_only=PubSub.WS_ONLY,
        )
        self.http = HttpShell(self)
        self.ws = WsShell(self)
        self._runners: list[web.AppRunner] = []
        self._producer_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.rpc_port = 0
        self.ws_port = 0

    def extra_methods(self) -> dict[str, Handler]:
        return self._extra

    def queue_system_writes(self, writes: dict[bytes, bytes | None]) -> None:
        """Apply ``writes`` at the start of the next block (L1 code reloads)."""
        self.pending_system_writes.update(writes)

    def schedule_system_write(self, writes: dict[bytes, bytes | None]) -> asyncio.Future[int]:
        """Apply ``writes`` at the start of the next block (admin deploys); the future resolves
        to that block's number once it is committed."""
        self.pending_system_writes.update(writes)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._system_waiters.append(fut)
        return fut

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        if self.store.head is None:
            self.store.set_param("vm", self.execution.vm.encode())
        head = self.producer.genesis(self.execution.genesis, int(time.time() * 1000))
        restored = self.mempool.restore()
        self.metrics.head.set(head.number)
        self.metrics.mempool.set(restored)
        log.info("chain at block %d, %d pending transactions restored", head.number, restored)
        await self.l1.start()
        self.rpc_port = await self._serve(self.http.app(), self.cfg.api.rpc_bind)
        self.ws_port = await self._serve(self.ws.app(), self.cfg.api.ws_bind)
        self._producer_task = asyncio.create_task(self._produce_loop(), name="block-producer")

    async def _serve(self, app: web.Application, bind: str) -> int:
        host, port = split_bind(bind)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
        await site.start()
        self._runners.append(runner)
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        return int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    async def stop(self) -> None:
        """Graceful stop: no new connections, finish the current block, 1001 to WebSockets."""
        self._stopping.set()
        self.ws.accepting = False
        for w in self._system_waiters:
            if not w.done():
                w.set_exception(RuntimeError("node is shutting down"))
        if self._producer_task is not None:
            try:
                await asyncio.wait_for(self._producer_task, timeout=3.0)
            except TimeoutError:
                log.warning("block production did not finish within 3 s; cancelling")
                self._producer_task.cancel()
        await self.ws.close_all()
        for r in self._runners:
            await r.cleanup()
        await self.l1.stop()
        self.block_executor.close()
        self.store.close()
        self.audit.close()

    # -- block production -----------------------------------------------------------------
    async def _produce_loop(self) -> None:
        period = self.cfg.node.block_time_ms / 1000
        max_txs = self.cfg.node.max_block_txs
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
            if self.paused:
                continue
            entries = self.mempool.pending(max_txs)
            if self.l1.enabled and entries:
                await self._load_l1_code(entries)
            system, waiters = self.pending_system_writes, self._system_waiters
            self.pending_system_writes, self._system_waiters = {}, []
            t0 = time.perf_counter()
            try:
                produced = await asyncio.to_thread(self.producer.build, entries, int(time.time() * 1000), system)
            except Exception:
                log.exception("block production failed; transactions stay pending")
                # keep the system writes for the next attempt (newer ones win)
                self.pending_system_writes = {**system, **self.pending_system_writes}
                self._system_waiters = waiters + self._system_waiters
                continue
            self.mempool.remove(entries)
            for w in waiters:
                if not w.done():
                    w.set_result(produced.header.number)
            self._published(produced, time.perf_counter() - t0)

    async def _load_l1_code(self, entries: list[PoolEntry]) -> None:
        """Fetch from the L1s the code of targets that have none yet (see node.server.l1)."""
        missing = set()
        for to in {e.tx.to for e in entries}:
            ck = keys.code_key(to)
            if ck not in self.pending_system_writes and self.store.get(ck) is None:
                missing.add(to)
        if missing:
            self.pending_system_writes.update(await self.l1.fetch_missing(missing))
        if self.execution.resolver is not None:
            self.execution.resolver.failures = self.l1.failure_snapshot()

    def _published(self, b: ProducedBlock, seconds: float) -> None:
        m = self.metrics
        m.blocks.inc()
        m.head.set(b.header.number)
        m.mempool.set(len(self.mempool))
        m.block_seconds.observe(seconds)
        m.observe_block(b.stats)
        for rc in b.receipts:
            m.txs.labels(rc.status.name.lower()).inc()
        self.last_stats = {"number": b.header.number, **b.stats.as_dict()}
        self.pubsub.publish(b.header, b.txs, b.receipts)

    # -- status ---------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        head = self.store.head
        running = self._producer_task is not None and not self._producer_task.done()
        return {
            "status": "ok" if running and not self._stopping.is_set() else "stopping",
            "height": head.number if head else 0,
            "paused": self.paused,
        }

    def _scheduler_status(self) -> dict[str, Any]:
        gate = getattr(self.block_executor, "gate", None)
        return {
            "strategy": self.block_executor.name,
            "substrate": self.cfg.scheduler.substrate,
            "adaptive": gate.as_dict() if isinstance(gate, ParallelGate) else None,
        }

    def status(self) -> dict[str, Any]:
        head = self.store.head
        return {
            "version": __version__,
            "chainId": self.cfg.node.chain_id,
            "height": head.number if head else 0,
            "headHash": "0x" + head.hash.hex() if head else None,
            "stateRoot": "0x" + self.store.state_root().hex(),
            "strategy": self.block_executor.name,
            "workers": self.cfg.scheduler.worker_threads,
            "scheduler": self._scheduler_status(),
            "vm": self.execution.vm,
            "loader": self.loader.stats().as_dict() if self.loader else None,
            "mempoolSize": len(self.mempool),
            "openConnections": len(self.ws.conns),
            "subscriptions": len(self.pubsub.subs),
            "paused": self.paused,
            "uptimeSeconds": methods.uptime(self.started),
            "lastBlock": self.last_stats,
            "l1": self.l1.status() if self.l1.enabled else None,
        }

    def refresh_gauges(self) -> None:
        self.metrics.mempool.set(len(self.mempool))
        self.l1.refresh_metrics()

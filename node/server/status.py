"""The node's status document (``dubhe_status``), its health (``GET /health``) and the gauges
refreshed before each ``/metrics`` scrape, assembled from the node's parts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from node import __version__
from node.chain.mempool import Mempool
from node.config import Config
from node.core.execution import BlockExecutor
from node.loader.loader import Loader
from node.scheduler.adaptive import ParallelGate
from node.server.l1 import L1Service
from node.server.metrics import Metrics
from node.server.production import BlockProduction
from node.state.chain_store import ChainStore


def uptime(started: float) -> float:
    """Seconds since ``started`` (a ``time.monotonic()`` reading), to the millisecond."""
    return round(time.monotonic() - started, 3)


@dataclass
class NodeStatus:
    cfg: Config
    store: ChainStore
    block_executor: BlockExecutor
    vm: str
    loader: Loader | None
    mempool: Mempool
    production: BlockProduction
    l1: L1Service
    metrics: Metrics
    open_connections: Callable[[], int]
    subscriptions: Callable[[], int]
    started: float = field(default_factory=time.monotonic)
    #: Open TCP connections by listener (``{"http": n, "ws": n}``).
    connections: Callable[[], dict[str, int]] = dict
    #: The descriptor budget the node started with (node.server.descriptors), if planned.
    descriptors: dict[str, Any] | None = None

    def health(self) -> dict[str, Any]:
        """``{"status": "ok" | "stopping", "height", "paused"}``."""
        head = self.store.head
        return {
            "status": "ok" if self.production.running else "stopping",
            "height": head.number if head else 0,
            "paused": self.production.paused,
        }

    def _scheduler(self) -> dict[str, Any]:
        """Strategy and switches as configured, the gate's state (``adaptive``: None when the
        strategy is not gated), and where transactions ran: the last block's path, executions
        per worker (index 0: the coordinator), chunks, handed-back transactions and
        re-executions, and their totals since start."""
        gate = getattr(self.block_executor, "gate", None)
        sc = self.cfg.scheduler
        return {
            "strategy": self.block_executor.name,
            "substrate": sc.substrate,
            "workers": sc.worker_threads,
            "gate": sc.adaptive,
            "contentionFallback": sc.contention_fallback,
            "adaptive": gate.as_dict() if isinstance(gate, ParallelGate) else None,
            **self.metrics.sched_activity.as_dict(),
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
            "scheduler": self._scheduler(),
            "vm": self.vm,
            "loader": self.loader.stats().as_dict() if self.loader else None,
            "mempoolSize": len(self.mempool),
            "openConnections": self.open_connections(),
            "connections": self.connections(),
            "descriptors": self.descriptors,
            "subscriptions": self.subscriptions(),
            "paused": self.production.paused,
            "queuedDeploys": self.production.queued_deploys(),
            "uptimeSeconds": uptime(self.started),
            "lastBlock": self.production.last_stats,
            "l1": self.l1.status() if self.l1.enabled else None,
        }

    def refresh_gauges(self) -> None:
        """Gauges read at scrape time rather than kept current on every change."""
        self.metrics.mempool.set(len(self.mempool))
        self.l1.refresh_metrics()

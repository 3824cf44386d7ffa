"""Prometheus metrics (prometheus_client), on a per-node registry served at ``/metrics``."""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from node.core.execution import PATHS, BlockStats

#: Upper bounds (seconds) of the request-latency histogram buckets.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0, 5.0)


class RequestStats(Collector):
    """Requests by (method, transport) and a latency histogram by transport, updated with a
    dict increment and a bisect per request; rendered as ``dubhe_rpc_requests_total`` and
    ``dubhe_rpc_request_seconds`` (standard Prometheus counter and histogram) when scraped.
    Updated from the event loop thread only."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}

    def count(self, method: str, transport: str) -> None:
        key = (method, transport)
        self.counts[key] = self.counts.get(key, 0) + 1

    def observe(self, transport: str, seconds: float) -> None:
        b = self.buckets.get(transport)
        if b is None:
            b = self.buckets[transport] = [0] * (len(LATENCY_BUCKETS) + 1)
            self.sums[transport] = 0.0
        b[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sums[transport] += seconds

    def collect(self) -> Iterator[Metric]:
        c = CounterMetricFamily("dubhe_rpc_requests", "JSON-RPC requests by method and transport",
                                labels=["method", "transport"])
        for (method, transport), n in sorted(self.counts.items()):
            c.add_metric([method, transport], n)
        yield c
        h = HistogramMetricFamily(
            "dubhe_rpc_request_seconds",
            "JSON-RPC request handling time (HTTP body or WS message)",
            labels=["transport"],
        )
        for transport, b in sorted(self.buckets.items()):
            cum, acc = [], 0
            for bound, n in zip((*LATENCY_BUCKETS, float("inf")), b, strict=True):
                acc += n
                cum.append((str(bound) if bound != float("inf") else "+Inf", acc))
            h.add_metric([transport], cum, self.sums[transport])
        yield h


class SchedulerActivity:
    """Where blocks' transactions ran: the last block's figures and totals since start
    (``dubhe_status.scheduler``). Updated from the event loop after each block."""

    def __init__(self) -> None:
        self.blocks_by_path: dict[str, int] = dict.fromkeys(PATHS, 0)
        self.worker_txs: list[int] = [0]
        self.chunks = 0
        self.handed_back = 0
        self.re_executions = 0
        self.last: dict[str, object] | None = None

    def observe(self, number: int, stats: BlockStats) -> None:
        d = stats.as_dict()
        self.last = {
            "number": number,
            **{k: d[k] for k in ("path", "mode", "workers", "workerTxs", "chunks", "handedBack",
                                 "reExecutions")},
        }
        self.blocks_by_path[stats.path] = self.blocks_by_path.get(stats.path, 0) + 1
        per = list(d["workerTxs"])  # type: ignore[call-overload]
        while len(self.worker_txs) < len(per):
            self.worker_txs.append(0)
        for k, n in enumerate(per):
            self.worker_txs[k] += int(n)
        self.chunks += stats.chunks
        self.handed_back += stats.handed_back
        self.re_executions += stats.re_executions

    def as_dict(self) -> dict[str, object]:
        return {
            "lastBlock": self.last,
            "totals": {
                "blocksByPath": dict(self.blocks_by_path),
                "workerTxs": list(self.worker_txs),
                "chunks": self.chunks,
                "handedBack": self.handed_back,
                "reExecutions": self.re_executions,
            },
        }


def worker_label(k: int) -> str:
    """``coordinator`` for worker 0, else the worker's number."""
    return "coordinator" if k == 0 else str(k)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        # The two per-request series are kept in plain counters and exposed by a collector at
        # scrape time: prometheus_client's labelled children cost microseconds per request.
        self.rpc = RequestStats()
        r.register(self.rpc)
        self.errors = Counter(
            "dubhe_rpc_errors", "JSON-RPC error responses by code", ["code"], registry=r
        )
        self.rate_limited = Counter(
            "dubhe_rate_limited", "Requests refused by the rate limit", ["transport"], registry=r
        )
        self.unauthorized = Counter(
            "dubhe_admin_unauthorized", "Admin calls without a valid token", registry=r
        )
        self.ws_connections = Gauge(
            "dubhe_ws_connections", "Open WebSocket connections", registry=r
        )
        self.ws_rejected = Counter(
            "dubhe_ws_rejected_handshakes",
            "WebSocket handshakes refused (max_connections)",
            registry=r,
        )
        self.ws_closed = Counter(
            "dubhe_ws_closed",
            "WebSocket connections closed by the server, by reason",
            ["reason"],
            registry=r,
        )
        self.ws_subscriptions = Gauge("dubhe_ws_subscriptions", "Active subscriptions", registry=r)
        # Connection protection (node.server.conn_guard), by listener (http, ws).
        self.connections = Gauge(
            "dubhe_connections", "Open TCP connections by listener", ["listener"], registry=r
        )
        self.conn_refused = Counter(
            "dubhe_connections_refused",
            "Connections refused (max_connections: 503, the listener is full, none is idle and "
            "64 newcomers are already on probation; per_ip: 503, the address is at "
            "max_connections_per_ip; late_head: 408, admitted on probation at the cap but its "
            "request head was not complete in time)",
            ["listener", "reason"],
            registry=r,
        )
        self.conn_drained = Counter(
            "dubhe_connections_drained",
            "Connections closed to admit a new one at the cap (idle: an idle keep-alive one; "
            "slow_head: the one whose request head had been incomplete longest)",
            ["listener", "kind"],
            registry=r,
        )
        self.http_timeouts = Counter(
            "dubhe_http_timeouts",
            "Requests ended by a timeout (header: head not complete in header_timeout_s; "
            "body: body not received in body_timeout_s)",
            ["listener", "phase"],
            registry=r,
        )
        self.http_malformed = Counter(
            "dubhe_http_malformed",
            "Malformed HTTP requests refused (400, or 415 for an unsupported Content-Encoding)",
            ["listener", "status"],
            registry=r,
        )
        self.browser_refused = Counter(
            "dubhe_browser_refused",
            "Requests refused by the browser-origin rules (host: api.vhosts; origin: "
            "api.cors_origins / api.ws_origins; content_type: not application/json)",
            ["listener", "reason"],
            registry=r,
        )
        self.descriptors = Gauge(
            "dubhe_descriptor_budget",
            "File descriptors: limit (the soft RLIMIT_NOFILE after raising it), connections "
            "(what the listeners may hold), reserved (the rest of the node)",
            ["part"],
            registry=r,
        )
        self.notifications = Counter(
            "dubhe_ws_notifications", "Notifications queued", ["kind"], registry=r
        )
        self.head = Gauge("dubhe_head_block", "Latest block number", registry=r)
        self.blocks = Counter("dubhe_blocks", "Blocks produced", registry=r)
        self.txs = Counter(
            "dubhe_txs_included", "Transactions included in blocks", ["status"], registry=r
        )
        self.mempool = Gauge("dubhe_mempool_size", "Pending transactions", registry=r)
        self.tx_rejected = Counter(
            "dubhe_tx_rejected", "Transactions rejected at submission", ["cause"], registry=r
        )
        self.block_seconds = Histogram(
            "dubhe_block_build_seconds",
            "Time to execute and commit a block",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.parallel_efficiency = Gauge(
            "dubhe_scheduler_parallel_efficiency",
            "Last block: serial-equivalent time / (wall x workers)",
            registry=r,
        )
        self.conflict_rate = Gauge(
            "dubhe_scheduler_conflict_rate", "Last block: conflicts / transactions", registry=r
        )
        self.re_executions = Counter(
            "dubhe_scheduler_re_executions", "Transaction re-executions", registry=r
        )
        self.sched_blocks = Counter(
            "dubhe_scheduler_blocks",
            "Blocks by execution path (adaptive gate: parallel/sequential; none: not gated)",
            ["mode"],
            registry=r,
        )
        self.parallel_gain = Gauge(
            "dubhe_scheduler_parallel_gain",
            "Last measured speed of the parallel path vs block order",
            registry=r,
        )
        self.sched_paths = Counter(
            "dubhe_scheduler_path_blocks",
            "Blocks by the code path that produced their outcomes "
            "(in-order, strategy, contention-fallback, guard-rerun)",
            ["path"],
            registry=r,
        )
        self.worker_txs = Counter(
            "dubhe_scheduler_worker_txs",
            "Transaction executions by worker (coordinator: the block producer's thread)",
            ["worker"],
            registry=r,
        )
        self.sched_chunks = Counter(
            "dubhe_scheduler_chunks",
            "Units of work handed to workers other than the coordinator",
            registry=r,
        )
        self.handed_back = Counter(
            "dubhe_scheduler_handed_back",
            "Transactions worker processes handed back to the coordinator",
            registry=r,
        )
        self.sched_activity = SchedulerActivity()
        self.tx_accepted = Counter(
            "dubhe_tx_accepted",
            "Transactions admitted to the mempool, by submission method",
            ["method"],
            registry=r,
        )

        self.l1_head = Gauge(
            "dubhe_l1_head", "Latest L1 head seen, by chain", ["chain"], registry=r
        )
        self.l1_endpoint_score = Gauge(
            "dubhe_l1_endpoint_score",
            "L1 endpoint health score (0..1)",
            ["chain", "endpoint"],
            registry=r,
        )
        self.l1_fetches = Counter(
            "dubhe_l1_code_fetches",
            "Contract code fetches from L1s",
            ["chain", "result"],
            registry=r,
        )
        self.l1_reloads = Counter(
            "dubhe_l1_code_reloads",
            "Contracts hot-reloaded after an L1 upgrade",
            ["chain"],
            registry=r,
        )
        self.l1_events = Counter("dubhe_l1_events", "L1 events seen", ["chain"], registry=r)
        self.l1_reorgs = Counter(
            "dubhe_l1_reorgs", "L1 reorganisations handled", ["chain"], registry=r
        )

    def observe_block(self, stats: BlockStats, number: int = 0) -> None:
        self.parallel_efficiency.set(stats.parallel_efficiency)
        self.conflict_rate.set(stats.conflict_rate)
        self.re_executions.inc(stats.re_executions)
        self.sched_blocks.labels(stats.mode or "none").inc()
        if stats.gain:
            self.parallel_gain.set(stats.gain)
        self.sched_paths.labels(stats.path).inc()
        for k, n in enumerate(stats.worker_txs or [stats.executions]):
            if n:
                self.worker_txs.labels(worker_label(k)).inc(n)
        if stats.chunks:
            self.sched_chunks.inc(stats.chunks)
        if stats.handed_back:
            self.handed_back.inc(stats.handed_back)
        self.sched_activity.observe(number, stats)

    def render(self) -> bytes:
        return generate_latest(self.registry)

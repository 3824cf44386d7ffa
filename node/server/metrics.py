"""Prometheus metrics (prometheus_client), on a per-node registry served at ``/metrics``."""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from node.core.execution import BlockStats

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

    def observe_block(self, stats: BlockStats) -> None:
        self.parallel_efficiency.set(stats.parallel_efficiency)
        self.conflict_rate.set(stats.conflict_rate)
        self.re_executions.inc(stats.re_executions)
        self.sched_blocks.labels(stats.mode or "none").inc()
        if stats.gain:
            self.parallel_gain.set(stats.gain)

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""Prometheus metrics, updated live (per chunk), served at ``GET /metrics``.

Toxiproxy's two counters keep their names and labels
(``toxiproxy_proxy_{received,sent}_bytes_total{direction,proxy,listener,upstream}``) but move while
a connection runs, not only when it closes. Lab extras: open and total connections per proxy,
and toxic activations: exactly one per ``toxic_fired`` event (a toxic starting to act on a
connection, or a cut, close or reset it performs; see ``toxics/base.py``, "Firing").
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class ProxyMetrics:
    """One registry per server, so tests can run several servers in one process."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["direction", "proxy", "listener", "upstream"]
        self.received = Counter(
            "toxiproxy_proxy_received_bytes", "Bytes the proxy read from the source side.",
            labels, registry=self.registry,
        )
        self.sent = Counter(
            "toxiproxy_proxy_sent_bytes", "Bytes the proxy wrote to the destination side.",
            labels, registry=self.registry,
        )
        self.open_connections = Gauge(
            "dubhe_proxy_open_connections", "Client connections open now.", ["proxy"],
            registry=self.registry,
        )
        self.connections = Counter(
            "dubhe_proxy_connections", "Client connections accepted.", ["proxy"],
            registry=self.registry,
        )
        self.activations = Counter(
            "dubhe_proxy_toxic_activations",
            "Times a toxic started acting on a connection, or cut, closed or reset one.",
            ["proxy", "toxic", "type", "stream"], registry=self.registry,
        )

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

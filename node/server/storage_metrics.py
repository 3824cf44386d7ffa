"""``/metrics`` series of the state store, read at scrape time from its
:class:`~node.state.writer.StorageStats` (updated by the store's own threads):

- ``dubhe_storage_errors_total{kind}``: failed reads and writes; ``corruption`` counts data
  that failed its checksum (each answered -32020), ``io`` any other storage failure;
- ``dubhe_storage_syncs_total``: fsync'd group commits (one WAL fsync and one journal fdatasync
  each), and ``dubhe_storage_synced_writes_total`` the writes they carried: their ratio is the
  group-commit factor (writes sharing one fsync);
- ``dubhe_storage_sync_seconds_total``: time spent writing and syncing groups.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from node.state.writer import StorageStats


class StorageCollector(Collector):
    def __init__(self, stats: StorageStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        errors = CounterMetricFamily(
            "dubhe_storage_errors", "Storage reads and writes that failed, by kind", labels=["kind"]
        )
        for kind, n in sorted(s.errors.items()):
            errors.add_metric([kind], n)
        yield errors
        yield CounterMetricFamily(
            "dubhe_storage_syncs", "Fsync'd group commits", value=s.groups
        )
        yield CounterMetricFamily(
            "dubhe_storage_synced_writes", "Writes carried by fsync'd group commits",
            value=s.grouped_writes,
        )
        yield CounterMetricFamily(
            "dubhe_storage_sync_seconds", "Seconds spent writing and syncing groups",
            value=s.group_seconds,
        )

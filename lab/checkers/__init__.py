"""Checkers: pure functions over client histories, the proxy's fault events and component logs
that turn a run into figures and verdicts (after Jepsen's checkers and hive's result files).

* ``heads.py`` — gaps, duplicates, order and hashes of head subscriptions vs the chain;
* ``connections.py`` — close-code census, handshake statuses, reconnect-time distribution;
* ``txs.py`` — no acknowledged transaction lost;
* ``nginx_logs.py`` — error-log lines by level and message, access-log statuses;
* ``sometimes.py`` — fault signals that must be observed at least once;
* ``expect.py`` — expectations (expected, observed, verdict); ``record.py`` — the result record;
* ``load.py`` — the only I/O: log offsets and slices, histories and records on disk.
"""

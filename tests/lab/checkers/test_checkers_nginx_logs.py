"""nginx log matchers on lines exactly as nginx 1.22 writes them (lab format for access)."""

from __future__ import annotations

import pytest

from lab.checkers.nginx_logs import (
    access_lines,
    error_lines,
    match,
    parse_error_line,
    signature,
    signature_counts,
    status_census,
)

ERROR_LOG = """\
2026/12/01 15:48:01 [notice] 4242#4242: using the "epoll" event method
2026/12/01 15:48:04 [info] 4243#4243: *17 upstream timed out (110: Connection timed out) while proxying upgraded connection, client: 127.0.0.1, server: localhost, request: "GET /ws HTTP/1.1", upstream: "http://127.0.0.1:20226/ws", host: "127.0.0.1:16773"
2026/12/01 15:48:05 [error] 4243#4243: *20 limiting connections by zone "perip", client: 127.0.0.1, server: localhost, request: "GET /ws HTTP/1.1", host: "127.0.0.1:16773"
2026/12/01 15:48:06 [alert] 4243#4243: *31 16 worker_connections are not enough while connecting to upstream, client: 127.0.0.1, server: localhost, request: "GET /ws HTTP/1.1"
2026/12/01 15:48:07 [info] 4243#4243: *40 client sent plain HTTP request to HTTPS port while reading client request headers, client: 127.0.0.1
2026/12/01 15:48:08 [error] 4243#4243: *41 limiting requests, excess: 5.120 by zone "websocket", client: 127.0.0.1, server: localhost, request: "GET /ws HTTP/1.1"
not an nginx line
"""  # noqa: E501 (real nginx lines)

ACCESS_LOG = """\
127.0.0.1:40112 [2026-12-01T15:48:04+00:00] "GET /ws HTTP/1.1" 101 1234 rt=3.002 uct=0.001 uht=0.002 urt=3.001 us=101 ua="Python/3.11 websockets/17.4" cid=17
127.0.0.1:40114 [2026-12-01T15:48:05+00:00] "GET /ws HTTP/1.1" 503 190 rt=0.000 uct=- uht=- urt=- us=- ua="Python/3.11 websockets/17.4" cid=20
127.0.0.1:40116 [2026-12-01T15:48:05+00:00] "POST / HTTP/1.1" 200 61 rt=0.002 uct=0.000 uht=0.002 urt=0.002 us=200 ua="-" cid=21
"""  # noqa: E501 (real nginx lines)


def test_error_lines_by_signature_and_level() -> None:
    lines = error_lines(ERROR_LOG.splitlines())
    assert len(lines) == 6
    first = parse_error_line(ERROR_LOG.splitlines()[1])
    assert first is not None and (first.level, first.connection) == ("info", 17)
    counts = signature_counts(lines)
    assert counts["ws_upstream_timeout"] == 1
    assert counts["limit_conn"] == 1 and counts["limit_req"] == 1
    assert counts["worker_connections"] == 1
    assert counts["ssl_handshake"] == 0  # a signature that did not occur counts 0
    assert counts["plain_http_to_https"] == 1
    # the 1006 cause is at info: an "error"-level filter would not see it
    assert match(lines, r"upstream timed out", level="error") == []
    with pytest.raises(ValueError, match="unknown nginx signature"):
        signature(lines, "nope")
    with pytest.raises(ValueError, match="unknown nginx log level"):
        match(lines, "x", level="loud")


def test_access_statuses() -> None:
    lines = access_lines(ACCESS_LOG.splitlines())
    assert status_census(lines, "/ws") == {101: 1, 503: 1}
    assert status_census(lines) == {101: 1, 200: 1, 503: 1}
    assert lines[0].request_time == 3.002

"""The dispatcher in-process: internal errors, timeouts, notifications, structured logs."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import orjson
import pytest

from node.rpc.jsonrpc import Params
from node.server import logs
from node.server.dispatch import Call, Dispatcher
from node.server.methods.table import MethodTable
from node.server.metrics import Metrics
from node.server.security import AuditLog, TokenBucket, check_bearer


def make(methods: dict[str, Any], timeout_s: float = 1.0) -> Dispatcher:
    return Dispatcher(
        MethodTable.of(methods),
        metrics=Metrics(),
        audit=AuditLog(None),
        timeout_s=timeout_s,
        max_batch=10,
    )


def call() -> Call:
    return Call("http", ("127.0.0.1", 5000), False, None)


async def test_internal_error_hides_traceback_and_logs_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(p: Params, c: Call) -> None:
        raise RuntimeError("secret internals")

    d = make({"boom": boom})
    with caplog.at_level(logging.ERROR, logger="node.rpc"):
        out = await d.handle(b'{"jsonrpc":"2.0","id":1,"method":"boom"}', call())
    assert out is not None
    err = orjson.loads(out)["error"]
    assert err["code"] == -32603
    assert "secret" not in err["message"] and "Traceback" not in err["message"]
    rid = err["message"].split("request id ")[1].rstrip(")")
    rec = caplog.records[-1]
    assert rec.request_id == rid and rec.exc_info is not None  # type: ignore[attr-defined]


async def test_async_handler_timeout() -> None:
    async def slow(p: Params, c: Call) -> int:
        await asyncio.Event().wait()  # never answers: only the dispatcher's timeout ends it
        return 1

    d = make({"slow": slow}, timeout_s=0.05)
    out = await d.handle(b'{"jsonrpc":"2.0","id":1,"method":"slow"}', call())
    assert out is not None
    err = orjson.loads(out)["error"]
    assert err["code"] == -32005 and "timed out after 50 ms" in err["message"]


async def test_notification_errors_are_silent_and_rate_limit_counts_per_item() -> None:
    d = make({"ok": lambda p, c: 1})
    assert await d.handle(b'{"jsonrpc":"2.0","method":"nope"}', call()) is None
    c = Call("http", None, False, TokenBucket(0.001, 2))
    body = orjson.dumps([{"jsonrpc": "2.0", "id": i, "method": "ok"} for i in range(3)])
    out = orjson.loads(await d.handle(body, c) or b"")
    assert [("result" in r) for r in out] == [True, True, False]
    assert out[2]["error"]["code"] == -32005


def test_bearer_check() -> None:
    assert check_bearer("Bearer t0ken", "t0ken")
    assert not check_bearer("Bearer wrong", "t0ken")
    assert not check_bearer("Basic t0ken", "t0ken")
    assert not check_bearer("Bearer ", "")  # no token configured: admin is disabled


def test_json_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    logs.setup("INFO", "json")
    try:
        logging.getLogger("node.test").info("hello %s", "world", extra={"request_id": "abc"})
        logging.getLogger("node.test").debug("hidden")
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
    lines = [json.loads(x) for x in capsys.readouterr().err.strip().splitlines()]
    assert len(lines) == 1
    assert (
        lines[0]["msg"] == "hello world"
        and lines[0]["level"] == "info"
        and lines[0]["request_id"] == "abc"
    )
    assert lines[0]["logger"] == "node.test" and lines[0]["time"].endswith("Z")


def test_request_stats_render_as_prometheus_counter_and_histogram() -> None:
    m = Metrics()
    m.rpc.count("eth_chainId", "http")
    m.rpc.count("eth_chainId", "http")
    m.rpc.observe("ws", 0.0001)  # on a bound: counted in that bucket (le)
    m.rpc.observe("ws", 10.0)
    text = m.render().decode()
    assert 'dubhe_rpc_requests_total{method="eth_chainId",transport="http"} 2.0' in text
    assert 'dubhe_rpc_request_seconds_bucket{le="0.0001",transport="ws"} 1.0' in text
    assert 'dubhe_rpc_request_seconds_bucket{le="5.0",transport="ws"} 1.0' in text
    assert 'dubhe_rpc_request_seconds_bucket{le="+Inf",transport="ws"} 2.0' in text
    assert 'dubhe_rpc_request_seconds_count{transport="ws"} 2.0' in text


class _FakeTransport:
    def __init__(self, closing: bool) -> None:
        self.closing = closing

    def is_closing(self) -> bool:
        return self.closing


def test_http_connection_table_sweeps_closed_connections() -> None:
    from node.config import Config
    from node.server.http import HttpShell

    shell = HttpShell(Config().api, admin_token="", dispatcher=make({}), metrics=Metrics(),
                      health=dict, refresh_gauges=lambda: None)
    live = [_FakeTransport(False) for _ in range(10)]
    for t in live + [_FakeTransport(True) for _ in range(2000)]:
        shell._conns[t] = (TokenBucket(1.0, 1), None)
    shell._sweep()
    assert set(shell._conns) == set(live)
    assert shell._sweep_at == 1024

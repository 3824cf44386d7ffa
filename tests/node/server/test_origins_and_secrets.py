"""Browser-origin rules (node.server.origins) and secret redaction (node.server.logs, config
errors), in-process."""

from __future__ import annotations

import io
import logging

import pytest

from node import config
from node.core.errors import ConfigError
from node.server import logs
from node.server.origins import OriginRules, VirtualHosts, is_json


@pytest.mark.parametrize(("rule", "origin", "ok"), [
    ("localhost", "http://localhost", True),
    ("localhost", "https://localhost:8443", True),
    ("http://localhost", "https://localhost", False),
    ("http://localhost:3000", "http://localhost:3000", True),
    ("http://localhost:3000", "http://localhost:3001", False),
    ("[::1]", "http://[::1]:80", True),
    ("app.example", "https://APP.example", True),
    ("app.example", "https://app.example.evil", False),
    ("*", "null", True),
    ("localhost", "null", False),
    ("localhost", "not a url at all", False),
])
def test_origin_rules_follow_geths(rule: str, origin: str, ok: bool) -> None:
    assert OriginRules([rule]).allows(origin) is ok


def test_no_rules_allow_no_origin() -> None:
    assert not OriginRules([]).allows("http://localhost")


@pytest.mark.parametrize(("host", "ok"), [
    (None, True), ("", True), ("localhost", True), ("localhost:1", True), ("localhost.", True),
    ("127.0.0.1", True), ("[::1]:8545", True), ("[fe80::1]", True), ("evil", False),
    ("evil:8545", False), ("localhost.evil", False),
])
def test_virtual_hosts(host: str | None, ok: bool) -> None:
    assert VirtualHosts(["localhost"]).allows(host) is ok
    assert VirtualHosts(["*"]).allows(host)


def test_json_media_types() -> None:
    assert is_json("application/json; charset=UTF-8") and is_json("application/jsonrequest")
    assert not is_json(None) and not is_json("text/plain") and not is_json("application/jsonx")


def _capture(secrets: list[str]) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    h = logging.StreamHandler(out)
    h.addFilter(logs.RedactingFilter(secrets))
    h.setFormatter(logs.JsonFormatter())
    lg = logging.getLogger(f"test.redact.{id(out)}")
    lg.handlers[:] = [h]
    lg.propagate = False
    lg.setLevel(logging.DEBUG)
    return lg, out


def test_secret_values_are_redacted_in_messages_args_extras_and_tracebacks() -> None:
    lg, out = _capture(["tok-123"])
    lg.info("header was %s", "Bearer tok-123")
    lg.info("plain", extra={"api_token": "whatever", "authorization": "x", "peer": "1.2.3.4"})
    try:
        raise ValueError("bad tok-123")
    except ValueError:
        lg.exception("failed")
    text = out.getvalue()
    assert "tok-123" not in text and "whatever" not in text
    assert text.count("[redacted]") >= 4 and "1.2.3.4" in text


def test_aiohttps_subprotocol_warning_is_rewritten_without_values() -> None:
    out = io.StringIO()
    h = logging.StreamHandler(out)
    h.addFilter(logs.RedactingFilter([]))
    lg = logging.getLogger("aiohttp.websocket")
    old = lg.handlers[:], lg.propagate
    lg.handlers[:] = [h]
    lg.propagate = False
    try:
        lg.warning("%s: Client protocols %r don\u2019t overlap server-known ones %r", "x",
                   ["Bearer.abc"], ())
    finally:
        lg.handlers[:], lg.propagate = old
    assert "abc" not in out.getvalue() and "subprotocols" in out.getvalue()


@pytest.mark.parametrize("value", [123456789, 1.5, ["a-secret-list"], True])
def test_config_errors_never_echo_a_secret(value: object) -> None:
    """Before: 'security.admin_token: expected a string, got int 123456789'."""
    with pytest.raises(ConfigError) as e:
        config.from_dict({"security": {"admin_token": value}})
    (key, msg), = e.value.errors
    assert key == "security.admin_token" and "expected a string" in msg
    assert str(value) not in msg and "a-secret" not in msg


def test_config_errors_redact_secret_values_echoed_under_other_keys() -> None:
    with pytest.raises(ConfigError) as e:
        config.from_dict({"security": {"admin_token": "0xsekret"}, "adapters": {
            "sui": {"rpc_url": "http://x", "package_ids": ["0xsekret!"]}}})
    assert "sekret" not in str(e.value) and "[redacted]" in str(e.value)

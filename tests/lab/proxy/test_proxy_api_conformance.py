"""Toxiproxy 2.12 HTTP API conformance, route by route, against ``base_url`` only.

Nothing here uses lab internals, so pointing ``LAB_TOXIPROXY_URL`` at Shopify's server runs the
same checks against it. Expected codes, JSON shapes and error texts come from Toxiproxy's
``api.go`` and ``api_test.go`` (github.com/Shopify/toxiproxy, v2.12.0).

Only behaviour both servers share is checked here. Where the lab's proxy differs on purpose
(docs/creating-toxics.md, "Where the lab's proxy differs from Toxiproxy 2.12": strict
attributes, a normalized ``stream``, the 127.0.0.1 default for an empty host, the extras), its
own behaviour is tested in ``test_proxy_api_extras.py`` and the toxic tests, not claimed here.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

# "Logger" is Go's rendering ({}) of an untagged field of Toxiproxy's proxy (2.8 on).
PROXY_KEYS = {"name", "listen", "upstream", "enabled", "Logger", "toxics"}
TOXIC_KEYS = {"attributes", "name", "type", "stream", "toxicity"}


class Api:
    """Raw HTTP: status, headers and decoded body, so nothing is hidden by a client library."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def call(self, method: str, path: str, body: Any = None, raw: str | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        async with self.session.request(method, self.base + path, data=data,
                                        headers=headers or {}) as resp:
            text = await resp.text()
            try:
                parsed: Any = json.loads(text) if text else None
            except ValueError:
                parsed = text
            return resp.status, parsed, resp.headers


@pytest.fixture
async def api(base_url: str) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        a = Api(session, base_url)
        created_before = set((await a.call("GET", "/proxies"))[1])
        try:
            yield a
        finally:
            for name in set((await a.call("GET", "/proxies"))[1]) - created_before:
                await a.call("DELETE", f"/proxies/{name}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def make_proxy(api: Api, name: str, upstream: str = "127.0.0.1:9") -> dict[str, Any]:
    status, body, _ = await api.call("POST", "/proxies",
                                     {"name": name, "upstream": upstream, "listen": "127.0.0.1:0"})
    assert status == 201, body
    assert isinstance(body, dict)
    return body


def assert_error(status: int, body: Any, headers: Any, code: int, message: str) -> None:
    assert status == code
    assert body == {"error": message, "status": code}
    assert headers["Content-Type"].startswith("text/plain")


# -- /version, middleware -------------------------------------------------------------------
async def test_version_is_json(api: Api) -> None:
    status, body, headers = await api.call("GET", "/version")
    assert status == 200
    assert isinstance(body, dict) and isinstance(body["version"], str)
    assert headers["Content-Type"].startswith("application/json")


async def test_browser_user_agent_is_forbidden(api: Api) -> None:
    status, body, _ = await api.call("GET", "/proxies", headers={
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    assert status == 403
    assert "User agent not allowed" in body
    status, _, _ = await api.call("GET", "/proxies", headers={"User-Agent": "curl/8.0"})
    assert status == 200


async def test_unknown_route_is_404(api: Api) -> None:
    status, _, _ = await api.call("GET", "/nope")
    assert status == 404


# -- /proxies ----------------------------------------------------------------------------------
async def test_create_proxy_returns_201_with_resolved_listen(api: Api) -> None:
    body = await make_proxy(api, "conf_create", "127.0.0.1:6379")
    assert set(body) == PROXY_KEYS
    assert body["name"] == "conf_create" and body["upstream"] == "127.0.0.1:6379"
    assert body["enabled"] is True and body["toxics"] == []
    host, _, port = body["listen"].rpartition(":")
    assert host == "127.0.0.1" and int(port) > 0


async def test_list_proxies_is_a_map(api: Api) -> None:
    await make_proxy(api, "conf_list_a")
    await make_proxy(api, "conf_list_b")
    status, body, _ = await api.call("GET", "/proxies")
    assert status == 200 and isinstance(body, dict)
    assert {"conf_list_a", "conf_list_b"} <= set(body)
    assert set(body["conf_list_a"]) == PROXY_KEYS


async def test_create_duplicate_is_409(api: Api) -> None:
    await make_proxy(api, "conf_dup")
    got = await api.call("POST", "/proxies", {"name": "conf_dup", "upstream": "127.0.0.1:9",
                                              "listen": "127.0.0.1:0"})
    assert_error(*got, 409, "proxy already exists")


@pytest.mark.parametrize(("body", "message"), [
    ({"upstream": "127.0.0.1:9"}, "missing required field: name"),
    ({"name": "conf_noup"}, "missing required field: upstream"),
])
async def test_create_missing_field_is_400(api: Api, body: dict[str, str], message: str) -> None:
    assert_error(*await api.call("POST", "/proxies", body), 400, message)


async def test_create_bad_json_is_400(api: Api) -> None:
    status, body, _ = await api.call("POST", "/proxies", raw="{not json")
    assert status == 400 and body["status"] == 400
    assert body["error"].startswith("bad request body")


async def test_create_on_busy_port_is_500(api: Api) -> None:
    first = await make_proxy(api, "conf_busy_a")
    got = await api.call("POST", "/proxies", {"name": "conf_busy_b", "upstream": "127.0.0.1:9",
                                              "listen": first["listen"]})
    assert_error(*got, 500, f"listen tcp {first['listen']}: bind: address already in use")


async def test_port_conflict_names_the_resolved_address(api: Api) -> None:
    # Toxiproxy's TestCreateProxyPortConflict: "localhost:<port>" twice; the error names the
    # address the name resolved to.
    port = free_port()
    entry = {"name": "conf_conflict_a", "upstream": "127.0.0.1:9", "listen": f"localhost:{port}"}
    status, _, _ = await api.call("POST", "/proxies", entry)
    assert status == 201
    got = await api.call("POST", "/proxies", dict(entry, name="conf_conflict_b"))
    assert_error(*got, 500, f"listen tcp 127.0.0.1:{port}: bind: address already in use")


async def test_proxy_object_is_key_for_key(api: Api) -> None:
    made = await make_proxy(api, "conf_keys")
    assert list(made) == ["name", "listen", "upstream", "enabled", "Logger", "toxics"]
    assert made["Logger"] == {}


async def test_get_proxy_and_404(api: Api) -> None:
    made = await make_proxy(api, "conf_get")
    status, body, _ = await api.call("GET", "/proxies/conf_get")
    assert status == 200 and body == made
    assert_error(*await api.call("GET", "/proxies/conf_missing"), 404, "proxy not found")


@pytest.mark.parametrize("method", ["PATCH", "POST"])
async def test_update_proxy_disable_refuses_connections(api: Api, method: str) -> None:
    made = await make_proxy(api, "conf_upd")
    status, body, _ = await api.call(method, "/proxies/conf_upd", {"enabled": False})
    assert status == 200 and body["enabled"] is False
    assert body["upstream"] == made["upstream"]  # omitted fields keep their values
    host, _, port = made["listen"].rpartition(":")
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(host, int(port))
    status, body, _ = await api.call(method, "/proxies/conf_upd", {"enabled": True})
    assert status == 200 and body["enabled"] is True
    _, writer = await asyncio.open_connection(host, int(port))
    writer.close()


async def test_update_proxy_upstream(api: Api) -> None:
    await make_proxy(api, "conf_upd_up")
    status, body, _ = await api.call("PATCH", "/proxies/conf_upd_up", {"upstream": "127.0.0.1:10"})
    assert status == 200 and body["upstream"] == "127.0.0.1:10" and body["enabled"] is True


async def test_update_missing_proxy_is_404(api: Api) -> None:
    got = await api.call("PATCH", "/proxies/conf_missing", {"enabled": False})
    assert_error(*got, 404, "proxy not found")


async def test_delete_proxy_is_204(api: Api) -> None:
    await make_proxy(api, "conf_del")
    status, body, _ = await api.call("DELETE", "/proxies/conf_del")
    assert status == 204 and body is None
    assert_error(*await api.call("GET", "/proxies/conf_del"), 404, "proxy not found")
    assert_error(*await api.call("DELETE", "/proxies/conf_del"), 404, "proxy not found")


# -- /populate -----------------------------------------------------------------------------
async def test_populate_creates_and_is_201(api: Api) -> None:
    status, body, _ = await api.call("POST", "/populate", [
        {"name": "conf_pop_a", "upstream": "127.0.0.1:9", "listen": "127.0.0.1:0"},
        {"name": "conf_pop_b", "upstream": "127.0.0.1:9", "listen": "127.0.0.1:0",
         "enabled": False},
    ])
    assert status == 201
    assert [p["name"] for p in body["proxies"]] == ["conf_pop_a", "conf_pop_b"]
    assert [p["enabled"] for p in body["proxies"]] == [True, False]
    assert all(set(p) == PROXY_KEYS for p in body["proxies"])


async def test_populate_keeps_identical_proxy(api: Api) -> None:
    port = free_port()
    entry = {"name": "conf_pop_same", "upstream": "127.0.0.1:9", "listen": f"127.0.0.1:{port}"}
    status, first, _ = await api.call("POST", "/populate", [entry])
    assert status == 201
    status, second, _ = await api.call("POST", "/populate", [entry])
    assert status == 201 and second["proxies"] == first["proxies"]


async def test_populate_missing_name_names_the_entry(api: Api) -> None:
    status, body, _ = await api.call("POST", "/populate", [
        {"name": "conf_pop_ok", "upstream": "127.0.0.1:9", "listen": "127.0.0.1:0"},
        {"upstream": "127.0.0.1:9", "listen": "127.0.0.1:0"},
    ])
    assert status == 400
    assert body["error"] == "missing required field: name at proxy 2"
    assert body["status"] == 400 and not body["proxies"]  # [] here; Go may send null
    # validation happens before anything is created
    assert (await api.call("GET", "/proxies/conf_pop_ok"))[0] == 404


# -- toxics ----------------------------------------------------------------------------------
async def test_toxic_create_defaults_and_200(api: Api) -> None:
    await make_proxy(api, "conf_tox")
    status, body, _ = await api.call("POST", "/proxies/conf_tox/toxics",
                                     {"type": "latency", "attributes": {"latency": 100}})
    assert status == 200
    assert set(body) == TOXIC_KEYS
    assert body["name"] == "latency_downstream" and body["stream"] == "downstream"
    assert body["toxicity"] == 1
    assert body["attributes"] == {"latency": 100, "jitter": 0}


async def test_toxic_list_get_update_delete(api: Api) -> None:
    await make_proxy(api, "conf_tox2")
    await api.call("POST", "/proxies/conf_tox2/toxics",
                   {"type": "latency", "name": "lat", "stream": "upstream",
                    "attributes": {"latency": 100, "jitter": 5}})
    status, listed, _ = await api.call("GET", "/proxies/conf_tox2/toxics")
    assert status == 200 and [t["name"] for t in listed] == ["lat"]
    status, got, _ = await api.call("GET", "/proxies/conf_tox2/toxics/lat")
    assert status == 200 and got == listed[0] and got["stream"] == "upstream"
    status, proxy, _ = await api.call("GET", "/proxies/conf_tox2")
    assert proxy["toxics"] == listed
    for method, jitter in (("PATCH", 7), ("POST", 9)):
        status, upd, _ = await api.call(method, "/proxies/conf_tox2/toxics/lat",
                                        {"attributes": {"jitter": jitter}, "toxicity": 0.5})
        assert status == 200
        assert upd["attributes"] == {"latency": 100, "jitter": jitter}  # merged
        assert upd["toxicity"] == 0.5 and upd["name"] == "lat" and upd["stream"] == "upstream"
    status, body, _ = await api.call("DELETE", "/proxies/conf_tox2/toxics/lat")
    assert status == 204 and body is None
    assert_error(*await api.call("GET", "/proxies/conf_tox2/toxics/lat"), 404, "toxic not found")
    assert_error(*await api.call("DELETE", "/proxies/conf_tox2/toxics/lat"), 404,
                 "toxic not found")
    got = await api.call("PATCH", "/proxies/conf_tox2/toxics/lat", {"toxicity": 1})
    assert_error(*got, 404, "toxic not found")


async def test_toxic_errors(api: Api) -> None:
    await make_proxy(api, "conf_tox3")
    path = "/proxies/conf_tox3/toxics"
    assert_error(*await api.call("POST", path, {"type": "nope"}), 400, "invalid toxic type")
    assert_error(*await api.call("POST", path, {"attributes": {}}), 400, "invalid toxic type")
    assert_error(*await api.call("POST", path, {"type": "latency", "stream": "sideways"}), 400,
                 "stream was invalid, can be either upstream or downstream")
    await api.call("POST", path, {"type": "latency"})
    assert_error(*await api.call("POST", path, {"type": "latency"}), 409, "toxic already exists")
    # names are unique across both streams
    got = await api.call("POST", path, {"type": "latency", "name": "latency_downstream",
                                        "stream": "upstream"})
    assert_error(*got, 409, "toxic already exists")
    got = await api.call("POST", "/proxies/conf_missing/toxics", {"type": "latency"})
    assert_error(*got, 404, "proxy not found")
    status, body, _ = await api.call("POST", path, raw="[")
    assert status == 400 and body["error"].startswith("bad request body")


async def test_every_stock_toxic_type_is_accepted(api: Api) -> None:
    await make_proxy(api, "conf_types")
    for t in ("noop", "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
              "limit_data"):
        status, body, _ = await api.call("POST", "/proxies/conf_types/toxics", {"type": t})
        assert status == 200, (t, body)
        assert body["type"] == t and body["name"] == f"{t}_downstream"


async def test_stream_is_case_insensitive(api: Api) -> None:
    await make_proxy(api, "conf_case")
    status, body, _ = await api.call("POST", "/proxies/conf_case/toxics",
                                     {"type": "latency", "stream": "UpStream"})
    assert status == 200 and body["name"] == "latency_UpStream"


# -- /reset ---------------------------------------------------------------------------------
async def test_reset_enables_and_removes_toxics(api: Api) -> None:
    await make_proxy(api, "conf_reset")
    await api.call("POST", "/proxies/conf_reset/toxics", {"type": "latency"})
    await api.call("PATCH", "/proxies/conf_reset", {"enabled": False})
    status, body, _ = await api.call("POST", "/reset")
    assert status == 204 and body is None
    _, proxy, _ = await api.call("GET", "/proxies/conf_reset")
    assert proxy["enabled"] is True and proxy["toxics"] == []


# -- /metrics -------------------------------------------------------------------------------
async def test_metrics_is_prometheus_text_when_enabled(api: Api) -> None:
    status, body, headers = await api.call("GET", "/metrics")
    if status == 404:
        pytest.skip("server runs without -proxy-metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert "# TYPE" in body


async def test_update_listen_moves_the_proxy(api: Api) -> None:
    made = await make_proxy(api, "conf_move")
    port = free_port()
    status, body, _ = await api.call("PATCH", "/proxies/conf_move",
                                     {"listen": f"127.0.0.1:{port}"})
    assert status == 200 and body["listen"] == f"127.0.0.1:{port}" and body["enabled"] is True
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()
    old_host, _, old_port = made["listen"].rpartition(":")
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(old_host, int(old_port))


async def test_create_disabled_proxy_does_not_listen(api: Api) -> None:
    port = free_port()
    status, body, _ = await api.call("POST", "/proxies", {
        "name": "conf_off", "upstream": "127.0.0.1:9", "listen": f"127.0.0.1:{port}",
        "enabled": False})
    assert status == 201 and body["enabled"] is False
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_error_body_bytes_match_go(api: Api) -> None:
    async with api.session.get(api.base + "/proxies/conf_nothing_here") as resp:
        assert resp.status == 404
        assert await resp.read() == b'{"error":"proxy not found","status":404}\n'
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_populate_replaces_a_changed_proxy(api: Api) -> None:
    port = free_port()
    entry = {"name": "conf_pop_chg", "upstream": "127.0.0.1:9", "listen": f"127.0.0.1:{port}"}
    await api.call("POST", "/populate", [entry])
    await api.call("POST", "/proxies/conf_pop_chg/toxics", {"type": "latency"})
    status, body, _ = await api.call("POST", "/populate", [dict(entry, upstream="127.0.0.1:10")])
    assert status == 201 and body["proxies"][0]["upstream"] == "127.0.0.1:10"
    assert body["proxies"][0]["toxics"] == []  # a replaced proxy starts without toxics


async def test_toxics_list_upstream_first(api: Api) -> None:
    await make_proxy(api, "conf_order")
    for name, stream in (("d1", "downstream"), ("u1", "upstream"), ("d2", "downstream")):
        await api.call("POST", "/proxies/conf_order/toxics",
                       {"type": "noop", "name": name, "stream": stream})
    _, listed, _ = await api.call("GET", "/proxies/conf_order/toxics")
    assert [t["name"] for t in listed] == ["u1", "d1", "d2"]

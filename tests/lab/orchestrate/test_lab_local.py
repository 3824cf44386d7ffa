"""The lab on real processes: every link carries its own traffic, TLS, faults, teardown."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import pytest
import websockets
from lab_helpers import assert_nothing_left, get_status, rpc, wait_for_status

from lab.orchestrate import Lab, LabSpec, SpecError
from lab.proxy.client import ToxiproxyClient
from lab.proxy.profiles import ProfileError
from lab.proxy.server import ProxyServer

Factory = Callable[..., Awaitable[Lab]]
PROFILES = Path(__file__).resolve().parents[3] / "fault-profiles"


async def _ws_call(url: str, method: str, ctx: ssl.SSLContext | None = None) -> object:
    async with websockets.connect(url, ssl=ctx, open_timeout=10) as ws:
        await ws.send(orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}))
        return orjson.loads(await asyncio.wait_for(ws.recv(), 10))["result"]


async def _head(url: str, ctx: ssl.SSLContext | None = None) -> dict[str, object]:
    async with websockets.connect(url, ssl=ctx, open_timeout=10) as ws:
        await ws.send(orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                    "params": ["newHeads"]}))
        await asyncio.wait_for(ws.recv(), 10)
        note = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        assert note["method"] == "eth_subscription"
        return dict(note["params"]["result"])


async def test_requests_through_every_link(lab: Lab) -> None:
    eps, ctx = lab.endpoints, lab.ssl_context()
    assert int(await rpc(eps["http"], "eth_blockNumber"), 16) >= 0
    assert int(await rpc(eps["https"], "eth_blockNumber", ssl_ctx=ctx), 16) >= 0
    assert "number" in await _head(eps["ws"])
    assert "number" in await _head(eps["wss"], ctx)
    # The node follows both mock chains through the node-l1-* links.
    deadline = time.monotonic() + 15
    heads: dict[str, object] = {}
    while time.monotonic() < deadline:
        heads = await rpc(eps["node_rpc"], "dubhe_getL1Head")
        if all(heads.get(c) for c in ("ethereum", "sui")):
            break
        await asyncio.sleep(0.1)
    assert heads.get("ethereum") and heads.get("sui"), heads
    # Every link's proxy accepted connections: each really carries traffic.
    async with lab.toxiproxy() as tp:
        metrics = await tp.metrics()
    for name in lab.link_names:
        line = next(ln for ln in metrics.splitlines()
                    if ln.startswith("dubhe_proxy_connections_total") and f'proxy="{name}"' in ln)
        assert float(line.rsplit(" ", 1)[1]) >= 1, name


def test_tls_verified_by_a_stock_client(lab: Lab) -> None:
    url = lab.endpoints["https"] + "health"
    ctx = ssl.create_default_context(cafile=str(lab.ca_file))
    with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
        assert r.status == 200 and json.loads(r.read())["status"] == "ok"
    with pytest.raises(urllib.error.URLError) as info:
        urllib.request.urlopen(url, context=ssl.create_default_context(), timeout=10)
    assert isinstance(info.value.reason, ssl.SSLCertVerificationError)


def test_stub_status_counts_connections(lab: Lab) -> None:
    with urllib.request.urlopen(lab.endpoints["stub_status"], timeout=5) as r:
        page = r.read().decode()
    assert page.startswith("Active connections:")


LATENCY_MS = 600


async def _timings(lab: Lab) -> dict[str, float]:
    eps, ctx = lab.endpoints, lab.ssl_context()

    async def timed(coro: Awaitable[object]) -> float:
        t0 = time.monotonic()
        await coro
        return time.monotonic() - t0

    return {
        "http": await timed(rpc(eps["http"], "eth_chainId")),
        "https": await timed(rpc(eps["https"], "eth_chainId", ssl_ctx=ctx)),
        "ws": await timed(_ws_call(eps["ws"], "eth_chainId")),
        "nginx_direct": await timed(rpc(eps["nginx_http"], "eth_chainId")),
        "node_direct": await timed(rpc(eps["node_rpc"], "eth_chainId")),
    }


# Which requests cross each link (the others must not be slowed by its toxic).
CROSSES = {
    "client-edge": {"http", "ws"},
    "client-edge-tls": {"https"},
    "nginx-node-rpc": {"http", "https", "nginx_direct"},
    "nginx-node-ws": {"ws"},
}


@pytest.mark.parametrize("link", sorted(CROSSES))
async def test_a_toxic_slows_only_its_link(lab: Lab, link: str) -> None:
    proxy = await lab.link(link)
    async with proxy.toxic("latency", name="probe-latency", attributes={"latency": LATENCY_MS}):
        took = await _timings(lab)
    slow = {k for k, v in took.items() if v >= LATENCY_MS / 1000}
    assert slow == CROSSES[link], took


@pytest.mark.parametrize(("link", "held", "moving"), [("node-l1-eth", "ethereum", "sui"),
                                                        ("node-l1-sui", "sui", "ethereum")])
async def test_l1_links_carry_each_chain(lab: Lab, link: str, held: str, moving: str) -> None:
    """A black hole on one chain's link stops the node's head of that chain only."""

    async def heads() -> dict[str, int]:
        h = await rpc(lab.endpoints["node_rpc"], "dubhe_getL1Head")
        return {chain: int(h[chain]["number"]) for chain in ("ethereum", "sui")}

    proxy = await lab.link(link)
    async with proxy.toxic("timeout", name="hole", attributes={"timeout": 0}):
        await asyncio.sleep(0.6)  # let an in-flight head land
        before = await heads()
        await asyncio.sleep(1.6)  # > 3 mock blocks of 500 ms
        after = await heads()
    assert after[held] == before[held] and after[moving] > before[moving]


async def test_profiles_are_checked_against_the_run_links(lab: Lab, tmp_path: Path) -> None:
    bad = tmp_path / "typo.toml"
    bad.write_text('name = "typo"\n[[proxies]]\nlink = "nginx-node"\n')
    with pytest.raises(ProfileError) as info:
        lab.load_profile(bad)
    msg = str(info.value)
    assert "typo.toml" in msg and "profile 'typo'" in msg and "'nginx-node'" in msg
    tls = tmp_path / "tls.toml"
    tls.write_text('name = "t"\n[[proxies]]\nlink = "client-edge-tls"\n'
                   '[[proxies.toxics]]\ntype = "ws_cut"\n')
    with pytest.raises(ProfileError, match="ws_cut parses WebSocket frames, but link "
                                           "'client-edge-tls' carries TLS"):
        lab.load_profile(tls)


async def test_fault_apply_and_clear(lab: Lab) -> None:
    added = await lab.apply_profile(PROFILES / "high-latency-jitter.toml")
    assert ("nginx-node-ws", "backend") in added and ("client-edge-tls", "edge-up") in added
    status = await lab.status()
    assert [t["name"] for t in status["links"]["nginx-node-rpc"]["toxics"]] == ["backend"]
    with pytest.raises(SpecError, match="already on this link"):
        await lab.apply_profile(PROFILES / "high-latency-jitter.toml")
    assert sorted(await lab.clear_faults()) == sorted(lab.link_names)
    status = await lab.status()
    assert all(not link["toxics"] for link in status["links"].values())
    assert status["node"]["status"] == "ok" and status["edge"]["status"] == "ok"
    assert status["nginx"]["active"] >= 1 and status["l1_heads"]["eth"] >= 1


def test_stock_toxiproxy_python_client(lab: Lab) -> None:
    server = lab.toxiproxy_python()
    proxies = server.proxies()
    assert set(lab.link_names) <= set(proxies)
    edge = server.get_proxy("client-edge")
    edge.add_toxic(type="latency", name="stock", attributes={"latency": 1})
    assert "stock" in edge.toxics()
    edge.destroy_toxic("stock")
    assert "stock" not in edge.toxics()


async def test_kill_pause_restart(lab_factory: Factory) -> None:
    lab = await lab_factory(LabSpec(l1=({"chain": "eth"},)))  # type: ignore[arg-type]
    eps = lab.endpoints
    await lab.kill("node")
    assert lab.state_of("node") == "exited -9"
    assert await get_status(eps["health"]) == 502  # nginx is up, its upstream is gone
    took = await lab.restart("node")
    assert took < 30 and lab.state_of("node") == "running"
    await wait_for_status(eps["health"], 200)

    await lab.pause("l1-eth")
    assert lab.state_of("l1-eth") == "paused"
    with pytest.raises(TimeoutError):
        await rpc(eps["l1_eth"], "eth_blockNumber", timeout_s=0.5)
    await lab.resume("l1-eth")
    assert int(await rpc(eps["l1_eth"], "eth_blockNumber"), 16) >= 1

    await lab.pause("nginx")
    assert await get_status(eps["health"], timeout_s=0.5) == 0
    await lab.resume("nginx")
    await wait_for_status(eps["health"], 200)

    rc = await lab.stop("proxy")
    assert rc == 0
    assert await get_status(eps["health"], timeout_s=1) == 0  # the edge link is gone
    await lab.start_component("proxy")  # links come back with it
    await wait_for_status(eps["health"], 200)


async def test_up_and_down_leave_nothing(lab_factory: Factory) -> None:
    lab = await lab_factory()
    run = lab.run_dir
    assert (run / "logs" / "node.log").read_text()
    assert (run / "nginx" / "nginx.conf").exists() and (run / "tls" / "ca.pem").exists()
    desc = json.loads((run / "lab.json").read_text())
    assert desc["state"] == "up" and set(desc["links"]) == set(lab.link_names)
    await lab.down()
    assert_nothing_left(run)
    assert json.loads((run / "lab.json").read_text())["state"] == "down"
    assert lab.timings["down"] < 10


async def test_external_toxiproxy(lab_factory: Factory, tmp_path: Path) -> None:
    async with ProxyServer("127.0.0.1", 0, seed=1) as external:
        lab = await lab_factory(LabSpec(l1=(), proxy={"toxiproxy_url": external.base_url}))  # type: ignore[arg-type]
        assert "proxy" not in lab.plan.components
        assert await get_status(lab.endpoints["health"]) == 200
        ws_profile = tmp_path / "ws.toml"
        ws_profile.write_text('name = "w"\n[[proxies]]\nlink = "nginx-node-ws"\n'
                              '[[proxies.toxics]]\ntype = "ws_cut"\n')
        with pytest.raises(SpecError, match=r"'ws_cut' is a lab.proxy toxic; the external "
                                            r"Toxiproxy at http://127.0.0.1:\d+ cannot run it"):
            await lab.apply_profile(ws_profile)
        added = await lab.apply_profile(PROFILES / "high-latency-jitter.toml")
        assert len(added) == 6
        await lab.down()
        async with ToxiproxyClient(external.base_url) as tp:
            assert await tp.proxies() == {}  # the lab removed its links from the server

"""The plan of a run: who listens where and which link each hop goes through."""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path

import pytest

from lab import links as lab_links
from lab.orchestrate import Endpoint, LabSpec, RunDir, SpecError
from lab.orchestrate.plan import Plan, make_plan


def _allocator() -> tuple[list[tuple[str, str]], object]:
    ports = itertools.count(30_000)
    seen: list[tuple[str, str]] = []

    def allocate(component: str, port: str) -> Endpoint:
        seen.append((component, port))
        p = next(ports)
        return Endpoint("127.0.0.1", p, "127.0.0.1", "127.0.0.1", p)

    return seen, allocate


def _plan(tmp_path: Path, spec: LabSpec | None = None) -> Plan:
    _, allocate = _allocator()
    return make_plan(spec or LabSpec(), RunDir(tmp_path), 7, allocate,  # type: ignore[arg-type]
                     tls_ca=tmp_path / "tls" / "ca.pem")


def test_full_lab_has_every_component_and_link(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert list(plan.components) == ["l1-eth", "l1-sui", "proxy", "node", "nginx"]
    assert sorted(plan.links) == sorted(link.name for link in lab_links.LINKS)
    assert plan.links["client-edge-tls"].tls and not plan.links["client-edge"].tls


def test_every_hop_goes_through_its_link(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    comps, links = plan.components, plan.links
    # The links forward to the right component port.
    assert links["client-edge"].upstream == comps["nginx"].endpoints["http"].peer
    assert links["client-edge-tls"].upstream == comps["nginx"].endpoints["https"].peer
    assert links["nginx-node-rpc"].upstream == comps["node"].endpoints["rpc"].peer
    assert links["nginx-node-ws"].upstream == comps["node"].endpoints["ws"].peer
    assert links["node-l1-eth"].upstream == comps["l1-eth"].endpoints["rpc"].peer
    assert links["node-l1-sui"].upstream == comps["l1-sui"].endpoints["rpc"].peer
    # The consumers point at the links, never at the component directly.
    cfg = tomllib.loads(next(iter(comps["node"].files.values())).decode())
    assert cfg["adapters"]["ethereum"]["rpc_url"] == f"http://{links['node-l1-eth'].listen.peer}/"
    assert cfg["adapters"]["ethereum"]["ws_url"] == f"ws://{links['node-l1-eth'].listen.peer}/ws"
    assert cfg["adapters"]["sui"]["rpc_url"] == f"http://{links['node-l1-sui'].listen.peer}/"
    assert cfg["adapters"]["ethereum"]["chain_id"] == 1337
    conf = next(iter(comps["nginx"].files.values())).decode()
    assert f"server {links['nginx-node-rpc'].listen.peer};" in conf
    assert f"server {links['nginx-node-ws'].listen.peer};" in conf
    assert plan.endpoints["http"] == f"http://{links['client-edge'].listen.public}/"
    assert plan.endpoints["wss"] == f"wss://{links['client-edge-tls'].listen.public}/ws"
    assert plan.endpoints["node_rpc"] == f"http://{comps['node'].endpoints['rpc'].public}/"


def test_node_config_keeps_overrides_and_owns_its_keys(tmp_path: Path) -> None:
    spec = LabSpec(node={"scheduler": {"strategy": "SuiObjectDAG"}, "node": {"max_block_txs": 5}},
                   block_time_ms=150)
    cfg = tomllib.loads(
        next(iter(_plan(tmp_path, spec).components["node"].files.values())).decode()
    )
    assert cfg["scheduler"]["strategy"] == "SuiObjectDAG"
    assert cfg["node"] == {"block_time_ms": 150, "max_block_txs": 5}
    assert cfg["state"]["path"] == str(tmp_path / "node" / "data")
    assert cfg["security"]["admin_token"].startswith("lab-")
    with pytest.raises(SpecError, match=r"node.api.rpc_bind: owned by the lab"):
        _plan(tmp_path, LabSpec(node={"api": {"rpc_bind": "127.0.0.1:1"}}))
    with pytest.raises(SpecError, match=r"node.adapters: owned by the lab"):
        _plan(tmp_path, LabSpec(node={"adapters": {}}))


def test_extra_l1_endpoints_get_numbered_links(tmp_path: Path) -> None:
    spec = LabSpec(l1=({"chain": "eth", "endpoints": 3},))  # type: ignore[arg-type]
    plan = _plan(tmp_path, spec.overlay({}))
    assert {"node-l1-eth", "node-l1-eth-2", "node-l1-eth-3"} <= set(plan.links)
    assert "node-l1-sui" not in plan.links and "l1-sui" not in plan.components
    cfg = tomllib.loads(next(iter(plan.components["node"].files.values())).decode())
    fallbacks = [e["rpc_url"] for e in cfg["adapters"]["ethereum"]["endpoints"]]
    assert fallbacks == [f"http://{plan.links[n].listen.peer}/"
                         for n in ("node-l1-eth-2", "node-l1-eth-3")]
    assert plan.links["node-l1-eth-3"].upstream == plan.components["l1-eth"].endpoints["rpc3"].peer
    argv = plan.components["l1-eth"].process.argv
    ports = [argv[i + 1] for i, a in enumerate(argv) if a == "--port"]
    assert len(ports) == 3


def test_l1_request_timeout_reaches_the_adapter(tmp_path: Path) -> None:
    spec = LabSpec().overlay(
        {"l1": [{"chain": "eth", "request_timeout_ms": 800}, {"chain": "sui"}]}
    )
    cfg = tomllib.loads(
        next(iter(_plan(tmp_path, spec).components["node"].files.values())).decode()
    )
    assert cfg["adapters"]["ethereum"]["backoff"] == {"request_timeout_ms": 800}
    assert "backoff" not in cfg["adapters"]["sui"]  # the node's default


def test_lab_without_nginx_or_l1s(tmp_path: Path) -> None:
    plan = _plan(tmp_path, LabSpec(l1=(), nginx={"enabled": False}))  # type: ignore[arg-type]
    assert list(plan.components) == ["proxy", "node"]
    assert plan.links == {}
    assert "http" not in plan.endpoints and "node_rpc" in plan.endpoints
    cfg = tomllib.loads(next(iter(plan.components["node"].files.values())).decode())
    assert "adapters" not in cfg


def test_external_toxiproxy_replaces_the_proxy_component(tmp_path: Path) -> None:
    plan = _plan(tmp_path, LabSpec(proxy={"toxiproxy_url": "http://127.0.0.1:8474"}))  # type: ignore[arg-type]
    assert "proxy" not in plan.components and plan.external_proxy
    assert plan.proxy_api == "http://127.0.0.1:8474"
    assert len(plan.links) == 6


def test_seeds_are_derived_per_component(tmp_path: Path) -> None:
    a, b = _plan(tmp_path), _plan(tmp_path)
    argv = a.components["l1-eth"].process.argv
    assert argv == b.components["l1-eth"].process.argv
    seed = argv[argv.index("--seed") + 1]
    assert seed != a.components["l1-sui"].process.argv[argv.index("--seed") + 1]

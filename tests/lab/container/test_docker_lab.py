"""The lab on the docker backend: the local lab's own tests, unchanged, plus what containers add.

The tests imported from ``test_lab_local`` run here against a lab whose components are
containers (this module's ``lab`` and ``lab_factory`` fixtures replace the plugin's): a request
through every link, TLS verified by a stock client, nginx's status page, a toxic slowing exactly
its link, the L1 links carrying their own chain, profiles checked against the run's links,
fault apply/clear, the stock toxiproxy-python client, and kill/pause/stop/restart with the same
observed effects (``exited -9`` included) as with local processes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import psutil
import pytest
import pytest_asyncio
from docker_helpers import client, left_by_label, nothing_left
from lab_helpers import rpc
from test_lab_local import (  # noqa: F401 - collected here, against containers
    test_a_toxic_slows_only_its_link,
    test_fault_apply_and_clear,
    test_kill_pause_restart,
    test_l1_links_carry_each_chain,
    test_profiles_are_checked_against_the_run_links,
    test_requests_through_every_link,
    test_stock_toxiproxy_python_client,
    test_stub_status_counts_connections,
    test_tls_verified_by_a_stock_client,
)

from lab.container.engine import COMPONENT_LABEL, LAB_LABEL, OWNER_LABEL, ROLE_LABEL, RUN_LABEL
from lab.orchestrate import Lab, LabSpec, NginxConfigError, SpecError
from lab.orchestrate.docker import DockerBackend
from lab.pytest_plugin import _runs_root

pytestmark = [pytest.mark.docker, pytest.mark.lab]

Factory = Callable[..., Awaitable[Lab]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lab(lab_image: str, pytestconfig: pytest.Config) -> AsyncIterator[Lab]:
    running = await Lab.start(LabSpec(), backend=DockerBackend(image=lab_image),
                              runs_root=_runs_root(pytestconfig))
    try:
        yield running
    finally:
        await running.down()


@pytest_asyncio.fixture
async def lab_factory(lab_image: str, pytestconfig: pytest.Config) -> AsyncIterator[Factory]:
    made: list[Lab] = []

    async def factory(spec: LabSpec | None = None) -> Lab:
        running = await Lab.start(spec or LabSpec(), backend=DockerBackend(image=lab_image),
                                  runs_root=_runs_root(pytestconfig))
        made.append(running)
        return running

    try:
        yield factory
    finally:
        for running in reversed(made):
            await running.down()


def test_every_component_is_a_labelled_container_on_the_run_network(lab: Lab) -> None:
    desc = json.loads(lab.run.lab_json.read_text())
    assert desc["backend"] == "docker"
    backend = lab.backend
    assert isinstance(backend, DockerBackend)
    c = client()
    try:
        for name, comp in desc["components"].items():
            info = c.api.inspect_container(f"dubhe-{lab.run_id}-{name}")
            net_info = c.api.inspect_container(f"dubhe-{lab.run_id}-{name}-net")
            for each, role in ((info, "process"), (net_info, "net")):
                labels = each["Config"]["Labels"]
                assert labels[LAB_LABEL] == "1" and labels[RUN_LABEL] == lab.run_id
                assert labels[COMPONENT_LABEL] == name and labels[OWNER_LABEL] == backend.owner
                assert labels[ROLE_LABEL] == role
                assert each["HostConfig"]["Init"] is True
                assert each["Config"]["Image"] == backend.image
            # The process shares the network namespace of its "-net" container, which holds
            # the address and the ports, published on loopback only.
            assert info["HostConfig"]["NetworkMode"] == f"container:{net_info['Id']}"
            bindings = net_info["HostConfig"]["PortBindings"]
            assert {b["HostIp"] for bs in bindings.values() for b in bs} == {"127.0.0.1"}
            assert {int(p.split("/")[0]) for p in bindings} == \
                {int(port["bind"].rsplit(":", 1)[1]) for port in comp["ports"].values()} | \
                {int(link["listen"].rsplit(":", 1)[1]) for link in desc["links"].values()
                 if name == "proxy"}
            # The project source read-only, the run directory read-write, at their own paths.
            mounts = {m["Destination"]: m for m in info["Mounts"]}
            assert mounts[str(backend.source)]["RW"] is False
            assert mounts[str(lab.run_dir)]["RW"] is True
            # Peers reach it by its fixed address on the run's network; the host by the
            # published port.
            net = net_info["NetworkSettings"]["Networks"][backend.network]
            for port in comp["ports"].values():
                assert port["peer"].split(":")[0] == net["IPAMConfig"]["IPv4Address"]
                assert port["public"].startswith("127.0.0.1:")
            assert (lab.run_dir / "logs" / f"{name}.log").stat().st_size > 0
        # The pid file's pids are the components' own processes (what callers measure).
        for name, record in backend.records().items():
            cmdline = " ".join(psutil.Process(record.pid).cmdline())
            assert ("nginx" if name == "nginx" else "python") in cmdline, (name, cmdline)
        network = c.api.inspect_network(backend.network)
        assert network["Labels"][RUN_LABEL] == lab.run_id
    finally:
        c.close()


async def test_components_reach_each_other_through_the_links(lab: Lab) -> None:
    # The node's L1 URLs and nginx's upstreams are the proxy's addresses on the run network.
    config = (lab.run_dir / "node" / "config.toml").read_text()
    proxy_ip = lab.desc["components"]["proxy"]["ports"]["api"]["peer"].split(":")[0]
    assert f"http://{proxy_ip}:" in config
    assert f"server {proxy_ip}:" in (lab.run_dir / "nginx" / "nginx.conf").read_text()
    heads = await rpc(lab.endpoints["node_rpc"], "dubhe_getL1Head")
    assert set(heads) >= {"ethereum", "sui"}


async def test_external_toxiproxy_is_refused_before_anything_starts(lab_image: str,
                                                                    tmp_path: Path) -> None:
    backend = DockerBackend(image=lab_image)
    with pytest.raises(SpecError, match="external Toxiproxy server needs the local backend"):
        await Lab.start(LabSpec(proxy={"toxiproxy_url": "http://127.0.0.1:8474"}),  # type: ignore[arg-type]
                        backend=backend, runs_root=tmp_path)
    assert not list(tmp_path.glob("*/lab.json"))  # noqa: ASYNC240 - a test's one check


async def test_up_and_down_leave_no_container_network_or_volume(lab_factory: Factory) -> None:
    lab = await lab_factory(LabSpec(l1=(), nginx={"enabled": False}))  # type: ignore[arg-type]
    left = left_by_label(lab.run_id)
    # proxy and node, each a process container and the "-net" one holding its address
    assert len(left["containers"]) == 4 and len(left["networks"]) == 1
    assert int(await rpc(lab.endpoints["node_rpc"], "eth_chainId"), 16) > 0
    await lab.down()
    assert nothing_left(lab.run_id), left_by_label(lab.run_id)
    assert json.loads(lab.run.lab_json.read_text())["state"] == "down"
    assert not lab.run.pid_file.exists()
    assert "dubhe-node ready" in (lab.run_dir / "logs" / "node.log").read_text()


async def test_a_config_nginx_refuses_fails_the_lab_before_nginx_starts(
        lab_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.orchestrate import plan

    real = plan.render_nginx
    monkeypatch.setattr(plan, "render_nginx", lambda *a, **k: real(*a, **k).replace(
        "worker_connections ", "worker_connectionz "))
    backend = DockerBackend(image=lab_image)
    with pytest.raises(NginxConfigError, match='unknown directive "worker_connectionz"'):
        await Lab.start(LabSpec(l1=()), backend=backend, runs_root=tmp_path)  # type: ignore[arg-type]
    assert backend.run_id and nothing_left(backend.run_id), left_by_label(backend.run_id)
    assert "nginx" not in backend.records()

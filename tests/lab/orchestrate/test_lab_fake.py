"""The orchestration logic on the recording fake backend: order, readiness, teardown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.orchestrate import ComponentError, EnvironmentProblem, Lab, LabSpec, RunDir
from lab.orchestrate.fake import Calls, FakeBackend, FakeLinks, FakeProber, fail_on
from lab.orchestrate.plan import Probe
from lab.orchestrate.rundir import read_pid_file

COMPONENTS = ["l1-eth", "l1-sui", "proxy", "node", "nginx"]
PROFILES = Path(__file__).resolve().parents[3] / "fault-profiles"


async def _start(tmp_path: Path, calls: Calls, **kw: object) -> Lab:
    backend = kw.pop("backend", None) or FakeBackend(calls)
    return await Lab.start(LabSpec(), runs_root=tmp_path, backend=backend,  # type: ignore[arg-type]
                           prober=kw.pop("prober", None) or FakeProber(calls),  # type: ignore[arg-type]
                           links=FakeLinks(calls), **kw)  # type: ignore[arg-type]


def _names(calls: Calls, verb: str) -> list[str]:
    return [c[1] for c in calls if c[0] == verb]


async def test_up_then_down_in_order(tmp_path: Path) -> None:
    calls: Calls = []
    lab = await _start(tmp_path, calls)
    # nginx -t before anything starts; every component started once; links created.
    first_start = next(i for i, c in enumerate(calls) if c[0] == "start")
    assert ("check_nginx", "nginx") in calls[:first_start]
    assert _names(calls, "start") == COMPONENTS
    assert sorted(_names(calls, "create_link")) == sorted(lab.plan.links)
    # the edge is probed through client-edge over http and https after the components.
    probes = [c for c in calls if c[0] == "probe"]
    assert probes[-2][2] == lab.endpoints["health"]
    assert probes[-1][2] == lab.endpoints["https"] + "health"
    desc = json.loads((lab.run_dir / "lab.json").read_text())
    assert desc["state"] == "up" and desc["seed"] == lab.seed
    assert (lab.run_dir / "lab.pid").exists()
    assert (lab.run_dir / "node" / "config.toml").exists()
    assert (lab.run_dir / "nginx" / "nginx.conf").exists()
    assert (lab.run_dir / "tls" / "ca.pem").exists()

    calls.clear()
    await lab.down()
    assert sorted(_names(calls, "stop")) == sorted(COMPONENTS)
    assert calls[-1] == ("close",) or ("close",) in calls
    assert ("links_close",) in calls and ("prober_close",) in calls
    assert not (lab.run_dir / "lab.pid").exists()
    assert json.loads((lab.run_dir / "lab.json").read_text())["state"] == "down"
    calls.clear()
    await lab.down()  # idempotent
    assert calls == []


async def test_a_component_that_cannot_start_tears_down_the_others(tmp_path: Path) -> None:
    calls: Calls = []
    with pytest.raises(EnvironmentProblem, match="cannot start node"):
        await _start(tmp_path, calls, backend=FakeBackend(calls, hooks={"start": fail_on("node")}))
    started = _names(calls, "start")
    assert started == ["l1-eth", "l1-sui", "proxy", "node"]
    assert sorted(_names(calls, "stop")) == ["l1-eth", "l1-sui", "proxy"]
    run = RunDir(tmp_path / "latest")
    assert run.read_lab_json()["state"] == "failed"
    assert read_pid_file(run) is None


async def test_a_component_that_dies_before_ready_is_named_with_its_log(tmp_path: Path) -> None:
    calls: Calls = []
    backend = FakeBackend(calls)

    def ready(probe: Probe) -> bool:
        if probe.url.endswith("/health") and "node" in backend.specs:
            log = backend.specs["node"].log
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text("starting\nConfigError: node.block_time_ms: too small\n")
            backend.crash("node", 1)
            return False
        return True

    with pytest.raises(ComponentError) as info:
        await _start(tmp_path, calls, backend=backend, prober=FakeProber(calls, ready))
    assert info.value.component == "node"
    assert "exited with code 1 before it was ready" in str(info.value)
    assert info.value.log_tail[-1] == "ConfigError: node.block_time_ms: too small"
    assert "too small" in info.value.details()
    assert set(_names(calls, "stop")) >= {"l1-eth", "l1-sui", "proxy", "nginx"}


async def test_readiness_deadline(tmp_path: Path) -> None:
    calls: Calls = []
    with pytest.raises(ComponentError, match=r"proxy: not ready within 0.2 s"):
        await _start(tmp_path, calls, ready_timeout_s=0.2,
                     prober=FakeProber(calls, lambda p: not p.url.endswith("/version")))


async def test_component_faults(tmp_path: Path) -> None:
    calls: Calls = []
    lab = await _start(tmp_path, calls)
    calls.clear()
    await lab.kill("node")
    assert lab.state_of("node") == "exited -9"
    await lab.start_component("node")
    assert lab.state_of("node") == "running"
    await lab.pause("l1-eth")
    assert lab.state_of("l1-eth") == "paused"
    await lab.resume("l1-eth")
    await lab.restart("proxy")
    assert calls[:4] == [
        ("kill", "node"),
        ("start", "node"),
        ("probe", "http", lab.endpoints["node_health"]),
        ("pause", "l1-eth"),
    ]
    # a restarted proxy gets the lab's links back
    assert calls[-len(lab.plan.links):] == [("create_link", n) for n in lab.plan.links]
    with pytest.raises(ComponentError, match="no such component"):
        await lab.kill("database")
    await lab.down()


async def test_up_context_manager_tears_down_on_error(tmp_path: Path) -> None:
    calls: Calls = []
    with pytest.raises(RuntimeError, match="inside"):
        async with Lab.up(LabSpec(), runs_root=tmp_path, backend=FakeBackend(calls),
                          prober=FakeProber(calls), links=FakeLinks(calls)):
            raise RuntimeError("inside")
    assert sorted(_names(calls, "stop")) == sorted(COMPONENTS)


async def test_profiles_of_the_spec_are_applied_once_up(tmp_path: Path) -> None:
    calls: Calls = []
    profile = PROFILES / "l1-blackhole.toml"
    lab = await Lab.start(LabSpec(profiles=(str(profile),)), runs_root=tmp_path,
                          backend=FakeBackend(calls), prober=FakeProber(calls),
                          links=FakeLinks(calls))
    assert lab.seed == 0  # the profile's seed when the spec has none
    assert ("add_toxic", "node-l1-eth", "blackhole") in calls
    assert calls.index(("add_toxic", "node-l1-eth", "blackhole")) > max(
        i for i, c in enumerate(calls) if c[0] == "start")
    await lab.down()

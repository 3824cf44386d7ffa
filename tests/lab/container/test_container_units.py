"""The container backend's pure parts: ports, subnets, exit codes, the image recipe, and the
lab actions' errors (no engine needed)."""

from __future__ import annotations

import importlib.metadata as md
import ipaddress
import random
from pathlib import Path

import pytest

from lab.container.recipe import ImageRecipe, locked_requirements
from lab.orchestrate import EnvironmentProblem, Lab, LabSpec, SpecError
from lab.orchestrate.docker import as_returncode, container_port, pick_subnet
from lab.orchestrate.fake import FakeBackend, FakeLinks, FakeProber
from lab.orchestrate.rundir import RunDir, clean_dead_lab, write_json


def test_container_ports_are_well_known_and_distinct() -> None:
    used: set[int] = set()
    got = []
    for port in ("api", "link:a", "link:b", "link:c"):
        got.append(container_port("proxy", port, used))
        used.add(got[-1])
    assert got == [8474, 10001, 10002, 10003]
    assert container_port("node", "rpc", set()) == 8545
    assert container_port("node", "ws", set()) == 8546
    assert container_port("l1-eth", "rpc", set()) == 8545
    assert container_port("l1-eth", "rpc2", set()) == 8546
    assert container_port("nginx", "https", set()) == 8443
    assert container_port("other", "x", {20000}) == 20001


def test_subnets_avoid_every_taken_one() -> None:
    taken = [ipaddress.IPv4Network(f"10.213.{i}.0/24") for i in range(256) if i != 77]
    assert pick_subnet(taken, rng=random.Random(1)) == ipaddress.IPv4Network("10.213.77.0/24")
    taken.append(ipaddress.IPv4Network("10.213.0.0/16"))
    with pytest.raises(EnvironmentProblem, match=r"no free /24 left in 10\.213\.0\.0/16"):
        pick_subnet(taken)


def test_exit_status_reads_as_a_process_returncode() -> None:
    assert as_returncode(137) == -9 and as_returncode(143) == -15
    assert as_returncode(0) == 0 and as_returncode(1) == 1 and as_returncode(125) == 125


def test_lock_pins_the_installed_runtime_closure() -> None:
    lock = locked_requirements()
    names = {line.split("==")[0].lower().replace("_", "-") for line in lock}
    assert f"aiohttp=={md.version('aiohttp')}" in lock
    assert {"aiohttp", "multidict", "yarl", "pydantic-core", "uvloop"} <= names  # transitive
    assert not names & {"pytest", "mypy", "locust", "dubhe-channel-lab"}  # not runtime
    assert lock == sorted(lock, key=lambda s: s.split("==")[0].lower().replace("_", "-"))


def test_image_tags_follow_their_inputs() -> None:
    a = ImageRecipe("bookworm", "src", ("python3",), ("x==1",))
    assert a.base_tag == ImageRecipe("bookworm", "elsewhere", ("python3",), ("y==2",)).base_tag
    assert a.lab_tag != ImageRecipe("bookworm", "src", ("python3",), ("x==2",)).lab_tag
    b = ImageRecipe("bookworm", "src", ("python3", "curl"), ("x==1",))
    assert a.base_tag != b.base_tag and a.lab_tag != b.lab_tag  # a new base, a new lab image
    assert a.mmdebstrap_argv()[-3:] == ["bookworm", "-", "src"]


async def test_container_faults_need_a_container_backend(tmp_path: Path) -> None:
    lab = await Lab.start(LabSpec(), runs_root=tmp_path, backend=FakeBackend(),  # type: ignore[arg-type]
                          prober=FakeProber(), links=FakeLinks())  # type: ignore[arg-type]
    try:
        with pytest.raises(EnvironmentProblem, match="disconnect is a container-level fault: "
                                                     "this lab runs on the fake backend"):
            await lab.disconnect("node")
        with pytest.raises(SpecError, match=r"explode: unknown action"):
            await lab.act("explode", "node")
        await lab.act("kill", "node")
        assert lab.state_of("node") == "exited -9"
    finally:
        await lab.down()


def test_a_dead_docker_owner_is_cleaned_by_label(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    run = RunDir.create(tmp_path, "x")
    write_json(run.lab_json, {"state": "up"})
    write_json(run.pid_file, {"owner": {"pid": 1, "create_time": 0.0}, "backend": "docker",
                              "components": {"node": {"pid": 0, "create_time": 0.0}}})
    asked: list[str] = []

    def clean_run(run_id: str) -> list[str]:
        asked.append(run_id)
        return ["node"]

    monkeypatch.setattr("lab.orchestrate.docker.clean_run", clean_run)
    assert clean_dead_lab(run) == ["node"]  # no pid was signalled: the engine was asked
    assert asked == [run.run_id] and not run.pid_file.exists()

"""Nothing of a docker lab outlives it: Ctrl-C, a killed ``dubhe-lab up``, a failed test, a killed
owner found by label. Everything is counted on the engine by the run's label."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from docker_helpers import client, left_by_label, nothing_left
from test_lab_cli import run_cli, start_up
from timing import scaled, wait_until_sync

from lab.container.engine import LAB_LABEL, OWNER_LABEL, RUN_LABEL
from lab.orchestrate.docker import clean_orphans

pytestmark = [pytest.mark.docker, pytest.mark.lab]

SMALL = 'l1 = []\n[nginx]\nenabled = false\n'  # proxy + node: the quickest docker lab


def _spec(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def test_ctrl_c_tears_the_containers_down(tmp_path: Path, lab_image: str) -> None:
    proc, run = start_up(tmp_path / "runs", "--backend", "docker", "--spec",
                         str(_spec(tmp_path)))
    assert len(left_by_label(run.name)["containers"]) == 4
    proc.send_signal(signal.SIGINT)
    assert proc.wait(scaled(30)) == 0
    assert nothing_left(run.name), left_by_label(run.name)
    assert json.loads((run / "lab.json").read_text())["state"] == "down"


def test_killed_owner_is_cleaned_by_the_next_down(tmp_path: Path, lab_image: str) -> None:
    root = tmp_path / "runs"
    proc, run = start_up(root, "--backend", "docker", "--spec", str(_spec(tmp_path)))
    proc.kill()  # SIGKILL: no teardown at all
    proc.wait(10)
    assert len(left_by_label(run.name)["containers"]) == 4  # containers outlive their owner
    done = run_cli("down", "--runs-root", str(root))
    assert done.returncode == 0, done.stderr
    assert "cleaned up" in done.stdout and "node" in done.stdout
    assert nothing_left(run.name), left_by_label(run.name)
    desc = json.loads((run / "lab.json").read_text())
    assert desc["state"] == "cleaned" and "node" in desc["cleaned"]["components"]


def test_orphans_of_a_dead_owner_are_removed_by_label(lab_image: str) -> None:
    """What a killed owner left without a pid file anywhere (its run directory deleted, say)
    is found by label when any docker lab starts; a live owner's objects stay."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_owner = f"{dead.stdout.strip()}:1.000"
    import psutil

    me = psutil.Process()
    live_owner = f"{me.pid}:{me.create_time():.3f}"
    c = client()
    made = []
    try:
        for tag, owner in (("dead", dead_owner), ("live", live_owner)):
            run_id = f"orphan-test-{tag}-{os.getpid()}"
            c.api.create_network(f"dubhe-{run_id}", labels={
                LAB_LABEL: "1", RUN_LABEL: run_id, OWNER_LABEL: owner})
            made.append(run_id)
        removed = clean_orphans(c)
        assert made[0] in removed and made[1] not in removed
        assert nothing_left(made[0])
        assert left_by_label(made[1])["networks"] == [f"dubhe-{made[1]}"]
    finally:
        for run_id in made:
            for n in c.api.networks(filters={"label": f"{RUN_LABEL}={run_id}"}):
                c.api.remove_network(n["Id"])
        c.close()


USER_TESTS = '''
import pytest
from lab.orchestrate import LabSpec

@pytest.fixture(scope="module")
def lab_spec():
    return LabSpec(l1=(), nginx={"enabled": False})

async def test_fails_inside_a_docker_lab(lab):
    open("run_id.txt", "w").write(lab.run_id)
    assert lab.backend.name == "docker"
    assert False, "boom"
'''


def test_a_failing_test_leaves_no_container_behind(tmp_path: Path, lab_image: str) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text('pytest_plugins = ["lab.pytest_plugin"]\n')
    (project / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n"
                                        "asyncio_default_fixture_loop_scope = function\n")
    (project / "test_user.py").write_text(USER_TESTS)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lab-backend=docker",
         "--lab-runs-dir", str(tmp_path / "runs")], cwd=project, capture_output=True,
        text=True, timeout=scaled(180))
    assert done.returncode == 1 and "1 failed" in done.stdout, done.stdout + done.stderr
    run_id = (project / "run_id.txt").read_text()
    wait_until_sync(lambda: nothing_left(run_id), 10, what="the failed test's lab removed")

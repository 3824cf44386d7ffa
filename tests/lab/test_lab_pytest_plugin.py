"""The pytest plugin as a user's project sees it: a failing test never leaks a lab; --lab-keep
keeps it up on purpose; the module-scoped lab is shared."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "orchestrate"))
from lab_helpers import assert_nothing_left, processes_in

pytestmark = pytest.mark.lab

TESTS = '''
import json, os
from pathlib import Path
import aiohttp

async def test_uses_the_lab(lab):
    async with aiohttp.ClientSession() as s, s.get(lab.endpoints["health"]) as r:
        assert r.status == 200
    Path(os.environ["SEEN"]).open("a").write(str(lab.run_dir) + "\\n")

def test_sync_test_sees_the_same_lab(lab):
    Path(os.environ["SEEN"]).open("a").write(str(lab.run_dir) + "\\n")

async def test_fails_inside_the_lab(lab):
    await lab.kill("l1-sui")
    assert False, "boom"
'''


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text('pytest_plugins = ["lab.pytest_plugin"]\n')
    (project / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n"
                                        "asyncio_default_fixture_loop_scope = function\n")
    (project / "test_user.py").write_text(TESTS)
    return project


def _run(project: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lab-runs-dir",
         str(tmp_path / "runs"), *extra], cwd=project, capture_output=True, text=True,
        timeout=180, env={**__import__("os").environ, "SEEN": str(tmp_path / "seen.txt")})


def test_a_failing_test_leaves_no_lab_behind(tmp_path: Path) -> None:
    done = _run(_project(tmp_path), tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 2 passed" in done.stdout
    seen = (tmp_path / "seen.txt").read_text().split()
    assert len(seen) == 2 and seen[0] == seen[1]  # one module-scoped lab for both tests
    run = Path(seen[0])
    assert_nothing_left(run)
    assert json.loads((run / "lab.json").read_text())["state"] == "down"


def test_lab_keep_keeps_the_failing_lab_up(tmp_path: Path) -> None:
    done = _run(_project(tmp_path), tmp_path, "--lab-keep", "-s")
    assert done.returncode == 1
    run = Path((tmp_path / "seen.txt").read_text().split()[0])
    assert "lab kept up after 1 failed test(s)" in done.stderr + done.stdout
    assert f"dubhe-lab down --run-dir {run}" in done.stderr + done.stdout
    assert processes_in(run), "the kept lab should still run"
    down = subprocess.run([sys.executable, "-m", "lab", "down", "--run-dir", str(run)],
                          capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert_nothing_left(run)


def test_function_scope_gives_each_test_its_own_lab(tmp_path: Path) -> None:
    done = _run(_project(tmp_path), tmp_path, "--lab-scope", "function", "-k", "not fails")
    assert done.returncode == 0, done.stdout + done.stderr
    seen = (tmp_path / "seen.txt").read_text().split()
    assert len(set(seen)) == 2
    for run in seen:
        assert_nothing_left(Path(run))

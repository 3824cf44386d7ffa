"""Fixtures of the report tests: a copy of a real (trimmed) quick run directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reports import trends
from reports.render import Rendered, render_run

FIXTURE = Path(__file__).with_name("fixtures") / "run"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """``<tmp>/nightly/20261201-163300-quick``: scenarios (two s01 cases whose records point at a
    lab directory that moved), a swarm under the nightly fault profile, seven benchmarks, the
    scheduler property tests' JUnit XML, a mutation score, and parts.json in which bench-lab
    timed out without writing bench/lab.json."""
    return copy_fixture(tmp_path)


def copy_fixture(parent: Path) -> Path:
    dest = parent / "nightly" / "20261201-163300-quick"
    shutil.copytree(FIXTURE, dest)
    return dest


@pytest.fixture(scope="package")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """The fixture run rendered once for the tests that only read the page (rendering draws a
    dozen plots: a second or more on the shared machine)."""
    return render_run(copy_fixture(tmp_path_factory.mktemp("rendered")),
                      config=trends.load_config())

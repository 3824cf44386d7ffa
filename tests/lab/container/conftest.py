"""Container-backend tests: they need a Docker engine and skip, saying why, when none answers.

A test marked ``docker`` is skipped with the engine's one-line problem as the reason (``-ra``
prints it in the summary); the rest of the suite runs as usual. ``lab_image`` builds the lab's
images once per session when their inputs changed (progress on the terminal: a cold build takes
a minute or two), so every later lab starts from a current image.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

# lab_helpers and test_lab_local (tests/lab/orchestrate), test_lab_cli (tests/lab).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "orchestrate"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


#: A test that needs the images may build them first (one to two minutes cold, more on a loaded
#: machine): its timeout covers that build.
IMAGE_BUILD_TIMEOUT_S = 900
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents and \
                "lab_image" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(IMAGE_BUILD_TIMEOUT_S))


@cache
def engine_problem() -> str | None:
    from lab.container.engine import engine_problem as problem

    return problem()


@pytest.fixture(autouse=True)
def _needs_engine(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("docker") is not None:
        problem = engine_problem()
        if problem is not None:
            pytest.skip(f"container backend not tested: {problem}")


@pytest.fixture(scope="session")
def lab_image(pytestconfig: pytest.Config) -> Iterator[str]:
    """The current lab image's tag (built if its inputs changed)."""
    problem = engine_problem()
    if problem is not None:
        pytest.skip(f"container backend not tested: {problem}")
    from lab.container.images import ensure_images
    from lab.pytest_plugin import _say

    say = _say(pytestconfig)
    result = ensure_images(progress=say)
    if result.built:
        say(f"== lab images built for the container tests in {result.seconds:.0f} s")
    yield result.lab

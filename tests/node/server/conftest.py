"""Fixtures that run ``dubhe-node`` as a real subprocess (see server_harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_harness import RunningNode, make_config  # type: ignore[import-not-found]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """One node per test module: 100 ms blocks, admin token, small limits for limit tests."""
    wd = tmp_path_factory.mktemp("node")
    n = RunningNode(
        wd,
        make_config(
            wd, api={"max_batch": 10, "max_body_bytes": 64 * 1024, "max_frame_bytes": 64 * 1024}
        ),
    )
    n.start()
    yield n
    n.stop()


@pytest.fixture
def fresh_node(tmp_path: Path) -> Iterator[Any]:
    """A factory for nodes with custom config sections; all are stopped after the test."""
    started: list[RunningNode] = []

    def factory(**sections: dict[str, Any]) -> RunningNode:
        wd = tmp_path / f"n{len(started)}"
        n = RunningNode(wd, make_config(wd, **sections))
        started.append(n)
        return n.start()

    yield factory
    for n in started:
        if n.proc is not None and n.proc.poll() is None:
            n.stop()

"""The descriptor budget (node.server.descriptors): the soft open-file limit is raised to the
hard one, connection limits must fit what is left after the node's own reserve, and a config
that cannot be served is refused with every number named."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import tomli_w
from server_harness import RunningNode, make_config  # type: ignore[import-not-found]

from lab.clients.rpc import HttpRpc
from node import config
from node.core.errors import ConfigError
from node.server.descriptors import plan as plan_budget
from node.server.descriptors import reserved_for

pytestmark = pytest.mark.timeout(120)


def cfg(**api: Any) -> config.Config:
    return config.from_dict({"api": api} if api else {})


def test_defaults_need_2456_descriptors() -> None:
    c = cfg()
    assert reserved_for(c) == 192 + 256 + 4 * 2 == 456
    fitted, b = plan_budget(c, 4096)
    assert fitted is c and (b.http, b.ws, b.derived) == (1000, 1000, False)


def test_defaults_are_lowered_in_proportion_to_fit() -> None:
    fitted, b = plan_budget(cfg(), 1024, hard=1024)
    assert b.derived and b.http + b.ws == 1024 - 456
    assert fitted.api.max_http_connections == b.http == 284
    assert fitted.api.max_connections == b.ws == 284


def test_an_explicit_limit_that_cannot_be_served_is_refused_naming_the_numbers() -> None:
    with pytest.raises(ConfigError) as e:
        plan_budget(cfg(max_connections=1000), 1024, hard=1024, before=1024)
    (key, msg), = e.value.errors
    assert key == "api.max_connections"
    for number in ("(1000)", "456 descriptors", "= 2456", "open-file limit of 1024",
                   "hard limit 1024", "568 in total"):
        assert number in msg, (number, msg)


def test_an_explicit_limit_that_fits_keeps_it_and_lowers_the_other() -> None:
    fitted, b = plan_budget(cfg(max_connections=500), 1024)
    assert (b.ws, b.http) == (500, 1024 - 456 - 500)
    assert fitted.api.max_connections == 500


def _run_node(tmp_path: Path, nofile: int, **api: Any) -> subprocess.CompletedProcess[str]:
    c = make_config(tmp_path, api=api)
    p = tmp_path / "config.toml"
    p.write_text(tomli_w.dumps(c))
    return subprocess.run(
        ["prlimit", f"--nofile={nofile}:{nofile}", sys.executable, "-m", "node", "--config",
         str(p)], capture_output=True, text=True, timeout=60,
    )


def test_dubhe_node_refuses_a_config_it_cannot_serve(tmp_path: Path) -> None:
    """Before: the node started and its listeners could take every descriptor (1,000 slow
    clients under a 1,024 limit left 2 for everything else)."""
    r = _run_node(tmp_path, 1024, max_http_connections=1000)
    assert r.returncode == 1
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("dubhe-node: descriptor budget: api.max_http_connections: ")
    assert "exceed the open-file limit of 1024" in line and "Traceback" not in r.stderr


async def test_dubhe_node_raises_its_soft_limit_and_lowers_default_limits(tmp_path: Path) -> None:
    n = RunningNode(tmp_path, make_config(tmp_path), prefix=("prlimit", "--nofile=256:1024"))
    await n.astart()
    try:
        pid = n.proc.pid
        limits = await asyncio.to_thread(Path(f"/proc/{pid}/limits").read_text)
        row = next(x for x in limits.splitlines() if x.startswith("Max open files"))
        assert row.split()[3:5] == ["1024", "1024"], row  # soft raised to the hard limit
        async with HttpRpc(n.rpc) as rpc:
            st = await rpc.call("dubhe_status")
        d = st["descriptors"]
        assert d == {"limit": 1024, "hard": 1024, "startedWith": 256, "reserved": 456,
                     "httpConnections": 284, "wsConnections": 284, "lowered": True}
    finally:
        await n.astop()
    assert "api.max_http_connections 1000 -> 284" in "".join(n.output)


def test_budget_is_json_ready() -> None:
    _, b = plan_budget(cfg(), 10_000)
    assert orjson.loads(orjson.dumps(b.as_dict()))["limit"] == 10_000

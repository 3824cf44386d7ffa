"""Short swarms against a real lab: the files, the counts, the closes, and a fault's toll."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lab.orchestrate import Lab
from lab.swarm.runner import SwarmConfig, load_requests, request_key, run_swarm, sized_lab_spec

pytestmark = pytest.mark.lab
PROFILES = Path(__file__).resolve().parents[3] / "fault-profiles"


@pytest.fixture(scope="module")
def lab_spec():  # type: ignore[no-untyped-def]
    return sized_lab_spec(60, seed=5, funded=20)


def _locust_counts(out: Path) -> dict[str, int]:
    """Locust's own final counts (its --json-file, written after every user stopped)."""
    stats = json.loads((out / "swarm_final.json").read_text())
    return {request_key(s["method"], s["name"]): int(s["num_requests"]) for s in stats}


async def test_smoke_swarm_writes_consistent_files(lab: Lab, tmp_path: Path) -> None:
    cfg = SwarmConfig(users=20, spawn_rate=20, duration=4, out=tmp_path / "s", seed=5,
                      target=lab.endpoints["ws"], classes=("mixed",))
    summary = await run_swarm(cfg, lab, say=lambda _: None)
    for name in ("swarm_stats.csv", "swarm_stats_history.csv", "swarm_failures.csv",
                 "swarm_exceptions.csv", "swarm_final.json", "summary.json", "locust.log",
                 "node-metrics.csv"):
        assert (cfg.out / name).exists(), name
    table = csv.DictReader((cfg.out / "swarm_stats.csv").read_text().splitlines())
    assert {r["Name"] for r in table} >= {"newHeads", "open", "Aggregated"}
    series = list(csv.DictReader((cfg.out / "node-metrics.csv").read_text().splitlines()))
    heads = [float(r["head"]) for r in series if r["head"]]
    assert len(heads) >= 3 and heads == sorted(heads) and heads[-1] > heads[0]
    assert max(float(r["node_ws"]) for r in series if r["node_ws"]) >= 20
    rows = load_requests(cfg.out)
    assert rows and all(r["ms"] >= 0 for r in rows)
    # Locust's table and the request log count the same requests.
    counted: dict[str, int] = {}
    for r in rows:
        key = request_key(r["type"], r["name"])
        counted[key] = counted.get(key, 0) + 1
    assert _locust_counts(cfg.out) == counted
    reqs = summary["requests"]
    assert reqs["WS open"]["count"] == 20 and reqs["WS open"]["failures"] == 0
    assert reqs["notify newHeads"]["count"] >= 20 and reqs["notify newHeads"]["p50_ms"] > 0
    assert reqs["eth_blockNumber"]["p50_ms"] > 0
    assert reqs["dubhe_sendTransaction:transfer"]["count"] >= 1
    assert summary["close_codes"] == {"1000": 20}  # every user closed normally at the end
    assert summary["connections_bookkeeping"]["returned_to_baseline"]


async def test_a_ws_cut_profile_costs_exactly_its_cuts(lab: Lab, tmp_path: Path) -> None:
    # The cuts stop (the toxic's schedule) 2.5 s before the users do, so every cut lands on a
    # user still running, never on one in the middle of its own closing handshake.
    path = tmp_path / "cuts.toml"
    path.write_text('name = "cuts"\n[[proxies]]\nlink = "nginx-node-ws"\n[[proxies.toxics]]\n'
                    'name = "cut-mid-frame"\ntype = "ws_cut"\nattributes = { after_frames = 3 }\n'
                    'schedule = { start = 0, stop = 4000 }\n')
    cfg = SwarmConfig(users=15, spawn_rate=15, duration=6.5, out=tmp_path / "cut", seed=6,
                      target=lab.endpoints["ws"], classes=("heads",))
    summary = await run_swarm(cfg, lab, (lab.load_profile(path),), say=lambda _: None)
    cut = summary["close_codes"].get("1006", 0)
    assert cut >= 15  # each user is cut after 3 heads (5 heads/s) while the schedule is on
    assert summary["requests"]["WS close 1006"]["failures"] == cut
    [window] = summary["faults"]
    assert (window["link"], window["toxic"]) == ("nginx-node-ws", "cut-mid-frame")
    assert 3.5 <= window["end"] - window["start"] <= 5  # on from its schedule's start to stop
    assert window["actions"] == cut  # every cut the proxy made is a 1006 a user saw
    assert summary["connections"]["reconnects"] >= cut - 15
    assert summary["connections_bookkeeping"]["returned_to_baseline"]
    status = await lab.status()
    assert status["links"]["nginx-node-ws"]["toxics"] == []  # cleared after the swarm

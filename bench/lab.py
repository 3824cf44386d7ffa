"""``dubhe-bench lab``: how long the whole lab takes to come up (all healthy) and go down.

Runs ``Lab.up`` to all-healthy (every component's readiness, the links, and ``/health``
end to end through client-edge and nginx over http and https) and the teardown, ``--runs``
times, and prints the median per component and in total. The baseline, measured in the same
run, is the node alone started as a process to its first ``/health`` answer (what the lab adds
on top of its slowest component). Targets on this machine: up < 2 s, down < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import BenchResult, NodeServer, add_json_option, progress, table, verdict
from lab.orchestrate import Lab, LabSpec

UP_TARGET_S, DOWN_TARGET_S = 2.0, 1.0


async def _one_lab(root: Path) -> dict[str, float]:
    t0 = time.monotonic()
    lab = await Lab.start(LabSpec(name="bench"), runs_root=root)
    up = time.monotonic() - t0
    timings = {k.removeprefix("ready:"): v for k, v in lab.timings.items() if k != "up"}
    t1 = time.monotonic()
    await lab.down()
    return {**timings, "up": up, "down": time.monotonic() - t1}


def _node_alone() -> float:
    t0 = time.monotonic()
    node = NodeServer({"node": {"block_time_ms": 200}})
    try:
        return time.monotonic() - t0
    finally:
        node.stop()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="dubhe-bench lab", description=__doc__.splitlines()[0]
                                 if __doc__ else None)
    ap.add_argument("--runs", type=int, default=5, help="labs brought up and down (default 5)")
    add_json_option(ap)
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    res = BenchResult("lab", argv)
    print(f"dubhe-bench lab: {args.runs} runs of Lab.up to all-healthy and teardown (local "
          "processes: 2 mock L1s, proxy, node, nginx)")
    samples: list[dict[str, float]] = []
    baseline: list[float] = []
    with tempfile.TemporaryDirectory(prefix="dubhe-bench-lab-") as tmp:
        for i in range(args.runs):
            progress(f"run {i + 1}/{args.runs}: node alone (baseline)")
            baseline.append(_node_alone())
            progress(f"run {i + 1}/{args.runs}: lab up and down")
            samples.append(asyncio.run(_one_lab(Path(tmp))))
    keys = ["l1-eth", "l1-sui", "proxy", "links", "node", "nginx", "edge", "up", "down"]
    med = {k: statistics.median(s[k] for s in samples) for k in keys}
    rows: list[list[Any]] = [[k, med[k], min(s[k] for s in samples), max(s[k] for s in samples)]
                             for k in keys]
    print("seconds since Lab.up was called (components become ready concurrently):")
    print(table(["step", "median s", "min s", "max s"], rows))
    base = statistics.median(baseline)
    print(f"baseline: the node alone, process start to /health: median {base:.2f} s; "
          f"lab up / node alone: {med['up'] / base:.2f}x")
    for k in keys:
        if k not in ("up", "down"):
            res.figure(f"ready_{k}_s", med[k])
    res.figure("baseline_node_alone_s", base)
    res.figure("ratio_up_vs_node", med["up"] / base)
    up_ok = res.target("up_s", target=UP_TARGET_S, value=med["up"], direction="lower", unit="s",
                       passed=med["up"] < UP_TARGET_S)
    down_ok = res.target("down_s", target=DOWN_TARGET_S, value=med["down"], direction="lower",
                         unit="s", passed=med["down"] < DOWN_TARGET_S)
    print(f"target: up < {UP_TARGET_S:g} s: {med['up']:.2f} s {verdict(up_ok)}; "
          f"down < {DOWN_TARGET_S:g} s: {med['down']:.2f} s {verdict(down_ok)}")
    res.extra(runs=args.runs, median_s=med, samples=samples)
    res.write(args.json)
    return res.exit_code()

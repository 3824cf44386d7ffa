"""``dubhe-bench swarm``: how many WebSocket subscribers the lab serves through nginx.

1. Baseline: ``--baseline-users`` (10) newHeads subscribers through client-edge + nginx, no load.
2. Target: ``--users`` (1,000) subscribers for ``--seconds`` (60) without faults. Targets (the
   seed's table): handshakes succeeded >= 99.9 %, p99 notification latency < 100 ms (receive
   time - the node's emit time, exact, from the request logs, counted once every user is up).
3. Ceilings: steps of ``--step-users`` (1000, 2000, 3000, 5000, 7500, 10000) held for
   ``--step-seconds`` each. Two figures come out: the *connection* ceiling (the most users whose
   handshakes still succeed >= 99.9 %: steps go on up while they do, whatever the latency) and
   the *service* ceiling (the most users meeting both targets). When the first step already
   misses the latency target, the search goes down instead (halving, ``--down-steps`` times) so
   the service ceiling is a measured number, not "below the first step". Each step prints where
   the CPU went (Locust's clients, the proxy, nginx, the node) and, for a miss, what stopped it.

Locust runs in ``--processes`` worker processes (default 2) so its own CPU warning does not fire;
a run where it fires is marked. Every step is a fresh lab (no state carried over).
"""

from __future__ import annotations

import asyncio
import resource
import tempfile
from pathlib import Path
from typing import Any

from bench.common import BenchResult, add_json_option, bench_parser, pct, progress, table, verdict
from lab.orchestrate import Lab
from lab.swarm.runner import SwarmConfig, load_requests, run_swarm, sized_lab_spec

SUCCESS_TARGET, P99_TARGET_MS = 0.999, 100.0
#: What the targets assume: 1,000 users held for a minute.
TARGET_USERS, TARGET_SECONDS = 1000, 60.0


def _steady_latencies(out: Path, ramp_s: float) -> list[float]:
    rows = load_requests(out)
    opens = [r["t"] for r in rows if r["type"] == "WS" and r["name"] == "open"]
    if not opens:
        return []
    steady = max(opens) + 1.0  # every user connected (plus a second to settle)
    return [float(r["ms"]) for r in rows if r["type"] == "notify" and r["t"] >= steady]


async def _measure(users: int, seconds: float, processes: int, root: Path, seed: int
                   ) -> dict[str, Any]:
    spawn_rate = max(50.0, users / 10)
    ramp = users / spawn_rate
    lab = await Lab.start(sized_lab_spec(users, seed=seed, name=f"bench-swarm-{users}"),
                          runs_root=root)
    try:
        out = lab.run_dir / "swarm" / f"{users}"
        cfg = SwarmConfig(users=users, spawn_rate=spawn_rate, duration=ramp + seconds, out=out,
                          target=lab.endpoints["ws"], classes=("heads",),
                          processes=processes, seed=seed)
        summary = await run_swarm(cfg, lab, say=lambda m: progress(m.strip()))
    finally:
        await lab.down()
    lat = _steady_latencies(out, ramp)
    conns = summary["connections"]
    success = conns["success_rate"] if conns["attempts"] else 0.0
    held = conns["succeeded"] - summary["close_codes"].get("1006", 0)
    return {
        "users": users, "success_rate": success, "attempts": conns["attempts"],
        "held": held, "notifications": len(lat), "p50_ms": pct(lat, 0.5),
        "p99_ms": pct(lat, 0.99), "failures": summary["failures"],
        "errors": summary["errors"], "cpu_seconds": summary["cpu_seconds"],
        "locust_cpu_warning": summary["locust_cpu_warning"], "seconds": seconds,
        "ok": success >= SUCCESS_TARGET and pct(lat, 0.99) < P99_TARGET_MS and bool(lat),
    }


def _why(m: dict[str, Any]) -> str:
    if m["success_rate"] < SUCCESS_TARGET:
        top = next(iter(m["errors"]), "unknown")
        return f"handshakes failed ({100 * (1 - m['success_rate']):.2f} %): {top}"
    if not m["notifications"]:
        return "no notifications arrived"
    busiest = max(m["cpu_seconds"].items(), key=lambda kv: kv[1], default=("?", 0))
    return (f"p99 {m['p99_ms']:.0f} ms; busiest: {busiest[0]} used {busiest[1]:.0f} CPU s "
            f"in {m['seconds']:g} s (2 cores)")


def main(argv: list[str]) -> int:
    ap = bench_parser("swarm", __doc__)
    ap.add_argument("--users", type=int, default=1000, help="target users (default 1000)")
    ap.add_argument("--seconds", type=float, default=60.0, help="seconds held (default 60)")
    ap.add_argument("--baseline-users", type=int, default=10,
                    help="users of the baseline run (the same swarm, small)")
    ap.add_argument("--step-users", default="1000,2000,3000,5000,7500,10000",
                    help="ceiling steps (comma-separated; empty: skip the ceiling search)")
    ap.add_argument("--down-steps", type=int, default=3,
                    help="when the first step misses the latency target: halvings searched "
                         "below it for the service ceiling (default 3)")
    ap.add_argument("--step-seconds", type=float, default=20.0,
                    help="seconds per step of the step-load ceiling search")
    ap.add_argument("--processes", type=int, default=2, help="Locust worker processes")
    ap.add_argument("--seed", type=int, default=1, help="seed of the users' choices")
    ap.add_argument("--runs-root", type=Path, help="where the labs' run directories go "
                    "(default: a temporary directory)")
    add_json_option(ap)
    args = ap.parse_args(argv)
    res = BenchResult("swarm", argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    print(f"dubhe-bench swarm: newHeads subscribers through client-edge + nginx + nginx-node-ws "
          f"(5 blocks/s); {args.processes} Locust processes; descriptors {soft}/{hard}")
    steps = [int(s) for s in args.step_users.split(",") if s.strip()]
    with tempfile.TemporaryDirectory(prefix="dubhe-bench-swarm-") as tmp:
        root = args.runs_root or Path(tmp)
        progress(f"baseline: {args.baseline_users} users")
        base = asyncio.run(_measure(args.baseline_users, min(args.seconds, 15), 1, root,
                                    args.seed))
        progress(f"target: {args.users} users for {args.seconds:g} s")
        target = asyncio.run(_measure(args.users, args.seconds, args.processes, root, args.seed))
        ceiling: list[dict[str, Any]] = []

        def step(users: int) -> dict[str, Any]:
            progress(f"ceiling step: {users} users for {args.step_seconds:g} s")
            m = asyncio.run(_measure(users, args.step_seconds, args.processes, root, args.seed))
            ceiling.append(m)
            return m

        for users in steps:  # up, while the handshakes hold (the connection ceiling)
            if step(users)["success_rate"] < SUCCESS_TARGET:
                break
        if ceiling and not ceiling[0]["ok"]:  # down, for the service ceiling
            users = ceiling[0]["users"]
            for _ in range(args.down_steps):
                users //= 2
                if users < 1 or step(users)["ok"]:
                    break
        ceiling.sort(key=lambda m: m["users"])
    rows = [[f"{m['users']} users{' (baseline)' if m is base else ''}", m["attempts"],
             f"{100 * m['success_rate']:.2f}", m["notifications"], m["p50_ms"], m["p99_ms"],
             ", ".join(f"{k} {v:.0f}" for k, v in m["cpu_seconds"].items()),
             "yes" if m["locust_cpu_warning"] else "no"]
            for m in [base, target, *ceiling]]
    print(table(["run", "handshakes", "success %", "notifications", "p50 ms", "p99 ms",
                 "CPU s by process", "locust CPU warning"], rows))
    ratio = target["p99_ms"] / base["p99_ms"] if base["p99_ms"] > 0 else float("nan")
    print(f"p99 at {args.users} users / at {args.baseline_users} users: {ratio:.2f}x")
    small = args.users < TARGET_USERS or args.seconds < TARGET_SECONDS
    note = (f"the targets assume >= {TARGET_USERS} users for >= {TARGET_SECONDS:g} s"
            if small else "")
    res.figure("baseline_p50_ms", base["p50_ms"])
    res.figure("baseline_p99_ms", base["p99_ms"])
    res.figure("p50_ms", target["p50_ms"])
    res.figure("ratio_p99", ratio)
    res.figure("notifications", target["notifications"])
    ok_success = res.target("success_rate", target=SUCCESS_TARGET, value=target["success_rate"],
                            direction="higher", unit="", judged=not small, note=note)
    ok_p99 = res.target("p99_ms", target=P99_TARGET_MS, value=target["p99_ms"],
                        direction="lower", unit="ms", passed=target["p99_ms"] < P99_TARGET_MS,
                        judged=not small, note=note)
    print(f"target at {args.users} users: handshakes >= 99.9 %: "
          f"{100 * target['success_rate']:.2f} % {verdict(ok_success)}; p99 < 100 ms: "
          f"{target['p99_ms']:.1f} ms {verdict(ok_p99)}"
          f"{'' if not target['locust_cpu_warning'] else ' (Locust warned about its CPU)'}")
    if ceiling:
        best = max((m["users"] for m in ceiling if m["ok"]), default=0)
        held = max((m["users"] for m in ceiling if m["success_rate"] >= SUCCESS_TARGET),
                   default=0)
        res.figure("ceiling_users", best)
        res.figure("connection_ceiling_users", held)
        print(f"service ceiling: {best or 'below ' + str(ceiling[0]['users'])} users meet both "
              f"targets")
        print(f"connection ceiling: {held or 'below ' + str(ceiling[0]['users'])} users held "
              f"with >= 99.9 % handshakes (goal 10,000 held connections: "
              f"{verdict(held >= 10_000)})")
        above = [m for m in ceiling if not m["ok"] and m["users"] > best]
        if above:
            print(f"what stopped it at {above[0]['users']} users: {_why(above[0])}")
    res.extra(baseline=base, target=target, ceiling=ceiling)
    res.write(args.json)
    return res.exit_code()

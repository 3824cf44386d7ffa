"""Run a Locust swarm against the lab: headless, with fault profiles on their schedules, and
everything it saw written as files.

:func:`run_swarm` starts ``locust`` (the locustfile of this package) as a subprocess, applies the
fault profiles when the swarm starts (their ``schedule`` runs on the proxy's clock), shows
progress, samples the CPU of every process involved, and afterwards writes into ``out``:

=======================  ===========================================================
``swarm_stats.csv``       Locust's per-request-type table (``--csv``)
``swarm_stats_history.csv``  one row per second per type (``--csv-full-history``)
``swarm_failures.csv``    failures by type, name and error
``swarm_exceptions.csv``  exceptions with tracebacks
``swarm_final.json``      Locust's final per-request stats (``--json-file``; complete: the
                          CSVs are rewritten once a second and may miss the last second)
``requests-<pid>.jsonl``  every request, notification and connection event (one file per
                          Locust process)
``proxy-events.jsonl``    the proxy's event log during the swarm (toxics added, started,
                          stopped, fired)
``faults.json``           fault windows: per toxic, when it was on (Unix seconds)
``node-metrics.csv``      once a second: the node's head, mempool and WebSockets, nginx's
                          active connections (``t,head,mempool,node_ws,nginx_active``)
``locust.log``            Locust's own log
``summary.json``          the figures below, machine-readable
=======================  ===========================================================

The summary has, per request type and name, counts, failures and exact percentiles (from the
request logs, not Locust's rounded buckets), the connection success rate, the close-code census,
the CPU each process used (where the time went), whether Locust warned about its own CPU, and
the connection bookkeeping: the node's and nginx's open connections before the swarm and after
it (they must return to the baseline).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil

from lab.nginx.status import parse as parse_stub_status
from lab.orchestrate.handle import LabHandle
from lab.orchestrate.spec import LabSpec, spec_from_dict
from lab.proxy.profiles import Profile
from lab.swarm.catalog import MIXES, USER_CLASSES, swarm_signer
from lab.swarm.shapes import make_shape
from node.core.hexutil import data

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
Say = Callable[[str], None]


@dataclass(frozen=True)
class SwarmConfig:
    """What to run. ``users`` is the peak; ``classes`` are user class names or one mix name
    (:data:`lab.swarm.users.MIXES`)."""

    users: int
    spawn_rate: float
    duration: float
    out: Path
    target: str
    classes: tuple[str, ...] = ("HeadSubscriber",)
    shape: str = "constant"
    steps: int = 5
    processes: int = 1
    seed: int = 0
    ca_file: str = ""

    def user_classes(self) -> list[str]:
        if len(self.classes) == 1 and self.classes[0] in MIXES:
            return list(MIXES[self.classes[0]])
        unknown = [c for c in self.classes if c not in USER_CLASSES]
        if unknown:
            raise ValueError(f"unknown user class(es) {', '.join(unknown)} (classes: "
                             f"{', '.join(USER_CLASSES)}; mixes: {', '.join(MIXES)})")
        return list(self.classes)

    def check(self) -> None:
        """``ValueError`` naming the bad option."""
        make_shape(self.shape, self.users, self.spawn_rate, self.duration, self.steps)
        self.user_classes()
        if self.processes < 1:
            raise ValueError("--processes must be at least 1")
        if not self.target.startswith(("ws://", "wss://")):
            raise ValueError(f"target must be a ws:// or wss:// URL, got {self.target!r}")


def locust_argv(cfg: SwarmConfig) -> list[str]:
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "--host", cfg.target, "--csv", str(cfg.out / "swarm"), "--csv-full-history",
            "--json-file", str(cfg.out / "swarm_final"),
            "--logfile", str(cfg.out / "locust.log"), "--loglevel", "INFO",
            "--run-time", f"{int(cfg.duration + 30)}s", "--stop-timeout", "5",
            "--lab-shape", cfg.shape, "--lab-users", str(cfg.users),
            "--lab-spawn-rate", str(cfg.spawn_rate), "--lab-duration", str(cfg.duration),
            "--lab-steps", str(cfg.steps), "--lab-seed", str(cfg.seed),
            "--lab-requests-dir", str(cfg.out)]
    if cfg.ca_file:
        argv += ["--lab-ca", cfg.ca_file]
    if cfg.processes > 1:
        argv += ["--processes", str(cfg.processes)]
    return argv + cfg.user_classes()


# -- what the swarm saw -----------------------------------------------------------------------

def load_requests(out: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(out.glob("requests-*.jsonl")):
        with open(path, "rb") as f:
            rows.extend(orjson.loads(line) for line in f if line.strip())
    rows.sort(key=lambda r: r["t"])
    return rows


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def request_key(request_type: str, name: str) -> str:
    """``WS close 1006``, ``notify newHeads``, ``eth_blockNumber``,
    ``dubhe_sendTransaction:transfer``."""
    return name if name.startswith(request_type) else f"{request_type} {name}"


def summarize_requests(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, failures and exact percentiles per ``type name``; the close-code census; the
    connection success rate (handshakes that worked / handshakes tried)."""
    by: dict[str, list[float]] = defaultdict(list)
    fails: Counter[str] = Counter()
    closes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for r in rows:
        key = request_key(str(r["type"]), str(r["name"]))
        by[key].append(float(r["ms"]))
        if not r["ok"]:
            fails[key] += 1
            errors[str(r.get("error", ""))[:120]] += 1
        if r["type"] == "WS" and str(r["name"]).startswith("close "):
            closes[str(r["name"]).removeprefix("close ")] += 1
    opens = len(by.get("WS open", []))
    open_ok = opens - fails.get("WS open", 0)
    return {
        "requests": {k: {"count": len(v), "failures": fails.get(k, 0), "p50_ms": _pct(v, 0.5),
                         "p99_ms": _pct(v, 0.99), "max_ms": max(v) if v else float("nan"),
                         "mean_ms": statistics.fmean(v) if v else float("nan")}
                     for k, v in sorted(by.items())},
        "connections": {"attempts": opens, "succeeded": open_ok,
                        "success_rate": open_ok / opens if opens else float("nan"),
                        "reconnects": len(by.get("WS reconnect", []))},
        "close_codes": dict(sorted(closes.items())),
        "failures": sum(fails.values()),
        "errors": dict(errors.most_common(10)),
    }


def fault_windows(events: list[dict[str, Any]], until: float) -> list[dict[str, Any]]:
    """Per toxic, the intervals it was on: from ``toxic_added`` (or ``toxic_started``) to
    ``toxic_removed`` (or ``toxic_stopped``); still on at the end: until ``until``. From the
    proxy's ``toxic_fired`` events: ``fired`` counts the connections a continuous toxic
    (latency, bandwidth...) acted on, ``actions`` what a moment toxic did (each cut, close or
    reset: the events with an ``action``)."""
    open_at: dict[tuple[str, str], float] = {}
    windows: list[dict[str, Any]] = []
    for e in events:
        key = (str(e.get("proxy", "")), str(e.get("toxic", "")))
        kind = e.get("event")
        if kind in ("toxic_added", "toxic_started") and key not in open_at:
            if kind == "toxic_added" and e.get("active") is False:
                continue  # scheduled: it starts later
            open_at[key] = float(e["time"])
        elif kind in ("toxic_removed", "toxic_stopped") and key in open_at:
            windows.append({"link": key[0], "toxic": key[1], "start": open_at.pop(key),
                            "end": float(e["time"])})
    windows += [{"link": p, "toxic": t, "start": s, "end": until}
                for (p, t), s in open_at.items()]
    fired: Counter[tuple[str, str]] = Counter()
    actions: Counter[tuple[str, str]] = Counter()
    for e in events:
        if e.get("event") == "toxic_fired":
            key = (str(e.get("proxy")), str(e.get("toxic")))
            (actions if "action" in e else fired)[key] += 1
    for w in windows:
        w["fired"] = fired.get((w["link"], w["toxic"]), 0)
        w["actions"] = actions.get((w["link"], w["toxic"]), 0)
    return sorted(windows, key=lambda w: w["start"])


@dataclass
class CpuSampler:
    """CPU seconds used per process group during the swarm (where the time goes). Call
    :meth:`poll` now and then: a process's last reading is kept after it exits, and children
    that appear later (Locust's workers) are picked up."""

    leaders: dict[str, psutil.Process] = field(default_factory=dict)
    first: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    members: dict[str, set[int]] = field(default_factory=dict)

    def add(self, name: str, leader: psutil.Process) -> None:
        self.leaders[name] = leader
        self.members[name] = set()
        self.poll()

    def poll(self) -> None:
        for name, leader in self.leaders.items():
            with contextlib.suppress(psutil.Error):
                for p in [leader, *leader.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        t = p.cpu_times()
                        cpu = t.user + t.system + t.children_user + t.children_system
                        self.first.setdefault(p.pid, cpu if p is leader or not self.members[
                            name] else 0.0)
                        self.last[p.pid] = cpu
                        self.members[name].add(p.pid)

    def used(self) -> dict[str, float]:
        return {n: round(sum(self.last[p] - self.first[p] for p in pids), 2)
                for n, pids in self.members.items()}


def _lab_processes(lab: LabHandle) -> dict[str, psutil.Process]:
    out: dict[str, psutil.Process] = {}
    try:
        pids = json.loads(lab.run.pid_file.read_text())["components"]
    except (OSError, ValueError, KeyError):
        return out
    for name, rec in pids.items():
        with contextlib.suppress(psutil.Error):
            out[name] = psutil.Process(int(rec["pid"]))
    return out


async def connection_counts(lab: LabHandle) -> dict[str, float]:
    """Open connections now: nginx's active (stub_status) and the node's WebSockets."""
    counts: dict[str, float] = {}
    eps = lab.endpoints
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        if "stub_status" in eps:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                async with http.get(eps["stub_status"]) as r:
                    # minus this request's own connection
                    counts["nginx_active"] = parse_stub_status(await r.text()).active - 1
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(eps["node_metrics"]) as r:
                for line in (await r.text()).splitlines():
                    if line.startswith("dubhe_ws_connections "):
                        counts["node_ws"] = float(line.split()[1])
    return counts


async def wait_baseline(lab: LabHandle, baseline: dict[str, float], timeout_s: float = 15.0
                        ) -> tuple[dict[str, float], bool]:
    deadline = time.monotonic() + timeout_s
    now = await connection_counts(lab)
    while time.monotonic() < deadline:
        if all(now.get(k, 0) <= v for k, v in baseline.items()):
            return now, True
        await asyncio.sleep(0.25)
        now = await connection_counts(lab)
    return now, all(now.get(k, 0) <= v for k, v in baseline.items())


async def _progress(cfg: SwarmConfig, proc: asyncio.subprocess.Process, say: Say,
                    t0: float, sampler: CpuSampler) -> None:
    history = cfg.out / "swarm_stats_history.csv"
    while proc.returncode is None:
        for _ in range(5):
            await asyncio.sleep(1)
            sampler.poll()
        last: dict[str, str] | None = None
        with contextlib.suppress(OSError, csv.Error):
            with open(history, newline="") as f:  # noqa: ASYNC230 - a small file, every 5 s
                for row in csv.DictReader(f):
                    if row.get("Name") == "Aggregated":
                        last = row
        if last is not None:
            say(f"   {time.monotonic() - t0:5.0f} s  users {last['User Count']:>6}  "
                f"req/s {float(last['Requests/s']):8.1f}  requests {last['Total Request Count']}"
                f"  failures {last['Total Failure Count']}")


_NODE_SERIES = {"dubhe_head_block": "head", "dubhe_mempool_size": "mempool",
                "dubhe_ws_connections": "node_ws"}


async def sample_lab(lab: LabHandle, path: Path, stop: asyncio.Event,
                     interval_s: float = 1.0) -> None:
    """Every ``interval_s``: the node's head, mempool and WebSockets, nginx's active
    connections, as CSV rows ``t,head,mempool,node_ws,nginx_active`` (t in Unix seconds)."""
    eps = lab.endpoints
    rows = ["t,head,mempool,node_ws,nginx_active"]
    timeout = aiohttp.ClientTimeout(total=max(0.5, interval_s))
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while not stop.is_set():
            values: dict[str, float] = {}
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                async with http.get(eps["node_metrics"]) as r:
                    for line in (await r.text()).splitlines():
                        name, _, value = line.partition(" ")
                        if name in _NODE_SERIES:
                            values[_NODE_SERIES[name]] = float(value)
            if "stub_status" in eps:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                    async with http.get(eps["stub_status"]) as r:
                        values["nginx_active"] = parse_stub_status(await r.text()).active - 1
            rows.append(",".join([f"{time.time():.3f}"] + [
                f"{values[k]:g}" if k in values else ""
                for k in ("head", "mempool", "node_ws", "nginx_active")]))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
    path.write_text("\n".join(rows) + "\n")  # noqa: ASYNC240 - once, at the end


async def run_swarm(cfg: SwarmConfig, lab: LabHandle | None = None,
                    profiles: tuple[Profile, ...] = (), say: Say = print) -> dict[str, Any]:
    """Run the swarm (see the module docstring); returns the summary (also in summary.json)."""
    cfg.check()
    cfg.out.mkdir(parents=True, exist_ok=True)
    baseline = await connection_counts(lab) if lab is not None else {}
    events_from = 0
    if lab is not None:
        events = await lab.fault_events()
        events_from = max((int(e["seq"]) for e in events), default=0)
    say(f"== swarm: {cfg.users} users ({', '.join(cfg.user_classes())}), shape {cfg.shape}, "
        f"{cfg.duration:g} s, {cfg.processes} Locust process(es), seed {cfg.seed} -> {cfg.target}")
    sampler = CpuSampler()
    if lab is not None:
        for name, leader in _lab_processes(lab).items():
            sampler.add(name, leader)
    t0 = time.monotonic()
    started = time.time()
    proc = await asyncio.create_subprocess_exec(
        *locust_argv(cfg), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    with contextlib.suppress(psutil.Error):
        sampler.add("locust", psutil.Process(proc.pid))
    applied: list[tuple[str, str]] = []
    try:
        for profile in profiles:
            assert lab is not None
            applied += await lab.apply_profile(profile)
            say(f"   fault profile {profile.name}: {len(applied)} toxic(s) on "
                f"{', '.join(sorted({link for link, _ in applied}))}")
        ticker = asyncio.create_task(_progress(cfg, proc, say, t0, sampler))
        sampling = asyncio.Event()
        series = (asyncio.create_task(sample_lab(lab, cfg.out / "node-metrics.csv", sampling))
                  if lab is not None else None)
        try:
            await proc.wait()
        finally:
            ticker.cancel()
            sampling.set()
            if series is not None:
                with contextlib.suppress(Exception):
                    await series
    except BaseException:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
        raise
    finally:
        if lab is not None and applied:
            for link in sorted({link for link, _ in applied}):
                await lab.clear_faults(link)
    ended = time.time()
    cpu = sampler.used()
    summary: dict[str, Any] = {"config": {k: str(v) if isinstance(v, Path) else v
                                          for k, v in asdict(cfg).items()},
                               "started": started, "ended": ended,
                               "locust_exit": proc.returncode, "cpu_seconds": cpu}
    summary.update(summarize_requests(load_requests(cfg.out)))
    log = (cfg.out / "locust.log").read_text(errors="replace") if (
        cfg.out / "locust.log").exists() else ""
    summary["locust_cpu_warning"] = "CPU usage above" in log
    if lab is not None:
        events = await lab.fault_events(events_from)
        (cfg.out / "proxy-events.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n"
                                                              for e in events))
        summary["faults"] = fault_windows(events, ended)
        (cfg.out / "faults.json").write_text(json.dumps(summary["faults"], indent=2))
        after, back = await wait_baseline(lab, baseline)
        summary["connections_bookkeeping"] = {"before": baseline, "after": after,
                                              "returned_to_baseline": back}
    (cfg.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def print_summary(summary: dict[str, Any], say: Say = print) -> None:
    rows = summary["requests"]
    say(f"{'request':<44} {'count':>8} {'fail':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for key, r in rows.items():
        say(f"{key[:44]:<44} {r['count']:>8} {r['failures']:>6} {r['p50_ms']:>8.1f} "
            f"{r['p99_ms']:>8.1f} {r['max_ms']:>8.1f}")
    c = summary["connections"]
    say(f"connections: {c['succeeded']}/{c['attempts']} handshakes succeeded "
        f"({100 * c['success_rate']:.2f} %), {c['reconnects']} reconnects; close codes "
        f"{summary['close_codes'] or 'none'}")
    if summary.get("faults"):
        for w in summary["faults"]:
            say(f"fault {w['link']}/{w['toxic']}: on {w['end'] - w['start']:.1f} s, acted on "
                f"{w['fired']} connections, {w['actions']} actions")
    cpu = ", ".join(f"{k} {v:.1f} s" for k, v in summary["cpu_seconds"].items())
    say(f"CPU used: {cpu}")
    if summary["locust_cpu_warning"]:
        say("warning: Locust reported its own CPU as saturated; use --processes")
    book = summary.get("connections_bookkeeping")
    if book:
        say(f"open connections before {book['before']} after {book['after']}: "
            f"{'back to baseline' if book['returned_to_baseline'] else 'NOT back to baseline'}")


def sized_lab_spec(users: int, *, block_ms: int = 200, seed: int | None = None,
                   funded: int = 0, name: str = "swarm") -> LabSpec:
    """A lab sized for ``users`` WebSockets: the node's connection cap and rate limits out of
    the way (the swarm measures, it does not attack), nginx with two worker connections per
    WebSocket, and ``funded`` swarm senders (indices 0..funded-1 of ``seed``) given a balance
    at genesis."""
    balances = {data(swarm_signer(seed or 0, i).address): 10**12 for i in range(funded)}
    node: dict[str, dict[str, Any]] = {
        "api": {"max_connections": users + 256, "rate_limit_per_s": 1e6,
                "rate_limit_burst": 10**6},
    }
    if balances:
        node["node"] = {"genesis_balances": balances}
    return spec_from_dict({
        "name": name, "seed": seed, "l1": [], "block_time_ms": block_ms, "node": node,
        "nginx": {"worker_connections": max(1024, 2 * users + 256)},
    })

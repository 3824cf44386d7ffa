"""``dubhe-lab nightly``: every part of the nightly run into one run directory, then the report.

A *part* is one command run as a subprocess (its own session, so a timeout or Ctrl-C stops its
whole process tree): the scenario suite, a swarm under a fault profile, the scheduler property
tests, mutation testing (:mod:`lab.mutation`), and each ``dubhe-bench`` command with
``--json``. Parts run one after another (the benchmarks measure this machine; nothing else of
the run shares it). A failing part is recorded as failed and the next one runs. Everything
lands in ``<root>/<id>/``::

    parts.json        mode, seed, git, and per part: status, exit code, duration, log, outputs
    logs/<part>.log   the part's output
    scenarios/ labs/ swarm/ bench/<name>.json junit/scheduler-properties.xml mutation/<target>.json

then :func:`reports.render.render_run` writes ``report/index.html`` and the index of runs, and
compares the run's metrics with the previous runs of the same mode.

``parts.json`` is rewritten whole at every change of a part's state, so a run that was killed
still says how far it got. Exit status of :func:`main`-level callers: :data:`EXIT_REGRESSION`
(1) when the report flags a regression, :data:`EXIT_PARTS_FAILED` (3) when none did but a part
failed, 0 otherwise (docs/reports.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = Path("reports/nightly")
PARTS_VERSION = 1
EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, EXIT_PARTS_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
SWARM_PROFILE = "fault-profiles/nightly-swarm.toml"
Say = Callable[[str], None]


@dataclass
class PartSpec:
    """One part: ``argv`` run in the repository with ``env`` added, outputs relative to the run
    directory (``{run}`` in ``argv`` is replaced by the run directory)."""

    name: str
    kind: str  # scenarios | swarm | properties | mutation | bench
    argv: list[str]
    outputs: list[str]
    timeout_s: float
    env: dict[str, str] = field(default_factory=dict)
    needs: list[str] = field(default_factory=list)  # repository paths the part needs


@dataclass
class PartRecord:
    name: str
    kind: str
    #: pending, running, passed, failed, timeout, error, interrupted, skipped
    status: str = "pending"
    exit_code: int | None = None
    started: float | None = None
    duration_s: float | None = None
    log: str = ""
    outputs: list[str] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    note: str = ""


# -- what runs ----------------------------------------------------------------------------------

BENCHES = ("lab", "latency", "swarm", "rpc", "ws-fanout", "vm", "loader", "loader-l1",
           "l1-faults", "scheduler", "proxy")

#: Per bench: (quick options, full options). Quick runs are smoke-sized: most targets print
#: "not judged" there, but every figure is measured and trended against other quick runs.
BENCH_OPTIONS: dict[str, tuple[list[str], list[str]]] = {
    "lab": (["--runs", "1"], []),
    "latency": (["--subscribers", "50", "--seconds", "2", "--processes", "1",
                 "--runs-root", "{run}/labs"], ["--runs-root", "{run}/labs"]),
    "swarm": (["--users", "20", "--seconds", "5", "--baseline-users", "5", "--step-users", "",
               "--processes", "1", "--runs-root", "{run}/labs"], ["--runs-root", "{run}/labs"]),
    "rpc": (["--seconds", "1", "--rounds", "1", "--clients", "1,16"], []),
    "ws-fanout": (["--subscribers", "100", "--seconds", "2"],
                  ["--subscribers", "1000", "--processes", "2"]),
    "vm": (["--seconds", "0.5", "--instances", "10"], []),
    "loader": (["--loads", "5000", "--rounds", "1", "--reps", "5"], []),
    "loader-l1": (["--reps", "1", "--seconds", "2"], []),
    "l1-faults": (["--phase-s", "3"], []),
    "scheduler": (["--quick", "--workloads", "p2p-1000,hot,compute", "--substrates", "threads",
                   "--executors", "reference", "--max-seconds", "60"], []),
    "proxy": (["--samples", "500", "--seconds", "0.5", "--connections", "100", "--hold", "0.2",
               "--aimed-connections", "50", "--aimed-toxics", "10", "--toxic-ops", "40",
               "--subscribers", "20", "--disconnects", "100"], []),
}
BENCH_TIMEOUT_S = {"quick": 300.0, "full": 3600.0}


def plan(*, quick: bool, seed: int, python: str = sys.executable) -> list[PartSpec]:
    """The parts of a nightly run, in order."""
    mode = "quick" if quick else "full"
    py = [python, "-m"]
    pytest = [*py, "pytest", "-q", "-p", "no:cacheprovider"]
    parts = [
        PartSpec("scenarios", "scenarios",
                 [*pytest, "scenarios", "-m", "scenario and not nightly" if quick else "scenario",
                  "--scenario-profile", "fast" if quick else "full",
                  "--scenario-results", "{run}/scenarios", "--lab-runs-dir", "{run}/labs",
                  "--scenario-seed", str(seed)],
                 ["scenarios"], 1200.0 if quick else 4 * 3600.0, needs=["scenarios"]),
        PartSpec("swarm", "swarm",
                 [*py, "lab", "swarm", "--users", "20" if quick else "200",
                  "--spawn-rate", "20" if quick else "50",
                  "--duration", "20" if quick else "120", "--mix", "mixed",
                  "--profile", SWARM_PROFILE, "--out", "{run}/swarm",
                  "--runs-root", "{run}/labs", "--seed", str(seed)],
                 ["swarm"], 300.0 if quick else 1200.0, needs=[SWARM_PROFILE]),
        PartSpec("properties", "properties",
                 [*pytest, "tests/node/scheduler", "-m", "slow or nightly or not slow",
                  f"--hypothesis-seed={seed}", "--junitxml",
                  "{run}/junit/scheduler-properties.xml",
                  *([] if quick else ["--timeout", "3600"])],
                 ["junit/scheduler-properties.xml"], 900.0 if quick else 6 * 3600.0,
                 env={"HYPOTHESIS_PROFILE": "default" if quick else "nightly"},
                 needs=["tests/node/scheduler"]),
        PartSpec("mutation", "mutation",
                 [*py, "lab.mutation", "--out", "{run}/mutation", "--heartbeat", "60",
                  *(["--quick"] if quick else [])],
                 ["mutation"], 1200.0 if quick else 8 * 3600.0,
                 needs=["lab/mutation/targets.toml"]),
    ]
    for name in BENCHES:
        quick_opts, full_opts = BENCH_OPTIONS[name]
        parts.append(PartSpec(
            f"bench-{name}", "bench",
            [*py, "bench.cli", name, *(quick_opts if quick else full_opts),
             "--json", f"{{run}}/bench/{name}.json"],
            [f"bench/{name}.json"], BENCH_TIMEOUT_S[mode]))
    return parts


def select(parts: list[PartSpec], only: Sequence[str], skip: Sequence[str]) -> list[PartSpec]:
    """Parts named (or of a kind named: ``bench`` = every ``bench-*``) by ``only``, minus
    ``skip``. An unknown name raises ValueError listing the known ones."""
    known = {p.name for p in parts} | {p.kind for p in parts}
    unknown = [n for n in [*only, *skip] if n not in known]
    if unknown:
        raise ValueError(f"unknown part {', '.join(map(repr, unknown))}; parts: "
                         f"{', '.join(p.name for p in parts)} (or a kind: "
                         f"{', '.join(sorted({p.kind for p in parts}))})")

    def named(p: PartSpec, names: Sequence[str]) -> bool:
        return p.name in names or p.kind in names

    return [p for p in parts if (not only or named(p, only)) and not named(p, skip)]


# -- running ------------------------------------------------------------------------------------

class Interrupted(Exception):
    pass


@dataclass
class Nightly:
    """A run in progress: the run directory, its parts and their records."""

    run_dir: Path
    mode: str
    seed: int
    parts: list[PartSpec]
    say: Say = print
    heartbeat_s: float = 30.0
    argv: list[str] = field(default_factory=list)
    records: list[PartRecord] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    all_parts: list[str] = field(default_factory=list)  # the plan's names, for "not selected"

    def __post_init__(self) -> None:
        self.records = [PartRecord(p.name, p.kind, log=f"logs/{p.name}.log",
                                   outputs=list(p.outputs),
                                   command=[self._arg(a) for a in p.argv]) for p in self.parts]
        self.meta = {"version": PARTS_VERSION, "id": self.run_dir.name, "mode": self.mode,
                     "seed": self.seed, "started": time.time(), "ended": None,
                     "argv": self.argv, "git": git_info(REPO), "host": host_info(),
                     "repository": str(REPO)}

    def _arg(self, a: str) -> str:
        return a.replace("{run}", str(self.run_dir))

    def write(self) -> None:
        data = {**self.meta, "parts": [asdict(r) for r in self.records]}
        tmp = self.run_dir / ".parts.json.tmp"
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(self.run_dir / "parts.json")

    def run(self) -> bool:
        """Run every part; False when interrupted (the rest are then marked skipped)."""
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.write()
        n = len(self.parts)
        for i, (spec, rec) in enumerate(zip(self.parts, self.records, strict=True), 1):
            try:
                self._run_part(f"   [{i:>2}/{n}]", spec, rec)
            except Interrupted:
                rec.status, rec.note = "interrupted", "interrupted (Ctrl-C or SIGTERM)"
                for later in self.records[i:]:
                    later.status, later.note = "skipped", "the run was interrupted"
                self.meta["ended"] = time.time()
                self.write()
                self.say(f"   [{i:>2}/{n}] {spec.name:<16} interrupted; remaining parts skipped")
                return False
        self.meta["ended"] = time.time()
        self.meta["load_end"] = list(os.getloadavg())
        self.write()
        return True

    def _run_part(self, tag: str, spec: PartSpec, rec: PartRecord) -> None:
        missing = [p for p in spec.needs if not (REPO / p).exists()]
        if missing:
            rec.status = "error"
            rec.note = f"needs {', '.join(missing)} (a checkout of the repository)"
            self.write()
            self.say(f"{tag} {spec.name:<16} error    {rec.note}")
            return
        for out in spec.outputs:  # the commands write files, not their directories
            (self.run_dir / out).parent.mkdir(parents=True, exist_ok=True)
        log_path = self.run_dir / rec.log
        rec.status, rec.started = "running", time.time()
        self.write()
        self.say(f"{tag} {spec.name:<16} running  (timeout {_dur(spec.timeout_s)}; "
                 f"log {rec.log})")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **spec.env}
        t0 = time.monotonic()
        with log_path.open("wb") as log:
            log.write(f"$ {' '.join(rec.command)}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(rec.command, cwd=REPO, env=env, stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
            except OSError as exc:
                rec.status, rec.note = "error", f"could not start: {exc}"
                rec.duration_s = time.monotonic() - t0
                self.write()
                self.say(f"{tag} {spec.name:<16} error    {rec.note}")
                return
            try:
                code = self._wait(proc, spec, t0, log_path, tag)
            except KeyboardInterrupt:
                _stop(proc)
                rec.duration_s = time.monotonic() - t0
                raise Interrupted from None
        rec.duration_s = round(time.monotonic() - t0, 3)
        if code is None:
            rec.status, rec.note = "timeout", f"stopped after {_dur(spec.timeout_s)}"
        else:
            rec.exit_code = code
            rec.status = "passed" if code == 0 else "failed"
            if code != 0:
                rec.note = self._missed(spec) or _last_line(log_path)
        self.write()
        self.say(f"{tag} {spec.name:<16} {rec.status:<8} {_dur(rec.duration_s)}"
                 f"{f'  exit {code}' if code not in (None, 0) else ''}"
                 f"{f'  ({rec.note})' if rec.status != 'passed' and rec.note else ''}")

    def _missed(self, spec: PartSpec) -> str:
        """For a benchmark that exited non-zero: the targets it missed, from its JSON."""
        if spec.kind != "bench":
            return ""
        try:
            data = json.loads((self.run_dir / spec.outputs[0]).read_text())
            missed = []
            for name, t in data["targets"].items():
                if t.get("pass") is False:
                    op = "<=" if t["direction"] == "lower" else ">="
                    unit = f" {t['unit']}" if t.get("unit") else ""
                    missed.append(f"{name} {t['value']:.4g} (target {op} {t['target']:g}{unit})")
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return ""
        return f"MISS: {'; '.join(missed)}" if missed else ""

    def _wait(self, proc: subprocess.Popen[bytes], spec: PartSpec, t0: float, log_path: Path,
              tag: str) -> int | None:
        """The exit code, or None after the part's timeout (its process group stopped)."""
        next_beat = t0 + self.heartbeat_s
        while True:
            now = time.monotonic()
            wait = min(next_beat, t0 + spec.timeout_s) - now
            try:
                return proc.wait(timeout=max(0.01, wait))
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if now - t0 >= spec.timeout_s:
                _stop(proc)
                return None
            if now >= next_beat:
                next_beat = now + self.heartbeat_s
                last = _last_line(log_path)
                self.say(f"{tag} {spec.name:<16} ... {_dur(now - t0)}"
                         f"{f': {last}' if last else ''}")


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM the part's process group (labs tear down on it), then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # children that outlived the leader


def _last_line(path: Path, limit: int = 160) -> str:
    """The log's last non-empty line (from its last 8 KiB), shortened."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 8192))
            tail = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in tail.replace("\r", "\n").splitlines() if ln.strip()]
    if not lines:
        return ""
    last = lines[-1]
    return last if len(last) <= limit else last[: limit - 3] + "..."


def _dur(s: float | None) -> str:
    if s is None:
        return ""
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    if m >= 60:
        return f"{m // 60} h {m % 60:02d} min"
    return f"{m} min {sec:02d} s" if sec else f"{m} min"


def git_info(repo: Path) -> dict[str, Any] | None:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                                 timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
            "dirty": bool(status)}


def host_info() -> dict[str, Any]:
    return {"hostname": os.uname().nodename, "cpus": os.cpu_count(),
            "python": sys.version.split()[0], "load": list(os.getloadavg())}


def new_run_dir(root: Path, mode: str) -> Path:
    """``<root>/<YYYYmmdd-HHMMSS>-<mode>`` (``-2``, ``-3`` ... when taken)."""
    root.mkdir(parents=True, exist_ok=True)
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{mode}"
    for i in range(1, 1000):
        d = root / (base if i == 1 else f"{base}-{i}")
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    raise RuntimeError(f"no free run directory name under {root}")


# -- the commands -------------------------------------------------------------------------------

class UsageError(Exception):
    """Bad options or files: one line, exit status 2."""


def _rules(path: Path | None, window: int | None) -> Any:
    from reports import trends

    try:
        return trends.load_config(path, window=window)
    except trends.ConfigError as exc:
        raise UsageError(str(exc)) from None


def nightly(*, root: Path, quick: bool, seed: int | None, only: Sequence[str] = (),
            skip: Sequence[str] = (), rules: Path | None = None, window: int | None = None,
            dry_run: bool = False, argv: Sequence[str] = (), say: Say = print,
            heartbeat_s: float | None = None, parts: list[PartSpec] | None = None) -> int:
    """``dubhe-lab nightly``: run the parts, render, and return the exit status (module
    docstring). ``parts`` replaces the plan (tests)."""
    import random

    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    root = root.resolve()  # the parts run in the repository, the run directory is absolute
    config = _rules(rules, window)
    mode = "quick" if quick else "full"
    try:
        chosen = select(parts if parts is not None else plan(quick=quick, seed=seed), only, skip)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not chosen:
        raise UsageError("no part left to run (--only/--skip)")
    if dry_run:
        say(f"== nightly ({mode}, seed {seed}): {len(chosen)} parts, in order")
        for p in chosen:
            env = " ".join(f"{k}={v}" for k, v in p.env.items())
            cmd = shlex.join(a.replace("{run}", str(root / "<id>")) for a in p.argv)
            say(f"   {p.name:<16} {env + ' ' if env else ''}{cmd}")
        return EXIT_OK
    run_dir = new_run_dir(root, mode)
    say(f"== nightly {run_dir.name} ({mode}, seed {seed}; replay with --seed {seed}): "
        f"{len(chosen)} parts -> {run_dir}")
    run = Nightly(run_dir, mode, seed, chosen, say=say, argv=list(argv),
                  heartbeat_s=heartbeat_s or (15.0 if quick else 60.0))
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        finished = run.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    rendered = _render(run, config, root, say)
    failed = [r for r in run.records if r.status not in ("passed", "skipped")]
    say(f"== parts: {sum(r.status == 'passed' for r in run.records)} passed, "
        f"{len(failed)} not passed{': ' if failed else ''}"
        f"{', '.join(f'{r.name} ({r.status})' for r in failed)}")
    if rendered is None:
        return EXIT_REGRESSION
    if not finished:
        return EXIT_INTERRUPTED
    if rendered.regressions:
        return EXIT_REGRESSION
    return EXIT_PARTS_FAILED if failed else EXIT_OK


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _render(run: Nightly, config: Any, root: Path, say: Say) -> Any:
    """Render the run's report; a crash is written to logs/render.log (None returned)."""
    import traceback

    from reports.render import render_run

    say("== rendering the report")
    t0 = time.monotonic()
    try:
        rendered = render_run(run.run_dir, config=config, root=root)
    except Exception as exc:
        (run.run_dir / "logs" / "render.log").write_text(traceback.format_exc())
        run.meta["render"] = {"status": "failed", "duration_s": time.monotonic() - t0,
                              "error": f"{type(exc).__name__}: {exc}"}
        run.write()
        say(f"== the report could not be rendered ({type(exc).__name__}: {exc}); "
            f"traceback in {run.run_dir / 'logs' / 'render.log'}")
        return None
    run.meta["render"] = {"status": "passed", "duration_s": round(rendered.seconds, 3),
                          "regressions": len(rendered.regressions),
                          "problems": len(rendered.problems)}
    run.write()
    report_summary(rendered, say)
    return rendered


def report_summary(rendered: Any, say: Say) -> None:
    """What ``nightly`` and ``report`` print after rendering."""
    for p in rendered.problems:
        say(f"   unreadable: {p.line()}")
    n = len(rendered.compared_with)
    judged = sum(j.verdict in ("regression", "improvement", "ok") for j in rendered.judgements)
    if rendered.regressions:
        say(f"== {len(rendered.regressions)} REGRESSION(S) against the previous {n} "
            f"{rendered.run.mode} run(s):")
        for j in rendered.regressions:
            say(f"   {j.metric}: {j.why()}")
    elif judged:
        say(f"== no regressions against the previous {n} {rendered.run.mode} run(s) "
            f"({judged} metrics judged)")
    elif n:
        say(f"== nothing judged yet: {n} previous {rendered.run.mode} run(s), a metric needs "
            "more history (docs/reports.md)")
    else:
        say(f"== no previous {rendered.run.mode} run to compare with")
    say(f"== report: {rendered.page} (rendered in {rendered.seconds:.1f} s)")
    if rendered.index is not None:
        say(f"== all runs: {rendered.index}")


def report(run_dir: Path, *, root: Path | None = None, rules: Path | None = None,
           window: int | None = None, say: Say = print) -> int:
    """``dubhe-lab report RUN_DIR``: re-render a run; 1 when it flags a regression."""
    from reports.render import render_run

    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: not a directory (give a run directory, e.g. "
                         f"{DEFAULT_ROOT}/<id>)")
    config = _rules(rules, window)
    rendered = render_run(run_dir, config=config, root=root)
    report_summary(rendered, say)
    return EXIT_REGRESSION if rendered.regressions else EXIT_OK

"""Run mutmut on one target at a time and write each target's result file.

For a target, :func:`run_target`:

1. lays out a work directory ``<work>/<name>/``: links to the repository's packages, tests and
   ``conftest.py``, and a ``pyproject.toml`` that is the repository's plus a ``[tool.mutmut]``
   table (mutmut reads its configuration from the current directory only);
2. runs ``mutmut run`` there in its own session, with ``HYPOTHESIS_PROFILE`` set, printing its
   phase and progress every ``heartbeat_s``; past the target's budget it stops it (results so
   far are kept: mutmut records each mutant as it finishes);
3. reads the results (:mod:`lab.mutation.results`) and writes ``<out>/<name>.json``.

``mode`` ``"resume"`` keeps the work directory of an earlier run of the target (stopped by its
budget or Ctrl-C) and tests only the mutants without a result; ``"survivors"`` keeps it and
tests again only the mutants that survived (after new tests were written). Either way mutmut
copies the tests afresh, finds new tests, and the result file covers every mutant.

mutmut's ``forkserver`` process isolation is used: the fork of mutmut's own process deadlocks
after the threaded tests (Block-STM, the proxy), and the fork server imports only third-party
modules (``preload``), so every mutant's run imports the project and the test modules afresh
and objects built at import time see the mutant.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

import tomli_w

from lab.mutation import results
from lab.mutation.targets import Target

Say = Callable[[str], None]
REPO = Path(__file__).resolve().parents[2]
PROGRESS = re.compile(r"(\d+)/(\d+)\s+🎉 (\d+) 🫥 (\d+)\s+⏰ (\d+)\s+🤔 (\d+)\s+🙁 (\d+)")
PHASES = ("Generating mutants", "Running stats", "Listing all tests", "Running clean tests",
          "Running forced fail test", "Running mutation testing")


Mode = Literal["fresh", "resume", "survivors"]


class MutmutMissing(Exception):
    """mutmut is not installed where this Python can find it."""


class NothingToResume(Exception):
    """``resume`` or ``survivors`` without an earlier run of the target in the work directory."""


def mutmut_command() -> list[str]:
    """The ``mutmut`` console script beside this interpreter (else on PATH)."""
    beside = Path(sys.executable).with_name("mutmut")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("mutmut")
    if found:
        return [found]
    raise MutmutMissing("mutmut is not installed: `make setup` installs the dev extra "
                        "(mutmut>=3.8,<4)")


def mutmut_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("mutmut")
    except metadata.PackageNotFoundError:
        return None


def mutmut_config(t: Target) -> dict[str, Any]:
    """The ``[tool.mutmut]`` table of a target (mutmut 3.8's keys)."""
    return {
        "source_paths": t.packages,
        "only_mutate": [t.module],
        "pytest_add_cli_args_test_selection": t.tests,
        "pytest_add_cli_args": ["-p", "no:cacheprovider"],
        "also_copy": [c for c in t.copy if c != "tests"],
        "process_isolation": "forkserver",
        "forkserver_warmup": "import",
        "preload_modules_file": "preload.txt",
        "use_git_change_detection": False,
        "on_dependency_change": "ignore",
        "timeout_multiplier": t.timeout_multiplier,
    }


def prepare(t: Target, work: Path, repo: Path, *, keep: bool = False) -> None:
    """Lay out the work directory of ``t`` afresh (module docstring, step 1); with ``keep``,
    only its configuration is rewritten (the mutants and their results stay)."""
    if not keep:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        for p in dict.fromkeys([*t.packages, *t.copy]):
            dest = work / p
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(repo / p, target_is_directory=(repo / p).is_dir())
    data = tomllib.loads((repo / "pyproject.toml").read_text()) \
        if (repo / "pyproject.toml").exists() else {}
    data.setdefault("tool", {})["mutmut"] = mutmut_config(t)
    (work / "pyproject.toml").write_text(tomli_w.dumps(data))
    (work / "preload.txt").write_text("".join(f"{m}\n" for m in t.preload))


@contextlib.contextmanager
def _locked(work: Path) -> Iterator[None]:
    """One run per work directory at a time (a second one would wipe the first's files)."""
    work.parent.mkdir(parents=True, exist_ok=True)
    with open(work.parent / f".{work.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"{work} is in use by another mutation run") from None
        yield


def run_target(t: Target, *, out: Path, work_root: Path, repo: Path = REPO, jobs: int = 2,
               say: Say = print, heartbeat_s: float = 30.0,
               budget_s: float | None = None, mode: Mode = "fresh") -> dict[str, Any]:
    """Run ``t`` and write ``out/<name>.json``; returns what was written. ``mode``: see the
    module docstring (``resume`` and ``survivors`` raise NothingToResume without an earlier
    run in the work directory)."""
    work = work_root / t.name
    budget = budget_s or t.budget_s
    started = time.time()
    record: dict[str, Any] = {
        "version": results.RESULT_VERSION, "name": t.name, "module": t.module,
        "tests": t.tests, "mutant_filter": t.mutants,
        "hypothesis_profile": t.hypothesis_profile, "mutmut": mutmut_version(),
        "min_score": t.min_score, "budget_s": budget, "started": started,
        "git": _git(repo), "work": str(work), "complete": False, "error": None,
    }
    with _locked(work):
        names = list(t.mutants)
        if mode != "fresh":
            earlier, problem = results.read_module(work, t.module, repo=repo)
            # a run stopped before mutmut wrote any result can be resumed, not retested
            if not (work / "pyproject.toml").exists() or (mode == "survivors" and problem):
                raise NothingToResume(f"no earlier run of {t.name} in {work} to {mode} "
                                      "(run it once without --resume/--retest-survivors)")
            before = tomllib.loads((work / "pyproject.toml").read_text()).get(
                "tool", {}).get("mutmut")
            if before != mutmut_config(t):
                # mutmut forgets every result when its configuration changes: the earlier
                # results could not be kept, and the "retest" would be a partial fresh run
                changed = sorted(k for k in {*(before or {}), *mutmut_config(t)}
                                 if (before or {}).get(k) != mutmut_config(t).get(k))
                raise NothingToResume(
                    f"{t.name}: its configuration changed since the run in {work} "
                    f"({', '.join(changed)}); mutmut would forget every result: run it afresh "
                    "(without --resume/--retest-survivors)")
            if mode == "survivors":
                names = [m.key for m in earlier if m.status in results.UNDETECTED]
                if not names:
                    raise NothingToResume(f"{t.name}: no survivors in {work} to test again")
                say(f"-- {t.name}: testing again the {len(names)} survivor(s) of the run in "
                    f"{work}")
            else:
                left = sum(1 for m in earlier if m.status in results.UNSCORED)
                say(f"-- {t.name}: resuming the run in {work}: " + (
                    f"{left} of {len(earlier)} mutants without a result" if earlier
                    else "no mutant had a result yet"))
        record["mode"] = mode
        prepare(t, work, repo, keep=mode != "fresh")
        argv = [*mutmut_command(), "run", "--max-children", str(jobs), *names]
        env = {**os.environ, "HYPOTHESIS_PROFILE": t.hypothesis_profile,
               "PYTHONUNBUFFERED": "1"}
        say(f"-- {t.name}: mutmut on {t.module} with {' '.join(t.tests)} "
            f"(budget {_dur(budget)}, {jobs} worker(s), HYPOTHESIS_PROFILE="
            f"{t.hypothesis_profile}; log {work / 'mutmut.log'})")
        interrupted = False
        try:
            code, stopped = _supervise(argv, work, env, t.name, budget, say, heartbeat_s)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (cli): mutmut is stopped; keep its results
            code, stopped, interrupted = None, "interrupted", True
        record["exit_code"] = code
        record["duration_s"] = round(time.time() - started, 1)
        mutants, problem = results.read_module(work, t.module, repo=repo)
        record.update(results.summarize(mutants))
        if stopped:
            record["error"] = f"stopped: {stopped}"
        elif code != 0:
            record["error"] = f"mutmut exited {code}: {_tail(work / 'mutmut.log')}"
            if "stats" in record["error"] or "clean test" in record["error"]:
                record["error"] += (f" (a selected test fails in the work directory: "
                                    f"cd {work / 'mutants'} && pytest {' '.join(t.tests)})")
        elif problem:
            record["error"] = problem
        else:
            record["complete"] = record["not_checked"] == 0
            if not record["complete"]:
                record["error"] = f"{record['not_checked']} mutants were not run"
    gate = record.get("score_excluding_messages")
    record["passed"] = None if gate is None else gate >= t.min_score
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{t.name}.json.tmp"
    tmp.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(out / f"{t.name}.json")
    if interrupted:
        raise KeyboardInterrupt
    return record


def _supervise(argv: list[str], work: Path, env: dict[str, str], name: str, budget_s: float,
               say: Say, heartbeat_s: float) -> tuple[int | None, str | None]:
    """Run mutmut, log its output, report progress; ``(exit code, why it was stopped)``."""
    log = (work / "mutmut.log").open("ab")  # a resumed run's log follows the earlier one
    proc = subprocess.Popen(argv, cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    assert proc.stdout is not None
    state = {"phase": "starting", "progress": ""}
    reader = threading.Thread(target=_pump, args=(proc.stdout, log, state), daemon=True)
    reader.start()
    t0 = time.monotonic()
    next_beat = t0 + heartbeat_s
    stopped = None
    try:
        while True:
            try:
                code: int | None = proc.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if now - t0 > budget_s:
                stopped = f"budget of {_dur(budget_s)} spent"
                say(f"   {name}: {stopped}; stopping mutmut (results so far are kept)")
                _stop(proc)
                code = proc.returncode
                break
            if now >= next_beat:
                next_beat = now + heartbeat_s
                say(f"   {name}: {_dur(now - t0)} {state['phase']}"
                    f"{': ' + state['progress'] if state['progress'] else ''}")
    except KeyboardInterrupt:
        _stop(proc)
        reader.join(timeout=5)
        log.close()
        raise
    reader.join(timeout=10)
    log.close()
    return code, stopped


def _pump(stream: IO[bytes], log: IO[bytes], state: dict[str, str]) -> None:
    fd = stream.fileno()
    while chunk := os.read(fd, 65536):
        log.write(chunk)
        log.flush()
        text = chunk.decode(errors="replace")
        for phase in PHASES:
            if phase in text:
                state["phase"] = phase.lower()
        hits = PROGRESS.findall(text)
        if hits:
            done, total, killed, no_tests, timeout, _, survived = hits[-1]
            state["progress"] = (f"{done}/{total} mutants run, {killed} killed, {survived} "
                                 f"survived, {no_tests} without tests, {timeout} timed out")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _tail(path: Path, n: int = 3) -> str:
    try:
        text = path.read_bytes()[-8192:].decode(errors="replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return " | ".join(lines[-n:])


def _git(repo: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _dur(s: float) -> str:
    if s < 60:
        return f"{s:.0f} s"
    m, sec = divmod(round(s), 60)
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min {sec:02d} s"

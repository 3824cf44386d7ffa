"""``python -m lab.mutation`` (``make mutation``): run the targets, write their results, print
a table with each score beside the previous run's.

Exit status: 0 every target ran in full and reached its ``min_score``; 1 one fell short or did
not finish in its budget; 2 bad options or targets file; 3 mutmut could not run a target (its
log is named); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from lab.mutation import run as runner
from lab.mutation import targets as targets_mod

EXIT_OK, EXIT_BELOW, EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_OUT_ROOT = Path("reports/mutation")
DEFAULT_WORK = Path(".mutation")


def _say(msg: str) -> None:
    print(msg, flush=True)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m lab.mutation", description=(
        "Mutation testing with mutmut 3: each target module mutated and tested by the tests "
        "that cover it, one target at a time; one JSON result file per target."))
    ap.add_argument("--targets", type=Path, default=targets_mod.DEFAULT_FILE, metavar="FILE",
                    help="targets file (default: lab/mutation/targets.toml)")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="run only this target (repeatable, or comma-separated; in the order "
                    "given)")
    ap.add_argument("--quick", action="store_true",
                    help="only the targets marked quick (the quick nightly)")
    ap.add_argument("--out", type=Path, metavar="DIR", help="where the result files go "
                    f"(default: {DEFAULT_OUT_ROOT}/<time>)")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, metavar="DIR",
                    help=f"mutmut's work directories, one per target (default: {DEFAULT_WORK})")
    ap.add_argument("--repo", type=Path, default=runner.REPO, metavar="DIR",
                    help="the repository whose packages and tests are used (default: this one)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="mutants tested at once (default: the CPU count)")
    ap.add_argument("--budget", type=float, metavar="S",
                    help="wall-clock budget of each target in seconds (default: the file's)")
    ap.add_argument("--heartbeat", type=float, default=30.0, metavar="S",
                    help="seconds between progress lines (default: 30)")
    again = ap.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue each target's earlier run in the work directory (one "
                       "stopped by its budget or Ctrl-C): only mutants without a result run")
    again.add_argument("--retest-survivors", action="store_true",
                       help="test again only the mutants that survived each target's earlier "
                       "run (after writing new tests); the result covers every mutant")
    ap.add_argument("--list", action="store_true", help="print the targets and exit")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    repo = args.repo.resolve()
    try:
        chosen = select(targets_mod.load(args.targets, repo=repo),
                        [n for item in args.only for n in item.split(",") if n], args.quick)
        if args.jobs < 1:
            raise targets_mod.TargetsError("--jobs must be at least 1")
        if args.list:
            for t in chosen:
                _say(f"{t.name:<28} {t.module:<36} min {t.min_score:.0%}  "
                     f"budget {runner._dur(t.budget_s):<12} tests: {' '.join(t.tests)}")
            return EXIT_OK
        runner.mutmut_command()
    except (targets_mod.TargetsError, runner.MutmutMissing) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = args.out or DEFAULT_OUT_ROOT / time.strftime("%Y%m%d-%H%M%S")
    out = out.resolve()
    previous = _previous(out)
    _say(f"== mutation testing: {len(chosen)} target(s) -> {out}")
    records: list[dict[str, Any]] = []
    # SIGTERM (the nightly's timeout, kill) stops mutmut too: it runs in its own session
    previous_term = signal.signal(signal.SIGTERM, _interrupt)
    mode: runner.Mode = ("resume" if args.resume
                         else "survivors" if args.retest_survivors else "fresh")
    try:
        for i, t in enumerate(chosen, 1):
            _say(f"[{i}/{len(chosen)}] {t.name}")
            try:
                records.append(runner.run_target(
                    t, out=out, work_root=args.work.resolve(), repo=repo, jobs=args.jobs,
                    say=_say, heartbeat_s=args.heartbeat, budget_s=args.budget, mode=mode))
            except RuntimeError as exc:  # the work directory is busy
                print(f"error: {exc}", file=sys.stderr)
                return EXIT_ERROR
            except runner.NothingToResume as exc:
                print(f"error: {exc}", file=sys.stderr)
                return EXIT_USAGE
            _say(f"   {line(records[-1], previous.get(t.name))}")
    except KeyboardInterrupt:
        _say("== interrupted (the target's results so far are written)")
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    _say("== scores (excluding message-only mutants; all mutants in brackets)")
    for r in records:
        _say(f"   {line(r, previous.get(r['name']))}")
    _say(f"== results: {out}")
    if any(r.get("score") is None for r in records):
        return EXIT_ERROR
    return EXIT_OK if all(r.get("passed") and r.get("complete") for r in records) \
        else EXIT_BELOW


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def select(all_targets: list[targets_mod.Target], only: list[str],
           quick: bool) -> list[targets_mod.Target]:
    known = {t.name for t in all_targets}
    unknown = [n for n in only if n not in known]
    if unknown:
        raise targets_mod.TargetsError(f"unknown target(s) {', '.join(unknown)}; targets: "
                                       f"{', '.join(sorted(known))}")
    by_name = {t.name: t for t in all_targets}
    ordered = [by_name[n] for n in dict.fromkeys(only)] if only else all_targets
    chosen = [t for t in ordered if not quick or t.quick]  # --only's order, else the file's
    if not chosen:
        raise targets_mod.TargetsError("no target selected")
    return chosen


def line(r: dict[str, Any], before: float | None = None) -> str:
    """One target's outcome: score, counts, and the change since the previous run."""
    gate, score = r.get("score_excluding_messages"), r.get("score")
    if gate is None:
        return f"{r['name']:<28} no score: {r.get('error') or 'nothing was scored'}"
    verdict = "ok" if r.get("passed") else f"BELOW {r['min_score']:.0%}"
    trend = "" if before is None else f"  (previous {before:.1%}, {100 * (gate - before):+.1f})"
    msg = r.get("message_only") or {}
    return (f"{r['name']:<28} {gate:6.1%} [{score:6.1%}]  {r['killed']} killed, "
            f"{r['survived']} survived of {r['mutants']} ({msg.get('mutants', 0)} "
            f"message-only), {runner._dur(r.get('duration_s') or 0)}  {verdict}{trend}"
            f"{'  ' + r['error'] if r.get('error') else ''}")


def _previous(out: Path) -> dict[str, float]:
    """The newest earlier result of each target in ``out``'s sibling directories."""
    found: dict[str, tuple[float, float]] = {}
    parent = out.parent
    if not parent.is_dir():
        return {}
    for f in parent.glob("*/*.json"):
        if f.parent == out:
            continue
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        score, started = data.get("score_excluding_messages"), data.get("started")
        if isinstance(score, int | float) and isinstance(started, int | float):
            name = str(data.get("name") or f.stem)
            if name not in found or started > found[name][0]:
                found[name] = (started, float(score))
    return {k: v[1] for k, v in found.items()}

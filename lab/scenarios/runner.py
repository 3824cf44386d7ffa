"""Run one scenario case in a fresh lab and write its result record and histories.

:func:`run_case` brings the case's lab up (through the caller's ``start_lab``, e.g. the pytest
plugin's ``lab_factory``), notes where every log ends and the proxy's last event, runs the
workload, then reads the run's slice of the logs and the proxy's events, computes the generic
figures, checks the case's expectations and writes::

    <results>/<case id>/result.json      the record (docs/results.md, version 1)
    <results>/<case id>/history.jsonl    every client's events, ordered by time
    <results>/listing.jsonl              one line per record (hive's listing)

The lab is torn down by whoever started it. A workload that raises gives a failed record with
the error (never a silent pass).
"""

from __future__ import annotations

import asyncio
import re
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.checkers import load as io
from lab.checkers.expect import Expectation
from lab.checkers.record import LogSpan, build
from lab.clients.history import merge, write_jsonl
from lab.orchestrate.errors import LabError
from lab.orchestrate.lab import Lab
from lab.orchestrate.spec import LabSpec
from lab.scenarios.context import RunContext
from lab.scenarios.figures import nginx_figures, proxy_figures
from lab.scenarios.model import Case
from lab.scenarios.workloads import REGISTRY


@dataclass(frozen=True)
class Outcome:
    """What a run gives back to the caller (the record is on disk too)."""

    case: Case
    record: dict[str, Any]
    path: Path

    @property
    def passed(self) -> bool:
        return bool(self.record["pass"])

    def verdict_line(self) -> str:
        r = self.record
        mark = "PASS" if r["pass"] else "FAIL"
        return f"{mark} {self.case.id:<48} {r['duration_s']:6.1f} s  {r['summary']}"

    def failures(self) -> list[str]:
        out = [Expectation(e["name"], e["expected"], e["observed"], e["pass"], e["phase"],
                           e.get("detail", "")).line()
               for e in self.record["expectations"] if not e["pass"]]
        if self.record["error"]:
            out.insert(0, f"error: {self.record['error']}")
        return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def summary(case: Case, figures: dict[str, Any], expectations: list[Expectation],
            error: str | None) -> tuple[str, dict[str, Any]]:
    """The one-line verdict text and the key figure."""
    key = case.variant.key_figure
    if key is None and expectations:
        key = expectations[0].name
    value = figures.get(key) if key else None
    if error is not None:
        return f"error: {error.splitlines()[0][:160]}", {"name": key, "value": value}
    failed = [e for e in expectations if not e.ok]
    never = [e for e in failed if e.phase == "fault"]
    if case.variant.summary:
        text = re.sub(r"\{([^{}]+)\}", lambda m: _fmt(figures.get(m.group(1), "?")),
                      case.variant.summary)
    else:
        text = f"{key} = {_fmt(value)}" if key else "no key figure"
    if never:
        text += "; fault never fired: " + ", ".join(
            e.name.removeprefix("fault signal: ") for e in never
        )
    elif failed:
        text += "; failed: " + ", ".join(f"{e.name} = {_fmt(e.observed)} (want {e.expected})"
                                         for e in failed[:3])
    return text, {"name": key, "value": value}


async def run_case(case: Case, *, start_lab: Callable[[LabSpec], Awaitable[Lab]],
                   results_dir: Path, progress: Callable[[str], None] | None = None) -> Outcome:
    say = progress or (lambda _: None)
    entry = REGISTRY[case.variant.workload]
    out_dir = results_dir / case.id.replace("/", "--")
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    lab: Lab | None = None
    ctx: RunContext | None = None
    figures: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    spans: dict[str, LogSpan] = {}
    error: str | None = None
    say(
        f"== scenario {case.id} ({case.profile}): "
        f"{case.variant.description or case.scenario.description}"
    )
    try:
        lab = await start_lab(case.spec)
        say(f"   lab {lab.run_id} seed {lab.seed} (replay: --lab-seed is the LabSpec seed)")
        before = io.log_sizes(lab.run_dir)
        seq0 = await _last_seq(lab)
        ctx = RunContext(lab, case, say, start_lab=start_lab)
        try:
            figures = await entry.fn(ctx, case.params)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            ctx.details["traceback"] = traceback.format_exc(limit=8)
        finally:
            await asyncio.sleep(0.2)  # nginx writes a WebSocket's access line when it ends
            events = await lab.fault_events(since=seq0)
            spans = io.spans(before, io.log_sizes(lab.run_dir))
            figures.update(nginx_figures(io.iter_lines(lab.run_dir, spans, "nginx_error"),
                                         io.iter_lines(lab.run_dir, spans, "nginx_access")))
            figures.update(proxy_figures(events))
    except LabError as exc:
        error = f"lab: {exc}"
    t_end = time.time()
    expectations = case.expectations(figures)
    text, key = summary(case, figures, expectations, error)
    histories = []
    if ctx is not None and ctx.histories:
        n = write_jsonl(out_dir / "history.jsonl", merge(ctx.histories))
        histories.append({"path": "history.jsonl", "clients": len(ctx.histories), "events": n})
    details = dict(ctx.details) if ctx is not None else {}
    if ctx is not None and ctx.extra_labs:
        details["extra_lab_run_dirs"] = ctx.extra_labs
    windows = [w for n in (ctx.nemeses if ctx else []) for w in n.windows]
    record = build(
        scenario=case.scenario.name, variant=case.variant.name,
        description=case.variant.description or case.scenario.description, profile=case.profile,
        seed=lab.seed if lab is not None else None, start=t_start, end=t_end,
        expectations=expectations, summary=text, key_figure=key, fault_events=events,
        lab=None if lab is None else {"run_dir": str(lab.run_dir), "run_id": lab.run_id,
                                      "spec": case.spec.model_dump(mode="json")},
        logs=spans, histories=histories,
        figures=figures, error=error,
        extra={"number": None if case.label else case.scenario.number,
               "incident": case.scenario.incident,
               "fix": case.scenario.fix, "file": str(case.source), "fault_windows": windows,
               "details": details})
    path = out_dir / "result.json"
    io.write_record(path, record)
    io.append_listing(results_dir / "listing.jsonl", record, str(path.relative_to(results_dir)))
    outcome = Outcome(case, record, path)
    say(f"   {outcome.verdict_line()}")
    return outcome


async def _last_seq(lab: Lab) -> int:
    events = await lab.fault_events()
    return int(events[-1]["seq"]) if events else 0


__all__ = ["Outcome", "run_case", "summary"]

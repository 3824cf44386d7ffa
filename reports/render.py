"""Render a run directory to a static HTML page (plots beside it) and the index of all runs.

:func:`render_run` reads the run (:mod:`reports.run`), extracts its metrics, compares them with
the previous runs of the same mode under the same root (:mod:`reports.trends`), draws the plots
and writes::

    <run>/report/index.html          the page (CSS and script inline)
    <run>/report/img/*.png           its plots
    <run>/report/logs/<case>/*.log   each scenario case's slice of every component log
    <run>/metrics.json               the run's flat metrics and summary (later runs compare)
    <run>/trends.json                the verdict on every judged metric
    <root>/index.html                every run under the root, newest first, with key trends

Nothing here raises for a bad result file: it becomes a visible problem on the page.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from reports import plots, trends
from reports import scenarios as sc
from reports.files import Problem, number
from reports.metrics import extract
from reports.run import RAN, Run, load

TEMPLATES = Path(__file__).with_name("templates")
METRICS_VERSION = 1
#: Bytes of one component log kept per scenario case slice (the whole log is linked too).
SLICE_CAP = 2 << 20


@dataclass
class Rendered:
    run: Run
    page: Path
    regressions: list[trends.Judgement]
    judgements: list[trends.Judgement]
    problems: list[Problem]
    compared_with: list[str]
    seconds: float
    index: Path | None = None


def render_run(run_dir: Path, *, config: trends.Config | None = None, root: Path | None = None,
               index: bool = True) -> Rendered:
    """Render ``run_dir`` (see the module docstring). ``root`` holds the runs compared with and
    indexed (default: the run's parent)."""
    t0 = time.monotonic()
    run_dir = run_dir.resolve()
    root = (root or run_dir.parent).resolve()
    config = config or trends.load_config()
    run = load(run_dir)
    metrics = extract(run)
    history = previous_runs(root, run)
    judgements = trends.compare(metrics.values, history.metrics, config,
                                {**history.directions, **metrics.directions}, ids=history.ids)
    regressions = [j for j in judgements if j.verdict == "regression"]
    out = run_dir / "report"
    for sub in ("img", "logs"):
        shutil.rmtree(out / sub, ignore_errors=True)
    img = out / "img"
    img.mkdir(parents=True, exist_ok=True)

    view = _View(run, out, img)
    scen = view.scenarios()
    swarm = view.swarm()
    sched = view.scheduler()
    bench = view.benches()
    props = view.properties()
    mut = view.mutation(history)
    trend_view = view.trends(judgements, history, config)
    problems = [_problem_row(run, p) for p in run.problems]
    env = _env()
    html = env.get_template("run.html.j2").render(
        run=view.header(), rendered=_iso(time.time()), css=_asset("base.css"),
        js=_asset("script.js"), index_link=os.path.relpath(root / "index.html", out),
        regressions=[_judgement_row(j) for j in regressions], failing_parts=view.failing_parts(),
        summary=view.summary(len(regressions)), problems=problems, parts=view.parts(),
        scenarios=scen, swarm=swarm, scheduler=sched, benches=bench, properties=props,
        mutation=mut, trends=trend_view)
    page = out / "index.html"
    _write(page, html)
    summary = view.summary_data(len(regressions))
    _write(run_dir / "metrics.json", json.dumps({
        "version": METRICS_VERSION, "id": run.id, "mode": run.mode, "started": run.started,
        "ended": run.ended, "rendered": time.time(), "values": metrics.values,
        "directions": metrics.directions, "summary": summary}, indent=1, sort_keys=True))
    _write(run_dir / "trends.json", json.dumps({
        "version": METRICS_VERSION, "compared_with": history.ids, "window": config.window,
        "min_history": config.min_history,
        "judgements": [j.as_dict() for j in judgements]}, indent=1))
    rendered = Rendered(run, page, regressions, judgements, list(run.problems), history.ids,
                        0.0)
    if index:
        rendered.index = render_index(root)
    rendered.seconds = time.monotonic() - t0
    return rendered


def previous_runs(root: Path, run: Run) -> trends.History:
    """Metrics of the runs under ``root`` of the same mode that started before ``run``, oldest
    first (runs never rendered have no metrics.json and are skipped)."""
    found: list[tuple[float, str, dict[str, float], dict[str, str]]] = []
    for d in _run_dirs(root):
        if d.resolve() == run.path.resolve():
            continue
        data = _read_metrics(d)
        if data is None or data.get("mode") != run.mode:
            continue
        started = number(data.get("started"))
        if started is None or started >= run.started:
            continue
        values = {str(k): float(v) for k, v in (data.get("values") or {}).items()
                  if number(v) is not None}
        found.append((started, str(data.get("id") or d.name), values,
                      dict(data.get("directions") or {})))
    found.sort(key=lambda f: f[0])
    h = trends.History()
    for _, rid, values, directions in found:
        h.ids.append(rid)
        h.metrics.append(values)
        h.directions.update(directions)
    return h


def _run_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.is_symlink() and
                  ((d / "metrics.json").exists() or (d / "parts.json").exists()))


def _read_metrics(d: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((d / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# -- the index of runs --------------------------------------------------------------------------

def render_index(root: Path) -> Path:
    """``<root>/index.html``: every run directory under ``root``, newest first, and the key
    metrics over the runs of each mode."""
    root = root.resolve()
    rows: list[dict[str, Any]] = []
    series: dict[str, list[tuple[float, str, dict[str, float]]]] = {}
    newest_directions: dict[str, dict[str, str]] = {}
    for d in _run_dirs(root):
        data = _read_metrics(d)
        page = d / "report" / "index.html"
        link = os.path.relpath(page, root) if page.exists() else None
        if data is None:
            rows.append({"id": d.name, "link": link, "mode": "unknown", "started": "",
                         "duration": "", "parts": "not rendered", "scenarios": "",
                         "benches": "", "regressions": 0, "regressions_text": "",
                         "problems": 0, "ok": False, "t": _mtime(d)})
            continue
        s = data.get("summary") or {}
        mode = str(data.get("mode") or "manual")
        started = number(data.get("started")) or _mtime(d)
        parts = s.get("parts") or {}
        scen = s.get("scenarios") or {}
        bench = s.get("bench") or {}
        regs = int(s.get("regressions") or 0)
        failed_parts = int(parts.get("failed") or 0)
        rows.append({
            "id": str(data.get("id") or d.name), "link": link, "mode": mode,
            "started": _iso(started), "duration": _dur(number(s.get("duration_s"))),
            "parts": (f"{parts.get('passed', 0)}/{parts.get('total', 0)} passed"
                      if parts.get("total") else "—"),
            "scenarios": (f"{scen.get('passed', 0)}/{scen.get('total', 0)} passed"
                          if scen.get("total") else "—"),
            "benches": (f"{bench.get('pass', 0)} PASS, {bench.get('miss', 0)} MISS, "
                        f"{bench.get('not_judged', 0)} not judged"
                        if bench.get("benches") else "—"),
            "regressions": regs,
            "regressions_text": "0" if s.get("compared") else "nothing to compare",
            "problems": int(s.get("problems") or 0),
            "ok": regs == 0 and failed_parts == 0 and not s.get("problems"), "t": started})
        series.setdefault(mode, []).append((started, str(data.get("id") or d.name),
                                            dict(data.get("values") or {})))
        newest_directions[mode] = dict(data.get("directions") or {})
    rows.sort(key=lambda r: -float(r["t"]))
    img = root / "index-img"
    shutil.rmtree(img, ignore_errors=True)
    drawn = []
    for mode, runs in sorted(series.items()):
        runs.sort(key=lambda r: r[0])
        runs = runs[-30:]
        keys = _key_metrics(runs[-1][2], newest_directions.get(mode, {}))
        p = plots.index_trends([(rid, v) for _, rid, v in runs], keys, img,
                               f"trends-{mode}.png", f"Key metrics over the {mode} runs")
        if p is not None:
            drawn.append(p)
    html = _env().get_template("index.html.j2").render(
        runs=rows, root=str(root), rendered=_iso(time.time()), plots=drawn,
        css=_asset("base.css"), js=_asset("script.js"))
    page = root / "index.html"
    _write(page, html)
    return page


def _key_metrics(values: dict[str, float], directions: dict[str, str]) -> list[str]:
    keys = ["run.scenarios.passed", "swarm.notify_p99_ms", "swarm.success_rate",
            "swarm.reconnect_time_p99_ms"]
    keys += [m for m in sorted(directions) if m.startswith("bench.") and
             (not m.startswith("bench.scheduler.") or m.endswith("best_tps"))]
    keys += [m for m in sorted(values) if m.startswith("properties.") and m.endswith(".failures")]
    return [k for k in keys if k in values][:20]


def _mtime(d: Path) -> float:
    try:
        return d.stat().st_mtime
    except OSError:
        return 0.0


# -- the page's sections ------------------------------------------------------------------------

@dataclass
class _View:
    run: Run
    out: Path  # the page's directory
    img: Path
    _compared: int = 0  # previous runs compared with (set by trends())

    def rel(self, p: Path) -> str:
        return os.path.relpath(p, self.out)

    def problems(self, *sections: str, files: Iterable[str] = ()) -> list[dict[str, str]]:
        files = set(files)
        return [_problem_row(self.run, p) for p in self.run.problems
                if p.section in sections or p.file in files]

    def header(self) -> dict[str, Any]:
        r = self.run
        git = r.meta.get("git") if isinstance(r.meta.get("git"), dict) else {}
        git_s = ""
        if git:
            git_s = (f"{git.get('branch') or 'detached'} {str(git.get('commit') or '')[:12]}"
                     f"{' (uncommitted changes)' if git.get('dirty') else ''}")
        ended = r.ended
        raw = r.meta.get("host")
        host: dict[str, Any] = raw if isinstance(raw, dict) else {}
        load = ""
        start_load, end_load = host.get("load"), r.meta.get("load_end")
        if isinstance(start_load, list) and start_load:
            # timings depend on what else the machine ran: say how busy it was
            load = f"load average {start_load[0]:.1f}"
            if isinstance(end_load, list) and end_load:
                load += f" → {end_load[0]:.1f}"
            if host.get("cpus"):
                load += f" on {host['cpus']} CPUs"
        return {"id": r.id, "mode": r.mode, "started": _iso(r.started),
                "duration": _dur(ended - r.started) if ended else "still running or unfinished",
                "seed": r.meta.get("seed"), "git": git_s, "load": load}

    def parts(self) -> list[dict[str, Any]]:
        out = []
        for p in self.run.parts:
            log = self.run.path / p.log if p.log else None
            out.append({"name": p.name, "status": p.status, "duration": _dur(p.duration_s),
                        "exit_code": p.exit_code,
                        "log": self.rel(log) if log is not None and log.exists() else None,
                        "log_name": p.log or "", "note": p.note})
        return out

    def failing_parts(self) -> list[str]:
        return [p.name for p in self.run.parts if p.status not in ("passed", "skipped")]

    def summary(self, regressions: int) -> dict[str, str]:
        d = self.summary_data(regressions)
        parts = self.run.parts
        bad = [f"{p.name} ({p.status}{f', exit {p.exit_code}' if p.exit_code else ''})"
               for p in parts if p.status not in ("passed", "skipped")]
        skipped = [p.name for p in parts if p.status == "skipped"]
        parts_s = (f"{d['parts']['passed']}/{d['parts']['total']} passed"
                   + (f"; not passed: {', '.join(bad)}" if bad else "")
                   + (f"; skipped: {', '.join(skipped)}" if skipped else "")
                   if parts else "no parts.json (not a dubhe-lab nightly run)")
        s = self.run.scenarios
        scen_s = "not in this run"
        if s is not None:
            failing = [c.name for c in s.cases if not c.passed] + [n for n, _ in s.unreadable]
            scen_s = f"{s.passed}/{s.total} passed" + (f"; failing: {', '.join(failing)}"
                                                       if failing else "")
        b = d["bench"]
        bench_s = (f"{b['pass']} PASS, {b['miss']} MISS, {b['not_judged']} not judged "
                   f"in {b['benches']} benchmark(s)" if b["benches"] else "not in this run")
        props = self.run.properties
        props_s = ("; ".join(f"{x.passed}/{x.tests} passed ({x.path.stem})" for x in props)
                   if props else "not in this run")
        return {"parts": parts_s, "scenarios": scen_s, "benches": bench_s,
                "properties": props_s}

    def summary_data(self, regressions: int) -> dict[str, Any]:
        r = self.run
        targets = [t for b in r.benches for t in b.targets]
        s = r.scenarios
        return {
            "parts": {"total": len(r.parts),
                      "passed": sum(p.status == "passed" for p in r.parts),
                      "failed": sum(p.status not in ("passed", "skipped") for p in r.parts)},
            "scenarios": {"total": s.total if s else 0, "passed": s.passed if s else 0},
            "bench": {"benches": len(r.benches),
                      "pass": sum(t.passed is True for t in targets),
                      "miss": sum(t.passed is False for t in targets),
                      "not_judged": sum(t.passed is None for t in targets)},
            "regressions": regressions, "problems": len(r.problems),
            "compared": bool(self._compared),
            "duration_s": (r.ended - r.started) if r.ended else None,
        }

    # scenarios
    def scenarios(self) -> dict[str, Any]:
        s = self.run.scenarios
        view: dict[str, Any] = {"present": s is not None, "problems": self.problems("scenarios"),
                                "rows": [], "unreadable": [], "plots": []}
        if s is None:
            return view
        view.update(passed=s.passed, total=s.total, unreadable=s.unreadable)
        for case in s.cases:
            view["rows"].append(self._case(case))
        view["plots"] = [p for p in (plots.scenario_reconnects(s.cases, self.img),
                                     plots.scenario_closes(s.cases, self.img)) if p is not None]
        view["problems"] = self.problems("scenarios")  # cases add problems (lab directories)
        return view

    def _case(self, case: sc.Case) -> dict[str, Any]:
        r = case.record
        start = float(r["start_unix"])
        row: dict[str, Any] = {
            "name": case.name, "slug": case.slug, "ok": case.passed,
            "number": f"s{case.number:02d}" if case.number is not None else "",
            "duration": _dur(number(r["duration_s"])), "summary": r["summary"],
            "description": r["description"], "incident": r.get("incident") or "",
            "fix": r.get("fix") or "", "error": r["error"], "profile": r["profile"],
            "seed": r["seed"], "record_link": self.rel(case.path),
            "record_file": self.run.problems.rel(case.path),
            "expectations": [{"name": e.get("name"), "expected": e.get("expected"),
                              "observed": _fmt(e.get("observed")), "ok": bool(e.get("pass")),
                              "phase": e.get("phase", ""), "detail": e.get("detail") or ""}
                             for e in case.expectations],
            "plot": plots.scenario_latency(case, self.img, f"case-{case.slug}.png"),
            "windows": [{"what": plots.fault_label(w), "on": _since(w.get("on"), start),
                         "off": _since(w.get("off"), start),
                         "detail": "; ".join(f"{k} {w[k]}" for k in ("error", "ready_s")
                                             if w.get(k) is not None)}
                        for w in case.fault_windows],
            "logs": [], "lab_missing": "",
        }
        lab = r.get("lab") if isinstance(r.get("lab"), dict) else None
        if case.lab_dir is None and lab is not None:
            recorded = str(lab.get("run_dir") or lab.get("run_id") or "?")
            row["lab_missing"] = f"the lab run directory {recorded} was not found"
            self.run.problems.add("scenarios", recorded, f"lab run directory of {case.name} not "
                                  "found: its component logs cannot be linked")
        for name, span in sorted(r["logs"].items()):
            row["logs"].append(self._log(case, name, span))
        return row

    def _log(self, case: sc.Case, name: str, span: dict[str, Any]) -> dict[str, Any]:
        rel = str(span.get("path", ""))
        begin, end = int(span.get("begin", 0)), int(span.get("end", 0))
        item: dict[str, Any] = {"name": name, "path": rel, "begin": begin, "end": end,
                                "size": f"{end - begin:,}", "full": None, "slice": None,
                                "missing": ""}
        if case.lab_dir is None:
            item["missing"] = "lab run directory not found"
            return item
        full = case.lab_dir / rel
        if not full.exists():
            item["missing"] = f"{rel} not found"
            self.run.problems.add("scenarios", full, f"log of {case.name} missing")
            return item
        item["full"] = self.rel(full)
        if end <= begin:
            item["missing"] = "no lines during the case"
            return item
        dest = self.out / "logs" / case.slug / f"{name}.log"
        dest.parent.mkdir(parents=True, exist_ok=True)
        with full.open("rb") as f:
            f.seek(begin)
            data = f.read(min(end - begin, SLICE_CAP))
        if end - begin > SLICE_CAP:
            data += f"\n... [{end - begin - SLICE_CAP:,} more bytes in the whole log]\n".encode()
        dest.write_bytes(data)
        item["slice"] = self.rel(dest)
        return item

    # swarm
    def swarm(self) -> dict[str, Any]:
        sw = self.run.swarm
        view: dict[str, Any] = {"present": sw is not None, "problems": self.problems("swarm"),
                                "facts": [], "plots": [], "windows": [], "requests": [],
                                "title": ""}
        if sw is None:
            return view
        s = sw.summary or {}
        cfg = s.get("config") if isinstance(s.get("config"), dict) else {}
        if cfg:
            classes = ", ".join(map(str, cfg.get("classes") or []))
            view["title"] = (f"{cfg.get('users')} users ({classes}), {cfg.get('shape')} "
                             f"{_fmt(cfg.get('duration'))} s, seed {cfg.get('seed')}")
        c = sw.connections()
        facts: list[tuple[str, str]] = []
        if c:
            rate = number(c.get("success_rate"))
            facts.append(("connection success rate",
                          f"{100 * rate:.2f} % ({c.get('succeeded')}/{c.get('attempts')} "
                          "handshakes)" if rate is not None else "no handshakes"))
            facts.append(("reconnects", str(c.get("reconnects", 0))))
        rt = sw.series("WS", "reconnect")["ms"]
        if not rt.empty:
            facts.append(("reconnect time", f"p50 {rt.quantile(0.5) / 1000:.2f} s, p99 "
                                            f"{rt.quantile(0.99) / 1000:.2f} s, max "
                                            f"{rt.max() / 1000:.2f} s"))
        codes = sw.close_codes()
        if codes:
            facts.append(("close codes", ", ".join(f"{k}: {v}" for k, v in codes.items())))
        if "failures" in s:
            facts.append(("failed requests", str(s["failures"])))
        cpu = s.get("cpu_seconds")
        if isinstance(cpu, dict) and cpu:
            facts.append(("CPU seconds by process", ", ".join(f"{k} {_fmt(v)}"
                                                              for k, v in cpu.items())))
        book = s.get("connections_bookkeeping")
        if isinstance(book, dict):
            facts.append(("open connections after", "back to baseline" if
                          book.get("returned_to_baseline") else
                          f"NOT back to baseline: before {book.get('before')}, after "
                          f"{book.get('after')}"))
        if s.get("locust_cpu_warning"):
            facts.append(("Locust", "warned that its own CPU was saturated"))
        view["facts"] = facts
        view["plots"] = [p for p in (
            plots.swarm_latency(sw, self.img), plots.swarm_connections(sw, self.img),
            plots.close_codes(codes, self.img, "swarm-closes.png", "Swarm: close codes seen"),
            plots.swarm_node(sw, self.img)) if p is not None]
        origin = sw.started or 0.0
        view["windows"] = [{"what": plots.fault_label(w),
                            "on": _fmt(float(w["start"]) - origin),
                            "off": _fmt(float(w["end"]) - origin) if number(w.get("end")) else "",
                            "fired": w.get("fired", ""), "actions": w.get("actions", "")}
                           for w in sw.windows]
        reqs = s.get("requests")
        if isinstance(reqs, dict):
            view["requests"] = [{"name": k, "count": r.get("count"), "failures": r.get("failures"),
                                 "p50": _fmt(r.get("p50_ms")), "p99": _fmt(r.get("p99_ms")),
                                 "max": _fmt(r.get("max_ms"))}
                                for k, r in reqs.items() if isinstance(r, dict)]
        return view

    # benchmarks
    def scheduler(self) -> dict[str, Any]:
        b = next((b for b in self.run.benches if b.name == "scheduler"), None)
        view: dict[str, Any] = {"plot": None, "cells": [],
                                "problems": self.problems(files=["bench/scheduler.json"])}
        if b is None:
            return view
        cells = b.data.get("cells")
        if not isinstance(cells, list):
            return view
        view["plot"] = plots.scheduler(cells, self.img)
        view["cells"] = [{k: _fmt(c.get(k)) for k in ("executor", "workload", "label", "workers",
                                                     "tps", "speedup", "efficiency",
                                                     "conflict_rate", "re_executions",
                                                     "other_load")}
                         for c in cells if isinstance(c, dict)]
        return view

    def benches(self) -> dict[str, Any]:
        rows = []
        for b in self.run.benches:
            rows.append({
                "name": b.name, "exit_code": b.exit_code, "file": self.run.problems.rel(b.path),
                "link": self.rel(b.path),
                "argv": " ".join(str(a) for a in b.data.get("argv") or []),
                "targets": [{"name": t.name, "value": _fmt(t.value), "target": _fmt(t.target),
                             "op": "≤" if t.direction == "lower" else "≥", "unit": t.unit,
                             "verdict": t.verdict, "passed": t.passed,
                             "css": t.verdict.replace(" ", "-"), "note": t.note}
                            for t in b.targets],
                "figures": [(k, _fmt(v)) for k, v in sorted(b.figures.items())]})
        targets = [t for b in self.run.benches for t in b.targets]
        summary = (f"{sum(t.passed is True for t in targets)} PASS, "
                   f"{sum(t.passed is False for t in targets)} MISS, "
                   f"{sum(t.passed is None for t in targets)} not judged")
        return {"rows": rows, "summary": summary, "problems": self.problems("benchmarks")}

    def properties(self) -> dict[str, Any]:
        return {"problems": self.problems("properties"), "suites": [
            {"name": s.path.stem, "passed": s.passed, "tests": s.tests, "skipped": s.skipped,
             "time": _dur(s.time_s), "failed": s.failed,
             "slowest": [(n, _dur(t)) for n, t in s.slowest]} for s in self.run.properties]}

    def mutation(self, history: trends.History | None = None) -> dict[str, Any]:
        """Per target: the score (excluding message-only mutants where the file says), all
        mutants' score, counts, the minimum, the previous runs' scores, and the survivors."""
        def pct(v: float | None) -> str:
            return f"{100 * v:.1f} %" if v is not None else ""

        rows = []
        for m in self.run.mutation:
            key = "score_excluding_messages" if m.score_excluding_messages is not None \
                else "score"
            gate = m.score_excluding_messages if m.score_excluding_messages is not None \
                else m.score
            before = [h[f"mutation.{m.name}.{key}"] for h in (history.metrics if history
                                                               else [])
                      if f"mutation.{m.name}.{key}" in h][-5:]
            delta = "" if gate is None or not before else f"{100 * (gate - before[-1]):+.1f}"
            verdict = ("" if m.passed is None else "PASS" if m.passed else "MISS")
            if m.complete is False and verdict:
                verdict = "partial"
            elif gate is None and m.error:
                verdict = "error"
            rows.append({
                "name": m.name, "module": m.module, "score": pct(gate),
                "score_all": pct(m.score) if key != "score" else "",
                "killed": _fmt(m.killed), "survived": _fmt(m.survived), "total": _fmt(m.total),
                "message_only": _fmt(m.message_only), "min": pct(m.min_score),
                "verdict": verdict, "profile": m.profile, "duration": _dur(m.duration_s),
                "error": m.error, "trend": " → ".join(pct(b) for b in before), "delta": delta,
                "survivors": [{"line": s.line if s.line is not None else "", "change": s.change,
                               "status": s.status, "function": s.function,
                               "message_only": s.message_only} for s in m.survivors]})
        profiles = sorted({m.profile for m in self.run.mutation if m.profile})
        return {"problems": self.problems("mutation"), "rows": rows,
                "profiles": ", ".join(profiles)}

    def trends(self, judgements: list[trends.Judgement], history: trends.History,
               config: trends.Config) -> dict[str, Any]:
        self._compared = len(history.ids)
        n = len(history.ids)
        if n == 0:
            note = f"First {self.run.mode} run here: nothing to compare with yet."
        else:
            judged = sum(j.verdict in ("regression", "improvement", "ok") for j in judgements)
            note = (f"Compared with {n} previous {self.run.mode} run{'s' if n > 1 else ''} "
                    f"({history.ids[0]} … {history.ids[-1]}); {judged} metrics judged.")
        plotted = []
        for i, j in enumerate(x for x in judgements if x.verdict in ("regression",
                                                                      "improvement")):
            if i >= 24:
                break
            plot = plots.trend(j.metric, list(j.runs), list(j.history), j.value, j.center,
                               j.allowed, self.img, f"trend-{i}.png")
            plotted.append({**_judgement_row(j), "plot": plot})
        shown = [j for j in judgements if j.verdict not in ("new", "insufficient")]
        waiting = [j for j in judgements if j.verdict in ("new", "insufficient")]
        return {"note": note, "compared": n, "window": config.window,
                "min_history": config.min_history, "rules": "reports/trends.toml",
                "plotted": plotted, "rows": [_judgement_row(j) for j in shown],
                "waiting": [_judgement_row(j) for j in waiting]}


def _judgement_row(j: trends.Judgement) -> dict[str, Any]:
    change = j.change
    return {"metric": j.metric, "verdict": j.verdict, "direction": j.direction,
            "value_s": _fmt(j.value), "center_s": _fmt(j.center), "spread_s": _fmt(j.spread),
            "allowed_s": _fmt(j.allowed), "n": len(j.history), "why": j.why(),
            "change_s": f"{100 * change:+.1f} %" if change is not None else _fmt(j.delta)}


def _problem_row(run: Run, p: Problem) -> dict[str, str]:
    part = run.producer(p.file) or next(
        (x for x in run.parts if any(p.file.startswith(o.rstrip("/") + "/") or p.file == o
                                     for o in x.outputs)), None)
    context = ""
    if part is not None:
        context = f"written by part {part.name}: {part.status}"
        if part.exit_code is not None:
            context += f", exit {part.exit_code}"
        if part.log:
            context += f"; see {part.log}"
        if part.status not in RAN:
            context = f"part {part.name} {part.status}"
    return {"file": p.file, "message": p.message, "context": context}


# -- helpers ------------------------------------------------------------------------------------

def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                              autoescape=jinja2.select_autoescape(["html", "j2"]),
                              undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True)


def _asset(name: str) -> str:
    return (TEMPLATES / name).read_text()


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a temporary file, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _dur(s: float | None) -> str:
    if s is None:
        return ""
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    if m < 60:
        return f"{m} min {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def _since(t: Any, origin: float) -> str:
    v = number(t)
    return "" if v is None else _fmt(round(v - origin, 3))


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:  # NaN
            return ""
        if v == int(v) and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:,.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v)

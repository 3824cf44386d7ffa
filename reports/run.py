"""One run directory, loaded: the nightly's ``parts.json`` and every result file it produced.

Layout (docs/reports.md)::

    <run>/parts.json                 the nightly's record: mode, seed, git, each part's status
    <run>/logs/<part>.log            each part's output
    <run>/scenarios/                 scenario results (docs/results.md)
    <run>/labs/<lab run>/            the scenarios' lab run directories (logs)
    <run>/swarm/                     a swarm's files (docs/swarm.md)
    <run>/bench/<name>.json          dubhe-bench --json
    <run>/junit/*.xml                pytest JUnit XML (the scheduler property tests)
    <run>/mutation/*.json            mutation-testing scores (issue 22), when present

A directory without ``parts.json`` (results gathered by hand) is read the same way; only what
exists is shown then, and nothing is "missing".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports import benches, junit, scenarios, swarm
from reports.files import Problems, expect_dict, number, read_json

SECTION = "run"
PARTS_VERSION = 1
#: Part statuses in which a part produced (or should have produced) its outputs.
RAN = ("passed", "failed", "timeout", "error", "interrupted")


@dataclass
class Part:
    name: str
    kind: str
    status: str  # passed, failed, timeout, error, interrupted, skipped, pending, running
    exit_code: int | None = None
    duration_s: float | None = None
    log: str | None = None
    outputs: list[str] = field(default_factory=list)
    note: str = ""
    command: list[str] = field(default_factory=list)


@dataclass
class Survivor:
    """A mutant the tests did not notice: where it is and what it changes."""

    line: int | None
    change: str
    status: str
    function: str
    message_only: bool


@dataclass
class Mutation:
    name: str
    path: Path
    score: float | None
    killed: int | None
    survived: int | None
    total: int | None
    #: fields of lab.mutation's result files (absent from other files)
    score_excluding_messages: float | None = None
    message_only: int | None = None
    min_score: float | None = None
    passed: bool | None = None
    module: str = ""
    profile: str = ""
    complete: bool | None = None
    error: str = ""
    duration_s: float | None = None
    survivors: list[Survivor] = field(default_factory=list)


@dataclass
class Run:
    path: Path
    problems: Problems
    meta: dict[str, Any] = field(default_factory=dict)  # parts.json without "parts"
    parts: list[Part] = field(default_factory=list)
    scenarios: scenarios.Scenarios | None = None
    swarm: swarm.Swarm | None = None
    benches: list[benches.Bench] = field(default_factory=list)
    properties: list[junit.Suite] = field(default_factory=list)
    mutation: list[Mutation] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.meta.get("id") or self.path.name)

    @property
    def mode(self) -> str:
        """``quick`` or ``full`` (runs are compared only with runs of the same mode)."""
        return str(self.meta.get("mode") or "manual")

    @property
    def started(self) -> float:
        s = number(self.meta.get("started"))
        if s is not None:
            return s
        try:
            return self.path.stat().st_mtime
        except OSError:
            return time.time()

    @property
    def ended(self) -> float | None:
        return number(self.meta.get("ended"))

    def part(self, name: str) -> Part | None:
        return next((p for p in self.parts if p.name == name), None)

    def expected(self, rel: str) -> bool:
        """Whether a part that ran declared ``rel`` among its outputs."""
        return any(p.status in RAN and rel in p.outputs for p in self.parts)

    def producer(self, rel: str) -> Part | None:
        return next((p for p in self.parts if rel in p.outputs), None)


def load(path: Path) -> Run:
    """Everything the report needs from ``path``; problems are collected, never raised."""
    run = Run(path, Problems(path))
    _load_parts(run)
    run.scenarios = scenarios.load(path / "scenarios", path, run.problems,
                                   missing_ok=not run.expected("scenarios"))
    run.swarm = swarm.load(path / "swarm", run.problems, missing_ok=not run.expected("swarm"))
    expected = [path / o for p in run.parts if p.status in RAN for o in p.outputs
                if o.startswith("bench/")]
    run.benches = benches.load_all(path / "bench", run.problems, expected)
    xmls = sorted((path / "junit").glob("*.xml")) if (path / "junit").is_dir() else []
    for o in (o for p in run.parts if p.status in RAN for o in p.outputs
              if o.startswith("junit/")):
        if path / o not in xmls:
            xmls.append(path / o)
    run.properties = [s for x in sorted(xmls)
                      if (s := junit.load(x, run.problems)) is not None]
    run.mutation = _mutation(path / "mutation", run.problems)
    return run


def _load_parts(run: Run) -> None:
    f = run.path / "parts.json"
    if not f.exists():
        return
    data = expect_dict(read_json(f, run.problems, SECTION), f, run.problems, SECTION)
    if data is None:
        return
    version = data.get("version")
    if isinstance(version, int) and version > PARTS_VERSION:
        run.problems.add(SECTION, f, f"version {version} is newer than this reader "
                                     f"({PARTS_VERSION})")
        return
    run.meta = {k: v for k, v in data.items() if k != "parts"}
    for i, p in enumerate(data.get("parts") or []):
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            run.problems.add(SECTION, f, f"parts[{i}]: expected an object with a name")
            continue
        code = p.get("exit_code")
        run.parts.append(Part(
            name=p["name"], kind=str(p.get("kind", "")), status=str(p.get("status", "unknown")),
            exit_code=code if isinstance(code, int) else None,
            duration_s=number(p.get("duration_s")),
            log=p.get("log") if isinstance(p.get("log"), str) else None,
            outputs=[str(o) for o in p.get("outputs") or []], note=str(p.get("note") or ""),
            command=[str(c) for c in p.get("command") or []]))


def _fraction(v: object) -> float | None:
    """A score given as 0..1 or as a percentage, as 0..1."""
    s = number(v)
    return s / 100 if s is not None and s > 1 else s


def _mutation(directory: Path, problems: Problems) -> list[Mutation]:
    """Scores of mutation testing (issue 22), read leniently: ``score`` (0..1 or percent),
    ``killed``, ``survived``, ``total`` when present, and what ``lab.mutation`` adds (the score
    excluding message-only mutants, the minimum, the survivors; lab/mutation/__init__.py)."""
    out: list[Mutation] = []
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.json")):
        data = expect_dict(read_json(path, problems, "mutation"), path, problems, "mutation")
        if data is None:
            continue

        def count(*keys: str, data: dict[str, Any] = data) -> int | None:
            for k in keys:
                v = number(data.get(k))
                if v is not None:
                    return int(v)
            return None

        killed, survived = count("killed"), count("survived")
        total = count("total", "mutants") or (killed + survived if killed is not None and
                                              survived is not None else None)
        score = _fraction(data.get("score", data.get("mutation_score")))
        if "score" not in data and "mutation_score" not in data and killed is not None \
                and total:
            score = killed / total  # a plain count file; a null score means nothing was scored
        msg = data.get("message_only")
        survivors = []
        for s in data.get("survivors") or []:
            if not isinstance(s, dict):
                continue
            line = number(s.get("line"))
            survivors.append(Survivor(int(line) if line is not None else None,
                                      str(s.get("change") or ""), str(s.get("status") or ""),
                                      str(s.get("function") or ""),
                                      s.get("message_only") is True))
        passed, complete = data.get("passed"), data.get("complete")
        out.append(Mutation(
            str(data.get("name") or path.stem), path, score, killed, survived, total,
            score_excluding_messages=_fraction(data.get("score_excluding_messages")),
            message_only=count("mutants", data=msg) if isinstance(msg, dict) else None,
            min_score=_fraction(data.get("min_score")),
            passed=passed if isinstance(passed, bool) else None,
            module=str(data.get("module") or ""),
            profile=str(data.get("hypothesis_profile") or ""),
            complete=complete if isinstance(complete, bool) else None,
            error=str(data.get("error") or ""), duration_s=number(data.get("duration_s")),
            survivors=survivors))
    return out

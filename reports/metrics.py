"""A run's figures as one flat ``{metric: number}`` map: what trends compare across runs.

Names (docs/reports.md): ``scenario.<case>.pass`` (1/0), ``scenario.<case>.duration_s``,
``scenario.<case>.<figure>``; ``swarm.<figure>``; ``bench.<bench>.<figure>``;
``properties.<suite>.{tests,failures,duration_s}``; ``mutation.<name>.score`` and
``.score_excluding_messages``;
``part.<part>.duration_s``; ``run.*`` totals. Bench targets also give their direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from reports.files import number
from reports.run import Run


@dataclass
class Metrics:
    values: dict[str, float] = field(default_factory=dict)
    #: directions the files themselves give (bench targets): metric -> lower | higher
    directions: dict[str, str] = field(default_factory=dict)

    def put(self, name: str, value: object) -> None:
        v = number(value)
        if v is not None:
            self.values[name] = v


def extract(run: Run) -> Metrics:
    m = Metrics()
    if run.scenarios is not None:
        m.put("run.scenarios.total", run.scenarios.total)
        m.put("run.scenarios.passed", run.scenarios.passed)
        m.put("run.scenarios.failed", run.scenarios.total - run.scenarios.passed)
        for case in run.scenarios.cases:
            key = f"scenario.{case.name}"
            m.put(f"{key}.pass", 1.0 if case.passed else 0.0)
            m.put(f"{key}.duration_s", case.record["duration_s"])
            for fig, value in case.record["figures"].items():
                m.put(f"{key}.{fig}", value)
        for name, _ in run.scenarios.unreadable:
            m.put(f"scenario.{name}.pass", 0.0)
    _swarm(run, m)
    for b in run.benches:
        for fig, value in b.figures.items():
            m.put(f"bench.{b.name}.{fig}", value)
        for t in b.targets:
            if t.direction in ("lower", "higher"):
                m.directions[f"bench.{b.name}.{t.name}"] = t.direction
        m.put(f"run.bench.{b.name}.missed", len(b.missed))
    for s in run.properties:
        key = f"properties.{s.path.stem}"
        m.put(f"{key}.tests", s.tests)
        m.put(f"{key}.failures", s.failures + s.errors)
        m.put(f"{key}.duration_s", s.time_s)
    for mu in run.mutation:
        m.put(f"mutation.{mu.name}.score", mu.score)
        m.put(f"mutation.{mu.name}.score_excluding_messages", mu.score_excluding_messages)
    for p in run.parts:
        m.put(f"part.{p.name}.duration_s", p.duration_s)
    if run.parts:
        m.put("run.parts.failed", sum(p.status not in ("passed", "skipped") for p in run.parts))
    return m


def _swarm(run: Run, m: Metrics) -> None:
    sw = run.swarm
    if sw is None:
        return
    s = sw.summary or {}
    conns = sw.connections()
    m.put("swarm.success_rate", conns.get("success_rate"))
    m.put("swarm.handshakes", conns.get("attempts"))
    m.put("swarm.reconnects", conns.get("reconnects"))
    m.put("swarm.failures", s.get("failures"))
    for code, n in sw.close_codes().items():
        m.put(f"swarm.close.{code}", n)
    for key, r in (s.get("requests") or {}).items():
        if isinstance(r, dict):
            slug = str(key).replace(" ", "_")
            for stat in ("p50_ms", "p99_ms", "count", "failures"):
                m.put(f"swarm.{slug}.{stat}", r.get(stat))
    for proc, cpu in (s.get("cpu_seconds") or {}).items():
        m.put(f"swarm.cpu_s.{proc}", cpu)
    m.put("swarm.notify_p50_ms", _q(sw.series("notify")["ms"], 0.5))
    m.put("swarm.notify_p99_ms", _q(sw.series("notify")["ms"], 0.99))
    m.put("swarm.reconnect_time_p50_ms", _q(sw.series("WS", "reconnect")["ms"], 0.5))
    m.put("swarm.reconnect_time_p99_ms", _q(sw.series("WS", "reconnect")["ms"], 0.99))


def _q(s: pd.Series, q: float) -> float | None:
    s = pd.to_numeric(s, errors="coerce").dropna()
    return None if s.empty else float(s.quantile(q))

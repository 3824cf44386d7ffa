"""Incident files: a production incident as data (``scenarios/incidents/*.toml``), replayed by
``dubhe-lab replay`` (:mod:`lab.scenarios.replay`).

An incident is the scenario model (:mod:`lab.scenarios.model`) seen from the incident's side:
its lab overlay, workload and fault timeline make one scenario case per *mode*:

* ``repro`` — the configuration as it was. It holds when every ``[symptoms]`` expectation holds
  (phase ``incident``: what users saw) and every ``[signals]`` figure is at least 1 (the faults
  really fired);
* ``fixed`` — the ``[fixed]`` overlay applied (the configuration change or the client behaviour
  that removes the symptom). It holds when every ``[slo]`` expectation holds (phase ``fix``) and
  the signals (``fixed.signals`` when given) fired.

::

    name = "1006-upstream-timeout"          # [a-z0-9-]; the file is <name>.toml
    description = "..."                     # what happened, in one line
    incident = "what users saw"
    fix = "what removes it"
    seed = 1006                             # lab, clients and timeline jitter; --seed replaces it
    [lab]                                   # a LabSpec overlay (docs/lab.md)
    nginx = { read_timeout_s = 1.5 }
    [workload]                              # a registered workload and its parameters
    kind = "subscribers"
    duration_s = 3
    groups = [{ name = "users", count = 3, reconnect = false, backfill = false }]
    [[timeline]]                            # faults, offsets from the workload's steady state
    at_s = 1                                # ... plus repeat/every_s and a seeded jitter_s
    for_s = 2
    link = "node-l1-eth"
    toxic = "timeout"
    [symptoms]                              # figure = condition: what users saw
    "users.closes_1006" = ">= 3"
    [slo]                                   # what must hold once the fix is in
    "users.closes" = "== 0"
    [signals]                               # "sometimes": each figure >= 1 in both modes
    [fixed]                                 # the fix: description + lab/workload/timeline overlay
    description = "the node pings every second"
    lab = { node = { api = { ws_ping_interval_s = 1.0 } } }
    [full]                                  # the long version (nightly): lab, workload, timeline,
    workload = { duration_s = 30 }          #   symptoms, slo, signals, fixed = {lab, workload,
                                            #   timeline, signals}

Tables merge key by key over what they overlay (``lab``, ``workload``, ``symptoms``, ``slo``);
``timeline`` and ``signals`` are replaced whole. Every problem of every mode and profile is
reported at once, as ``<file>: <dotted key>: <problem>`` with the key where the bad value is
written (``fixed.workload.groups.0.cuont: unknown key``).
"""

from __future__ import annotations

import random
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lab.orchestrate.errors import SpecError
from lab.orchestrate.spec import LabSpec, derive_seed
from lab.scenarios.model import (
    DATA_DIR,
    PROFILES,
    Case,
    Condition,
    Fault,
    ScenarioError,
    ScenarioFile,
    Variant,
    _merge,
    _pydantic_problems,
    check_conditions,
    check_faults,
    check_signals,
    check_verdict,
    check_workload,
)

#: Where the shipped incident files live.
INCIDENTS_DIR = DATA_DIR.parent / "incidents"
Mode = Literal["repro", "fixed"]
MODES: tuple[Mode, ...] = ("repro", "fixed")
Problems = list[tuple[str, str]]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TimelineEntry(Fault):
    """One fault of the timeline (:class:`~lab.scenarios.model.Fault`: a toxic on a link or an
    action on a component, ``at_s`` on, off after ``for_s``), which may repeat and move."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    #: How many times the fault happens, ``every_s`` apart (from ``at_s``).
    repeat: int = Field(1, ge=1, le=10_000)
    every_s: float | None = Field(None, gt=0)
    #: Each occurrence starts up to this many seconds earlier or later, drawn from the seed
    #: (never before 0): the same seed gives the same timeline.
    jitter_s: float = Field(0.0, ge=0)


class FullFixed(_M):
    lab: dict[str, Any] = {}
    workload: dict[str, Any] = {}
    timeline: list[TimelineEntry] | None = None
    signals: dict[str, str] | None = None


class Fixed(_M):
    """The fix: what changed, and the overlay that applies it."""

    description: str = Field(min_length=1)
    lab: dict[str, Any] = {}
    workload: dict[str, Any] = {}
    #: Replaces the incident's timeline (default: the same faults).
    timeline: list[TimelineEntry] | None = None
    #: Replaces the incident's signals (default: the same).
    signals: dict[str, str] | None = None
    summary: str | None = None
    key_figure: str | None = None


class Full(_M):
    """The long version (``--profile full``, the nightly), over the file's own values."""

    lab: dict[str, Any] = {}
    workload: dict[str, Any] = {}
    timeline: list[TimelineEntry] | None = None
    symptoms: dict[str, str] = {}
    slo: dict[str, str] = {}
    signals: dict[str, str] | None = None
    fixed: FullFixed = FullFixed()


class IncidentFile(_M):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=40)
    description: str = Field(min_length=1)
    incident: str = Field(min_length=1)
    fix: str = Field(min_length=1)
    seed: int = Field(ge=0, lt=2**63)
    lab: dict[str, Any] = {}
    workload: dict[str, Any]
    timeline: list[TimelineEntry] = []
    symptoms: dict[str, str] = Field(min_length=1)
    slo: dict[str, str] = Field(min_length=1)
    signals: dict[str, str] = {}
    #: The verdict line's text, ``{figure}`` replaced (docs/scenarios.md).
    summary: str | None = None
    key_figure: str | None = None
    fixed: Fixed
    full: Full = Full()
    #: What a drafted incident could not infer (``dubhe-lab incident from-logs``); for people.
    notes: list[str] = []


@dataclass(frozen=True)
class Incident:
    """A loaded incident file."""

    path: Path
    data: IncidentFile

    @property
    def name(self) -> str:
        return self.data.name

    def case(self, mode: Mode, profile: str = "fast", seed: int | None = None) -> Case:
        """The scenario case of ``mode`` in ``profile``; ``seed`` replaces the file's."""
        if seed is not None and not 0 <= seed < 2**63:
            raise ScenarioError("--seed", [(str(seed), "a seed is 0 <= N < 2**63")])
        if profile not in PROFILES:
            raise ScenarioError("--profile", [(profile, "unknown profile (known: fast, full)")])
        case, problems = _build(self, mode, profile, self.data.seed if seed is None else seed)
        if problems or case is None:
            raise ScenarioError(str(self.path), problems)
        return case


def load(path: Path) -> Incident:
    """Parse and check an incident file: its structure, then every mode in every profile
    (workloads, parameters, lab overlays, figures, conditions). Raises
    :class:`~lab.scenarios.model.ScenarioError` listing every problem."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioError(str(path), [("(file)", "no such file")]) from None
    except IsADirectoryError:
        raise ScenarioError(str(path), [("(file)", "a directory, not an incident file")]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(path), [("(file)", f"not valid TOML: {exc}")]) from None
    except OSError as exc:
        raise ScenarioError(str(path), [("(file)", f"cannot read: {exc.strerror or exc}")]
                            ) from None
    try:
        data = IncidentFile.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(str(path), _pydantic_problems(exc, brackets=True)) from None
    incident = Incident(path, data)
    problems: Problems = []
    for profile in PROFILES:
        for mode in MODES:
            _, found = _build(incident, mode, profile, data.seed)
            problems.extend(p for p in found if p not in problems)
    if problems:
        raise ScenarioError(str(path), problems)
    return incident


def incident_files(directory: Path = INCIDENTS_DIR) -> list[Path]:
    return sorted(directory.glob("*.toml"))


def resolve_timeline(entries: Sequence[TimelineEntry], seed: int) -> list[Fault]:
    """The concrete faults of a timeline for ``seed``: repeats expanded (a named fault's
    occurrences are ``<name>-1``, ``<name>-2`` ...), jitter drawn, ordered by start. Pure: the
    same entries and seed always give the same faults."""
    out: list[Fault] = []
    for i, e in enumerate(entries):
        base = e.model_dump(exclude={"repeat", "every_s", "jitter_s"})
        for r in range(e.repeat):
            at = e.at_s + r * (e.every_s or 0.0)
            if e.jitter_s:
                rng = random.Random(derive_seed(seed, f"timeline/{i}/{r}"))
                at = max(0.0, at + rng.uniform(-e.jitter_s, e.jitter_s))
            name = base["name"]
            if name is not None and e.repeat > 1:
                name = f"{name}-{r + 1}"
            out.append(Fault.model_validate({**base, "at_s": round(at, 3), "name": name}))
    return sorted(out, key=lambda f: f.at_s)


# -- building a case -----------------------------------------------------------------------------

class _Layers:
    """The tables merged into one value (``lab``, ``workload``, ...), each with the dotted key it
    was written under, so a problem found in the merged value names the key in the file."""

    def __init__(self) -> None:
        self.layers: list[tuple[str, Mapping[str, Any]]] = []

    def add(self, prefix: str, table: Mapping[str, Any]) -> None:
        if table:
            self.layers.append((prefix, table))

    def merged(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for _, table in self.layers:
            out = _merge(out, table)
        return out

    def key(self, path: str, default: str) -> str:
        """The file's dotted key of ``path`` in the merged value (``groups.0.cuont``)."""
        parts = [] if path in ("", "(root)") else re.findall(r"[^.\[\]]+", path)
        for prefix, table in reversed(self.layers):
            if parts and _has(table, parts):
                return f"{prefix}.{path}"
        for prefix, table in reversed(self.layers):  # a missing key: where its parent is
            if len(parts) > 1 and _has(table, parts[:-1]):
                return f"{prefix}.{path}"
        return f"{default}.{path}" if parts else default


def _has(value: Any, parts: Sequence[str]) -> bool:
    for part in parts:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False
    return True


def _build(inc: Incident, mode: Mode, profile: str, seed: int) -> tuple[Case | None, Problems]:
    d = inc.data
    full = profile == "full"
    fixed = mode == "fixed"
    lab, workload, symptoms, slo = _Layers(), _Layers(), _Layers(), _Layers()
    lab.add("lab", d.lab)
    workload.add("workload", d.workload)
    symptoms.add("symptoms", d.symptoms)
    slo.add("slo", d.slo)
    timeline: tuple[str, Sequence[TimelineEntry]] = ("timeline", d.timeline)
    signals: tuple[str, Mapping[str, str]] = ("signals", d.signals)
    if full:
        lab.add("full.lab", d.full.lab)
        workload.add("full.workload", d.full.workload)
        symptoms.add("full.symptoms", d.full.symptoms)
        slo.add("full.slo", d.full.slo)
        if d.full.timeline is not None:
            timeline = ("full.timeline", d.full.timeline)
        if d.full.signals is not None:
            signals = ("full.signals", d.full.signals)
    if fixed:
        lab.add("fixed.lab", d.fixed.lab)
        workload.add("fixed.workload", d.fixed.workload)
        if d.fixed.timeline is not None:
            timeline = ("fixed.timeline", d.fixed.timeline)
        if d.fixed.signals is not None:
            signals = ("fixed.signals", d.fixed.signals)
        if full:
            lab.add("full.fixed.lab", d.full.fixed.lab)
            workload.add("full.fixed.workload", d.full.fixed.workload)
            if d.full.fixed.timeline is not None:
                timeline = ("full.fixed.timeline", d.full.fixed.timeline)
            if d.full.fixed.signals is not None:
                signals = ("full.fixed.signals", d.full.fixed.signals)
    problems: Problems = []

    # the lab
    spec: LabSpec | None = None
    lab_name = f"incident-{d.name}-{mode}"[:64]
    try:
        spec = LabSpec(name=lab_name).overlay(lab.merged(), f"{inc.path}: lab")
        spec = spec.model_copy(update={"seed": seed})
    except SpecError as exc:
        problems.extend((lab.key(k, "lab"), m) for k, m in exc.problems)

    # the workload
    wl = workload.merged()
    params = {k: v for k, v in wl.items() if k != "kind"}
    kind = wl.get("kind")
    if kind is None:
        problems.append(("workload.kind", "required (a registered workload, e.g. 'subscribers')"))
        return None, problems
    if not isinstance(kind, str):
        problems.append((workload.key("kind", "workload"), f"expected a string (got {kind!r})"))
        return None, problems
    entry, params_model, found = check_workload(kind, params, "kind", "", brackets=True)
    problems.extend((workload.key(k, "workload"), m) for k, m in found)
    if entry is None:
        return None, problems

    # the timeline
    where, entries = timeline
    for i, e in enumerate(entries):
        if e.repeat > 1 and e.every_s is None:
            problems.append((f"{where}[{i}].every_s", "required with repeat > 1"))
    faults = resolve_timeline(entries, seed)
    problems.extend(check_faults(list(entries), where))

    # the expectations
    conds = symptoms if not fixed else slo
    expect: dict[str, Condition] = {}
    for prefix, table in conds.layers:
        got, found = check_conditions(entry, params_model, table, prefix)
        expect.update(got)
        problems.extend(found)
    sig_where, sigs = signals
    problems.extend(check_signals(entry, params_model, sigs, sig_where))
    key_figure, summary, verdict_where = d.key_figure, d.summary, ""
    if fixed and (d.fixed.summary is not None or d.fixed.key_figure is not None):
        key_figure, summary, verdict_where = d.fixed.key_figure, d.fixed.summary, "fixed"
    problems.extend(check_verdict(entry, params_model, key_figure, summary, verdict_where))
    if problems or spec is None:
        return None, problems

    phase = "fix" if fixed else "incident"
    raw_expect = {fig: conds.merged()[fig] for fig in expect}
    variant = Variant(
        name=mode,
        description=d.fixed.description if fixed else d.description,
        lab=lab.merged(), workload=kind, params=params, faults=faults,
        expect={phase: raw_expect}, signals=dict(sigs), key_figure=key_figure, summary=summary,
        only=["fast", "full"])
    sf = ScenarioFile(name=f"incident-{d.name}", number=1, description=d.description,
                      incident=d.incident, fix=d.fix, variants=[variant])
    return Case(sf, variant, profile, inc.path, spec, params_model, tuple(faults),
                {phase: expect}, dict(sigs), label=f"incident-{d.name}/{mode}"), []


__all__ = ["INCIDENTS_DIR", "MODES", "Fixed", "Full", "Incident", "IncidentFile", "Mode",
           "TimelineEntry", "incident_files", "load", "resolve_timeline"]

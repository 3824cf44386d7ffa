"""Scenarios as data: a TOML file per scenario (``scenarios/data/*.toml``), validated here.

A scenario has a name, a description, what users saw (``incident``) and what removes it
(``fix``), a lab overlay shared by its variants, and variants. A variant is one lab run: its own
overlay, fault profiles and fault timeline, a workload (a registered Python function and its
parameters), and expectations on the figures the run produces, by phase::

    [[variants]]
    name = "fix-client"
    workload = "subscribers"
    params = { duration_s = 4, groups = [{ name = "backfill", count = 5 }] }
    faults = [{ at_s = 1, link = "client-edge", toxic = "reset_peer", for_s = 1 }]
    [variants.expect.fix]
    "backfill.missed" = "== 0"
    [variants.signals]
    "proxy.reset" = "reset_peer on client-edge fired"
    [variants.full]                 # overrides for --scenario-profile full
    params = { duration_s = 60 }

Conditions are ``== N``, ``!= N``, ``>= N``, ``<= N``, ``> N``, ``< N`` or ``in [A, B]``.
``signals`` are "sometimes" assertions: each figure must be at least 1, or the variant fails with
"never fired: <description>". Every problem is reported at once as ``<file>: <dotted key>:
<problem>``; figure names are checked against what the workload says it produces.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lab.checkers.expect import Expectation
from lab.orchestrate.errors import SpecError
from lab.orchestrate.spec import LabSpec

#: Where the suite's scenario files live.
DATA_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "data"
PROFILES = ("fast", "full")
PHASE_KEYS = ("incident", "fix", "health")


class ScenarioError(ValueError):
    """Bad scenario data: names the file and each dotted key with its problem."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(f"{k}: {m}" for k, m in problems))


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fault(_M):
    """One entry of a variant's fault timeline (offsets from the workload's start).

    Either a toxic on a link (``link``, ``toxic`` = type, ``attributes``, ``stream``,
    ``toxicity``; removed after ``for_s``, or once the proxy logged ``until_events`` of its
    ``event`` — at most ``for_s`` if both are given) or an action on a component
    (``component``, ``action``).
    """

    at_s: float = Field(0.0, ge=0)
    for_s: float | None = Field(None, gt=0)
    name: str | None = None
    link: str | None = None
    toxic: str | None = None
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0, le=1)
    attributes: dict[str, Any] = {}
    until_events: int | None = Field(None, ge=1)
    #: The proxy event counted by ``until_events`` (the toxic's own event, e.g. ``ws_cut``).
    event: str = "toxic_fired"
    component: str | None = None
    action: (
        Literal["kill", "stop", "start", "restart", "kill-restart", "pause", "resume"] | None
    ) = None

    def label(self) -> str:
        if self.component:
            return f"{self.action} {self.component}"
        return self.name or f"{self.toxic}-{self.stream}"


class Variant(_M):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    lab: dict[str, Any] = {}
    profiles: list[str] = []
    workload: str
    params: dict[str, Any] = {}
    faults: list[Fault] = []
    expect: dict[Literal["incident", "fix", "health"], dict[str, str]] = {}
    signals: dict[str, str] = {}
    #: The figure of the one-line verdict.
    key_figure: str | None = None
    #: The verdict line's text: ``{figure}`` placeholders are replaced by figures
    #: (``"{backfill.missed} missed over {backfill.closes_1006} closes"``).
    summary: str | None = None
    #: Profiles this variant runs in (a long variant may exist only in ``full``).
    only: list[Literal["fast", "full"]] = ["fast", "full"]
    #: Overrides of ``params``, ``faults``, ``expect``, ``signals`` for ``--scenario-profile full``.
    full: dict[str, Any] = {}


class ScenarioFile(_M):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    number: int = Field(ge=1)
    description: str
    incident: str
    fix: str
    lab: dict[str, Any] = {}
    variants: list[Variant] = Field(min_length=1)


@dataclass(frozen=True)
class Condition:
    """A parsed ``== 0`` / ``in [1, 5]`` condition."""

    op: str
    a: float
    b: float | None = None

    def holds(self, value: Any) -> bool:
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int | float) or value != value:  # NaN never holds
            return False
        match self.op:
            case "==":
                return bool(value == self.a)
            case "!=":
                return bool(value != self.a)
            case ">=":
                return bool(value >= self.a)
            case "<=":
                return bool(value <= self.a)
            case ">":
                return bool(value > self.a)
            case "<":
                return bool(value < self.a)
            case _:
                assert self.b is not None
                return bool(self.a <= value <= self.b)

    def text(self) -> str:
        return f"in [{self.a:g}, {self.b:g}]" if self.op == "in" else f"{self.op} {self.a:g}"


_COND = re.compile(r"^\s*(==|!=|>=|<=|>|<)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$")
_RANGE = re.compile(r"^\s*in\s*\[\s*(-?[0-9.]+)\s*,\s*(-?[0-9.]+)\s*\]\s*$")


def parse_condition(text: str) -> Condition:
    m = _COND.match(text)
    if m:
        return Condition(m.group(1), float(m.group(2)))
    m = _RANGE.match(text)
    if m and float(m.group(1)) <= float(m.group(2)):
        return Condition("in", float(m.group(1)), float(m.group(2)))
    raise ValueError(f"not a condition: {text!r} (use == N, != N, >= N, <= N, > N, < N or "
                     "in [A, B])")


@dataclass(frozen=True)
class Case:
    """One variant of one scenario in one profile: everything a run needs, validated."""

    scenario: ScenarioFile
    variant: Variant
    profile: str
    source: Path
    spec: LabSpec
    params: Any  # the workload's params model
    faults: tuple[Fault, ...]
    expect: dict[str, dict[str, Condition]]
    signals: dict[str, str]
    #: The case's id when it is not a numbered scenario's (an incident replay:
    #: ``incident-<name>/repro``); it also names the case's results directory.
    label: str | None = None

    @property
    def name(self) -> str:
        return f"{self.scenario.name}/{self.variant.name}"

    @property
    def id(self) -> str:
        if self.label is not None:
            return self.label
        return f"s{self.scenario.number:02d}-{self.scenario.name}/{self.variant.name}"

    def expectations(self, figures: Mapping[str, Any]) -> list[Expectation]:
        """The verdicts of this case's conditions and signals on ``figures``."""
        out = []
        for phase, conds in self.expect.items():
            for fig, cond in conds.items():
                value = figures.get(fig)
                out.append(Expectation(fig, cond.text(), value, cond.holds(value), phase,
                                       "" if fig in figures else "figure not produced"))
        for fig, desc in self.signals.items():
            value = figures.get(fig, 0)
            ok = isinstance(value, int | float) and value >= 1
            out.append(Expectation(f"fault signal: {fig}", ">= 1 (sometimes)", value, ok,
                                   "fault", desc if ok else f"never fired: {desc}"))
        return out


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = (
            _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
        )
    return out


def dotted(loc: Sequence[int | str], brackets: bool = False) -> str:
    """A pydantic error location as a dotted key; ``brackets``: list indices as ``[i]``
    (``timeline[0].at_s``) rather than ``.0``."""
    key = ""
    for part in loc:
        if brackets and isinstance(part, int):
            key += f"[{part}]"
        else:
            key += f".{part}" if key else str(part)
    return key


def _pydantic_problems(exc: ValidationError, prefix: str = "", brackets: bool = False
                       ) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors():
        key = dotted(err["loc"], brackets) or "(root)"
        if prefix:
            key = f"{prefix}.{key}" if key != "(root)" else prefix
        if err["type"] == "extra_forbidden":
            out.append((key, "unknown key"))
        elif err["type"] == "missing":
            out.append((key, "required"))
        else:
            out.append(
                (key, f"{err['msg'].removeprefix('Value error, ')} (got {err.get('input')!r})")
            )
    return out


def load_file(path: Path) -> ScenarioFile:
    """Parse and validate the file's structure (workloads and figures are checked by
    :func:`cases`)."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioError(str(path), [("(file)", "no such file")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(path), [("(file)", f"not valid TOML: {exc}")]) from None
    try:
        return ScenarioFile.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(str(path), _pydantic_problems(exc)) from None


def cases(path: Path, profile: str) -> list[Case]:
    """Every variant of the scenario in ``path`` for ``profile`` (variants not in the profile
    are left out), with workloads, parameters, lab overlays and figure names checked."""
    if profile not in PROFILES:
        raise ScenarioError(
            str(path), [("profile", f"unknown profile {profile!r} (known: fast, full)")]
        )
    sf = load_file(path)
    problems: list[tuple[str, str]] = []
    out = []
    names = [v.name for v in sf.variants]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(("variants", f"variant name {dup!r} used twice"))
    for i, v in enumerate(sf.variants):
        where = f"variants[{i}]"
        data = v.model_dump()
        if profile == "full" and v.full:
            unknown = set(v.full) - {"params", "faults", "expect", "signals", "lab"}
            for k in sorted(unknown):
                problems.append(
                    (f"{where}.full.{k}", "unknown key (params, faults, expect, signals, lab)")
                )
            data = _merge(data, {k: v.full[k] for k in v.full if k not in unknown})
            if "faults" in v.full:
                data["faults"] = v.full["faults"]
        try:
            v2 = Variant.model_validate({k: val for k, val in data.items() if k != "full"})
        except ValidationError as exc:
            problems.extend(_pydantic_problems(exc, f"{where}.full"))
            continue
        try:
            spec = LabSpec(name=f"s{sf.number:02d}-{v.name}"[:64]).overlay(
                _merge(sf.lab, v2.lab), f"{path}: {where}.lab")
            spec = spec.overlay({"profiles": tuple(str(_resolve(p)) for p in v2.profiles)},
                                f"{path}: {where}.profiles")
        except SpecError as exc:
            problems.extend((f"{where}.lab.{k}" if not k.startswith(where) else k, m)
                            for k, m in exc.problems)
            continue
        for j, p in enumerate(v2.profiles):
            if not _resolve(p).exists():
                problems.append((f"{where}.profiles[{j}]", f"no such fault profile {p!r}"))
        entry, params, found = check_workload(v2.workload, v2.params, f"{where}.workload",
                                              f"{where}.params")
        problems.extend(found)
        if entry is None:
            continue
        problems.extend(check_faults(v2.faults, f"{where}.faults"))
        expect: dict[str, dict[str, Condition]] = {}
        for phase, conds in v2.expect.items():
            expect[phase], found = check_conditions(entry, params, conds,
                                                    f"{where}.expect.{phase}")
            problems.extend(found)
        problems.extend(check_signals(entry, params, v2.signals, f"{where}.signals"))
        problems.extend(check_verdict(entry, params, v2.key_figure, v2.summary, where))
        if not v2.expect and not v2.signals:
            problems.append((f"{where}.expect", "a variant must expect something"))
        if profile in v2.only:
            out.append(Case(sf, v2, profile, path, spec, params, tuple(v2.faults), expect,
                            dict(v2.signals)))
    if problems:
        raise ScenarioError(str(path), problems)
    return out


# -- checks shared by scenario files and incident files (lab.scenarios.incident) --------------
# Each takes the dotted key its value came from and returns (key, problem) pairs.

def check_workload(name: str, params: Mapping[str, Any], key: str, params_key: str,
                   brackets: bool = False) -> tuple[Any, Any, list[tuple[str, str]]]:
    """The registered workload ``name`` and its validated parameters (``(None, None,
    problems)`` when either is wrong); ``brackets``: list indices as ``[i]`` in keys."""
    from lab.scenarios.workloads import REGISTRY

    entry = REGISTRY.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, list(REGISTRY), n=1)
        hint = f", did you mean {close[0]!r}?" if close else ""
        return None, None, [(key, f"unknown workload {name!r}{hint} "
                                  f"(known: {', '.join(sorted(REGISTRY))})")]
    try:
        return entry, entry.params.model_validate(dict(params)), []
    except ValidationError as exc:
        return None, None, _pydantic_problems(exc, params_key, brackets)


def check_faults(faults: Sequence[Fault], key: str) -> list[tuple[str, str]]:
    """Each fault is either a toxic on a link or an action on a component."""
    problems = []
    for j, f in enumerate(faults):
        if (f.link is None) == (f.component is None):
            problems.append((f"{key}[{j}]", "give either link (with toxic) or component "
                                            "(with action)"))
        elif f.link is not None and f.toxic is None:
            problems.append((f"{key}[{j}].toxic", "required with link"))
        elif f.component is not None and f.action is None:
            problems.append((f"{key}[{j}].action", "required with component"))
    return problems


def _unknown_figure(entry: Any, params: Any) -> str:
    return f"unknown figure for workload {entry.name!r} ({entry.describe_figures(params)})"


def check_conditions(entry: Any, params: Any, conds: Mapping[str, str], key: str
                     ) -> tuple[dict[str, Condition], list[tuple[str, str]]]:
    """``figure = "condition"`` pairs: known figures of the workload, parseable conditions."""
    from lab.scenarios.workloads import known_figure

    out: dict[str, Condition] = {}
    problems = []
    for fig, text in conds.items():
        if not known_figure(entry, params, fig):
            problems.append((f"{key}.{fig}", _unknown_figure(entry, params)))
            continue
        try:
            out[fig] = parse_condition(text)
        except ValueError as exc:
            problems.append((f"{key}.{fig}", str(exc)))
    return out, problems


def check_signals(entry: Any, params: Any, signals: Mapping[str, str], key: str
                  ) -> list[tuple[str, str]]:
    from lab.scenarios.workloads import known_figure

    return [(f"{key}.{fig}", _unknown_figure(entry, params))
            for fig in signals if not known_figure(entry, params, fig)]


def check_verdict(entry: Any, params: Any, key_figure: str | None, summary: str | None,
                  where: str) -> list[tuple[str, str]]:
    """The verdict line's key figure and the figures its summary names."""
    from lab.scenarios.workloads import known_figure

    pre = f"{where}." if where else ""
    problems = []
    if key_figure is not None and not known_figure(entry, params, key_figure):
        problems.append((f"{pre}key_figure", f"unknown figure {key_figure!r}"))
    for fig in re.findall(r"\{([^{}]+)\}", summary or ""):
        if not known_figure(entry, params, fig):
            problems.append((f"{pre}summary", f"unknown figure {fig!r}"))
    return problems


def _resolve(profile_path: str) -> Path:
    p = Path(profile_path)
    return p if p.is_absolute() else DATA_DIR.parents[1] / p


def scenario_files(data_dir: Path = DATA_DIR) -> list[Path]:
    return sorted(data_dir.glob("*.toml"))


def all_cases(profile: str, data_dir: Path = DATA_DIR, only: list[str] | None = None) -> list[Case]:
    """Every case of every scenario file; ``only`` (scenario names or numbers) selects some,
    an unknown one is an error listing the known names."""
    files = scenario_files(data_dir)
    loaded = [(p, load_file(p)) for p in files]
    if only:
        known = {sf.name: p for p, sf in loaded} | {f"s{sf.number:02d}": p for p, sf in loaded} \
            | {str(sf.number): p for p, sf in loaded}
        bad = [n for n in only if n not in known]
        if bad:
            raise ScenarioError("--scenario", [(n, "unknown scenario (known: " + ", ".join(
                f"s{sf.number:02d} {sf.name}" for _, sf in loaded) + ")") for n in bad])
        files = sorted({known[n] for n in only})
    return [c for p in files for c in cases(p, profile)]


__all__ = ["DATA_DIR", "PHASE_KEYS", "PROFILES", "Case", "Condition", "Fault", "ScenarioError",
           "ScenarioFile", "Variant", "all_cases", "cases", "check_conditions", "check_faults",
           "check_signals", "check_verdict", "check_workload", "load_file", "parse_condition",
           "scenario_files"]

"""Trends across runs and the regressions among them, noise-aware.

Each metric of a run is compared with the same metric in the previous runs of the same mode
(the last ``window`` that have it) — with the history's *center* (median) and *spread*, never
with a single previous value. The spread is a standard deviation estimated from the mean
absolute deviation from the median (1.2533 x mean |x - median|, with the small-sample
correction sqrt(n / (n - 1))): nearly as efficient as the standard deviation on Gaussian noise,
less swayed by one bad night. A metric that got worse by ``worse`` (in its bad direction) is a
**regression** when::

    worse > allowed = max(k x spread x c(n), rel x |center|, abs)

i.e. beyond both its own noise and the configured threshold; symmetrically better is an
**improvement**. ``c(n)`` corrects for judging with a spread and a center estimated from only
``n`` previous values: for Gaussian noise it makes the chance that an unchanged metric is
flagged equal to the nominal one-sided tail of ``k`` (0.13 % for k = 3) whatever ``n`` is
(calibrated by Monte Carlo, 10^6 histories per n: c(3) = 7.7, c(5) = 2.5, c(10) = 1.47,
c(20) = 1.2, then 1 + 4/n). So a short history flags only large changes of a noisy metric,
while a metric that never moved (spread 0: a scenario that always passed, a count that was
always 0) is judged by its threshold from ``min_history`` runs on.

Which metrics are judged, their direction and thresholds come from rules (first match wins,
``fnmatch`` patterns on metric names): :data:`DEFAULT_RULES` (``reports/trends.toml``) or a
file of the same shape. A direction the result files give (a bench target's) wins over a rule's.
"""

from __future__ import annotations

import fnmatch
import math
import statistics
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

DEFAULT_RULES = Path(__file__).with_name("trends.toml")
Verdict = Literal["regression", "improvement", "ok", "new", "insufficient", "missing"]


class ConfigError(Exception):
    """A bad rules file: the message names the file and the key."""


@dataclass(frozen=True)
class Rule:
    match: str
    direction: str | None = None  # lower | higher; None: only a direction from the files
    rel: float = 0.10  # threshold relative to the history's center
    abs: float = 0.0  # threshold in the metric's unit
    k: float = 3.0  # noise band: k x spread
    ignore: bool = False


@dataclass(frozen=True)
class Config:
    window: int = 10
    min_history: int = 3
    rules: tuple[Rule, ...] = ()

    def rule_for(self, metric: str) -> Rule | None:
        for r in self.rules:
            if fnmatch.fnmatchcase(metric, r.match):
                return r
        return None


@dataclass(frozen=True)
class Judgement:
    metric: str
    value: float | None
    history: tuple[float, ...]  # the window's values, oldest first
    direction: str
    verdict: Verdict
    center: float | None = None
    spread: float | None = None
    allowed: float | None = None
    rule: str = ""
    runs: tuple[str, ...] = ()  # the ids of the runs ``history`` comes from, when known

    @property
    def delta(self) -> float | None:
        if self.value is None or self.center is None:
            return None
        return self.value - self.center

    @property
    def change(self) -> float | None:
        """Relative change from the center (None when the center is 0)."""
        d = self.delta
        if d is None or not self.center:
            return None
        return d / abs(self.center)

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "history": list(self.history),
                "direction": self.direction, "verdict": self.verdict, "center": self.center,
                "spread": self.spread, "allowed": self.allowed, "rule": self.rule}

    def why(self) -> str:
        """One line: the value against the center and the band it had to leave."""
        if self.verdict in ("new", "insufficient"):
            return f"{len(self.history)} previous value(s): not judged yet"
        if self.verdict == "missing":
            return "not measured in this run"
        assert self.value is not None and self.center is not None
        worse = "higher" if self.direction == "lower" else "lower"
        return (f"{_g(self.value)} vs median {_g(self.center)} of {len(self.history)} runs "
                f"(spread {_g(self.spread or 0)}; {worse} by more than {_g(self.allowed or 0)} "
                "is a regression)")


def _g(v: float) -> str:
    return f"{v:.4g}"


def spread_of(values: Sequence[float]) -> float:
    """The standard deviation of ``values`` estimated from their mean absolute deviation from
    the median (see the module docstring); 0 for fewer than two values."""
    n = len(values)
    if n < 2:
        return 0.0
    center = statistics.median(values)
    return 1.2533 * statistics.fmean(abs(v - center) for v in values) * math.sqrt(n / (n - 1))


#: c(n) for n previous values (module docstring): measured quantile of (x - median) / spread
#: at 1 - 0.00135 over Gaussian histories, divided by 3.
_SMALL_SAMPLE = {2: 30.0, 3: 7.70, 4: 3.40, 5: 2.51, 6: 2.02, 7: 1.82, 8: 1.65, 9: 1.55,
                 10: 1.47, 12: 1.38, 15: 1.29, 20: 1.20, 30: 1.13}


def small_sample_factor(n: int) -> float:
    """c(n): how much wider the noise band is when judged from ``n`` previous values."""
    if n in _SMALL_SAMPLE:
        return _SMALL_SAMPLE[n]
    if n > 30:
        return 1 + 4 / n
    lo = max(k for k in _SMALL_SAMPLE if k < n)
    hi = min(k for k in _SMALL_SAMPLE if k > n)
    f = (n - lo) / (hi - lo)
    return _SMALL_SAMPLE[lo] + f * (_SMALL_SAMPLE[hi] - _SMALL_SAMPLE[lo])


def judge(metric: str, value: float | None, history: Sequence[float], *, direction: str,
          rel: float = 0.10, abs_: float = 0.0, k: float = 3.0, min_history: int = 3,
          rule: str = "") -> Judgement:
    """Judge one metric's ``value`` against its ``history`` (oldest first). Pure."""
    hist = tuple(float(h) for h in history if math.isfinite(h))
    if value is None or not math.isfinite(value):
        return Judgement(metric, None, hist, direction, "missing", rule=rule)
    if not hist:
        return Judgement(metric, value, hist, direction, "new", rule=rule)
    if len(hist) < min_history:
        return Judgement(metric, value, hist, direction, "insufficient", rule=rule)
    center = statistics.median(hist)
    spread = spread_of(hist)
    allowed = max(k * spread * small_sample_factor(len(hist)), rel * abs(center), abs_)
    worse = value - center if direction == "lower" else center - value
    verdict: Verdict = ("regression" if worse > allowed else
                        "improvement" if -worse > allowed else "ok")
    return Judgement(metric, value, hist, direction, verdict, center, spread, allowed, rule)


def compare(current: Mapping[str, float], previous: Sequence[Mapping[str, float]],
            config: Config, directions: Mapping[str, str] | None = None, *,
            ids: Sequence[str] = ()) -> list[Judgement]:
    """Judge every metric of ``current`` (and every judged metric of the window that is gone)
    against ``previous`` (runs oldest first, named by ``ids``; the last ``config.window``
    count). Metrics no rule gives a direction to, and ignored ones, are left out. Sorted:
    regressions first."""
    directions = directions or {}
    names_of = list(ids) if len(ids) == len(previous) else [""] * len(previous)
    window = list(previous)[-config.window:] if config.window > 0 else []
    window_ids = names_of[-config.window:] if config.window > 0 else []
    names = set(current) | {n for run in window for n in run}
    out: list[Judgement] = []
    for name in sorted(names):
        rule = config.rule_for(name)
        if rule is None or rule.ignore:
            continue
        direction = directions.get(name) or rule.direction
        if direction not in ("lower", "higher"):
            continue
        hist = [run[name] for run in window if name in run]
        if name not in current and not hist:
            continue
        j = judge(name, current.get(name), hist, direction=direction, rel=rule.rel,
                  abs_=rule.abs, k=rule.k, min_history=config.min_history, rule=rule.match)
        out.append(replace(j, runs=tuple(i for i, run in zip(window_ids, window, strict=True)
                                         if name in run)))
    order = {"regression": 0, "improvement": 1, "missing": 2, "ok": 3, "insufficient": 4, "new": 5}
    return sorted(out, key=lambda j: (order[j.verdict], j.metric))


def load_config(path: Path | None = None, *, window: int | None = None) -> Config:
    """Rules from ``path`` (default :data:`DEFAULT_RULES`); ``window`` overrides the file's."""
    path = path or DEFAULT_RULES
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not TOML ({exc})") from None
    cfg = parse_config(data, str(path))
    if window is not None:
        if window < 1:
            raise ConfigError(f"window: must be at least 1, not {window}")
        cfg = replace(cfg, window=window)
    return cfg


_Types = type | tuple[type, ...]
_TOP: dict[str, _Types] = {"window": int, "min_history": int, "k": (int, float),
                           "rel": (int, float), "abs": (int, float), "metric": list}
_RULE: dict[str, _Types] = {"match": str, "direction": str, "rel": (int, float),
                            "abs": (int, float), "k": (int, float), "ignore": bool}


def parse_config(data: dict[str, Any], source: str = "rules") -> Config:
    """A :class:`Config` from parsed TOML; every problem at once, naming the dotted key."""
    errors: list[str] = []
    for key, v in data.items():
        if key not in _TOP:
            errors.append(f"{key}: unknown key (known: {', '.join(_TOP)})")
        elif not isinstance(v, _TOP[key]) or isinstance(v, bool):
            errors.append(f"{key}: expected {_tname(_TOP[key])}, got {type(v).__name__}")
    defaults = {k: float(data[k]) for k in ("rel", "abs", "k")
                if isinstance(data.get(k), int | float) and not isinstance(data.get(k), bool)}
    rules: list[Rule] = []
    listed = data.get("metric")
    for i, r in enumerate(listed if isinstance(listed, list) else []):
        where = f"metric[{i}]"
        if not isinstance(r, dict):
            errors.append(f"{where}: expected a table")
            continue
        bad = False
        for key, v in r.items():
            if key not in _RULE:
                errors.append(f"{where}.{key}: unknown key (known: {', '.join(_RULE)})")
                bad = True
            elif not isinstance(v, _RULE[key]) or (isinstance(v, bool) and _RULE[key] is not bool):
                errors.append(f"{where}.{key}: expected {_tname(_RULE[key])}, "
                              f"got {type(v).__name__}")
                bad = True
        if "match" not in r:
            errors.append(f"{where}.match: missing")
            bad = True
        if r.get("direction") not in (None, "lower", "higher"):
            errors.append(f"{where}.direction: 'lower' or 'higher', not {r.get('direction')!r}")
            bad = True
        for key in ("rel", "abs", "k"):
            if isinstance(r.get(key), int | float) and r[key] < 0:
                errors.append(f"{where}.{key}: must be >= 0")
                bad = True
        if not bad:
            nums = {k: float(r.get(k, defaults.get(k, getattr(Rule, k)))) for k in
                    ("rel", "abs", "k")}
            rules.append(Rule(match=str(r["match"]), direction=r.get("direction"),
                              ignore=bool(r.get("ignore", False)), **nums))
    for key in ("window", "min_history"):
        if isinstance(data.get(key), int) and data[key] < 1:
            errors.append(f"{key}: must be at least 1")
    if errors:
        raise ConfigError(f"{source}: " + "; ".join(errors))
    return Config(window=int(data.get("window", 10)), min_history=int(data.get("min_history", 3)),
                  rules=tuple(rules))


def _tname(t: _Types) -> str:
    if isinstance(t, tuple):
        return "a number" if set(t) == {int, float} else " or ".join(x.__name__ for x in t)
    return {int: "an integer", str: "a string", bool: "true or false", list: "an array"}.get(
        t, t.__name__)


@dataclass
class History:
    """Previous runs' metrics, oldest first (what :func:`compare` takes), with their ids."""

    ids: list[str] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)
    directions: dict[str, str] = field(default_factory=dict)

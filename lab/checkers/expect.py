"""Expectations: a named check with what was expected, what was observed, and the verdict.

Checkers return figures; scenarios turn figures into :class:`Expectation` values with the
helpers below, and a result record lists them all (docs/results.md). ``phase`` says what the
expectation is about: ``incident`` (the symptom users saw is reproduced), ``fix`` (the documented
fix removes it), ``fault`` (a "sometimes" signal: the fault really fired), ``health`` (the rest of
the system stayed sound).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

PHASES = ("incident", "fix", "fault", "health")


@dataclass(frozen=True)
class Expectation:
    name: str
    expected: str
    observed: Any
    ok: bool
    phase: str = "fix"
    detail: str = ""

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"expectation {self.name!r}: phase must be one of {PHASES}")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pass"] = d.pop("ok")
        return d

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        extra = f" ({self.detail})" if self.detail else ""
        observed = f"observed {self.observed!r}, expected {self.expected}{extra}"
        return f"{mark} [{self.phase}] {self.name}: {observed}"


def equal(
    name: str, observed: Any, expected: Any, *, phase: str = "fix", detail: str = ""
) -> Expectation:
    return Expectation(name, f"== {expected!r}", observed, observed == expected, phase, detail)


def at_least(name: str, observed: float, minimum: float, *, phase: str = "fix",
             detail: str = "") -> Expectation:
    return Expectation(name, f">= {minimum:g}", observed, observed >= minimum, phase, detail)


def at_most(name: str, observed: float, maximum: float, *, phase: str = "fix",
            detail: str = "") -> Expectation:
    return Expectation(name, f"<= {maximum:g}", observed, observed <= maximum, phase, detail)


def between(name: str, observed: float, low: float, high: float, *, phase: str = "fix",
            detail: str = "") -> Expectation:
    return Expectation(name, f"in [{low:g}, {high:g}]", observed, low <= observed <= high, phase,
                       detail)


def holds(name: str, ok: bool, observed: Any, expected: str, *, phase: str = "fix",
          detail: str = "") -> Expectation:
    """A check whose verdict the caller computed (``expected`` says in words what was wanted)."""
    return Expectation(name, expected, observed, ok, phase, detail)


__all__ = ["PHASES", "Expectation", "at_least", "at_most", "between", "equal", "holds"]

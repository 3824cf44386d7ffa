"""The scenario result record (schema version :data:`VERSION`), in the spirit of hive's test
results: what ran, when, the verdict, every expectation with its observed value, the fault events,
and where in each component's log the run's lines are (byte offsets).

Pure: :func:`build` assembles a record from values, :func:`problems` validates one (the loaders in
:mod:`lab.checkers.load` and the reports use it). The schema is documented in docs/results.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lab.checkers.expect import Expectation

VERSION = 1

#: Required keys and their JSON types.
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "version": int, "name": str, "scenario": str, "variant": str, "description": str,
    "profile": str, "seed": (int, type(None)), "start": str, "end": str, "start_unix": float,
    "end_unix": float, "duration_s": float, "pass": bool, "summary": str,
    "key_figure": dict, "expectations": list, "fault_events": list, "lab": (dict, type(None)),
    "logs": dict, "histories": list, "figures": dict, "error": (str, type(None)),
}


@dataclass(frozen=True)
class LogSpan:
    """Bytes ``[begin, end)`` of a log file, ``path`` relative to the lab's run directory."""

    path: str
    begin: int
    end: int

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "begin": self.begin, "end": self.end}


def iso(t: float) -> str:
    return (
        dt.datetime.fromtimestamp(t, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def passed(expectations: Sequence[Expectation], error: str | None) -> bool:
    """A scenario passes when it ran to the end, checked something, and every check held."""
    return error is None and bool(expectations) and all(e.ok for e in expectations)


def build(*, scenario: str, variant: str, description: str, profile: str, seed: int | None,
          start: float, end: float, expectations: Sequence[Expectation],
          summary: str, key_figure: Mapping[str, Any],
          fault_events: Sequence[Mapping[str, Any]] = (), lab: Mapping[str, Any] | None = None,
          logs: Mapping[str, LogSpan] | None = None,
          histories: Sequence[Mapping[str, Any]] = (), figures: Mapping[str, Any] | None = None,
          error: str | None = None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A record as plain JSON-able data. ``key_figure``: ``{"name", "value"}``. ``extra``:
    optional keys (``number``, ``incident``, ``fix``, ``file``, ``fault_windows``,
    ``details``), never the required ones."""
    clash = set(extra or {}) & set(REQUIRED)
    if clash:
        raise ValueError(f"extra keys clash with required ones: {sorted(clash)}")
    return {
        "version": VERSION,
        "name": f"{scenario}/{variant}",
        "scenario": scenario,
        "variant": variant,
        "description": description,
        "profile": profile,
        "seed": seed,
        "start": iso(start),
        "end": iso(end),
        "start_unix": round(start, 6),
        "end_unix": round(end, 6),
        "duration_s": round(end - start, 3),
        "pass": passed(expectations, error),
        "summary": summary,
        "key_figure": dict(key_figure),
        "expectations": [e.as_dict() for e in expectations],
        "fault_events": [dict(e) for e in fault_events],
        "lab": dict(lab) if lab is not None else None,
        "logs": {k: v.as_dict() for k, v in (logs or {}).items()},
        "histories": [dict(h) for h in histories],
        "figures": dict(figures or {}),
        "error": error,
        **dict(extra or {}),
    }


def problems(record: Any) -> list[str]:
    """What is wrong with a record (empty when it is valid): ``key: problem`` strings."""
    if not isinstance(record, dict):
        return ["(root): not a JSON object"]
    out = []
    for key, typ in REQUIRED.items():
        if key not in record:
            out.append(f"{key}: missing")
        elif typ is float and isinstance(record[key], int) and not isinstance(record[key], bool):
            continue
        elif not isinstance(record[key], typ) or (typ is int and isinstance(record[key], bool)):
            out.append(f"{key}: expected {getattr(typ, '__name__', typ)}, "
                       f"got {type(record[key]).__name__}")
    if isinstance(record.get("version"), int) and record["version"] > VERSION:
        out.append(f"version: {record['version']} is newer than this reader ({VERSION})")
    for i, e in enumerate(record.get("expectations") or []):
        for k in ("name", "expected", "observed", "pass", "phase"):
            if not isinstance(e, dict) or k not in e:
                out.append(f"expectations[{i}].{k}: missing")
    for name, span in (record.get("logs") or {}).items():
        if not (isinstance(span, dict) and isinstance(span.get("begin"), int)
                and isinstance(span.get("end"), int) and span["begin"] <= span["end"]):
            out.append(f"logs.{name}: expected {{path, begin <= end}}")
    return out


__all__ = ["REQUIRED", "VERSION", "LogSpan", "build", "iso", "passed", "problems"]

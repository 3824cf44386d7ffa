"""Scenario results: the records ``pytest scenarios --scenario-results DIR`` writes
(docs/results.md).

The reader follows the versioned schema (``version`` 1): it refuses a newer version and a record
without the required keys, naming the file. It keeps its own copy of the required keys because
``reports`` never imports ``lab``; a test ties the copy to ``lab.checkers.record.REQUIRED``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reports.files import Problems, number, read_json, read_jsonl

SECTION = "scenarios"
#: The result record's schema version this reader understands.
VERSION = 1
#: Required keys of a v1 record and their JSON types (mirrors lab.checkers.record.REQUIRED).
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "version": int, "name": str, "scenario": str, "variant": str, "description": str,
    "profile": str, "seed": (int, type(None)), "start": str, "end": str, "start_unix": float,
    "end_unix": float, "duration_s": float, "pass": bool, "summary": str,
    "key_figure": dict, "expectations": list, "fault_events": list, "lab": (dict, type(None)),
    "logs": dict, "histories": list, "figures": dict, "error": (str, type(None)),
}


def problems_of(record: Any) -> list[str]:
    """What is wrong with a record for this reader (empty: usable)."""
    if not isinstance(record, dict):
        return ["not a JSON object"]
    out = []
    for key, typ in REQUIRED.items():
        if key not in record:
            out.append(f"{key}: missing")
            continue
        v = record[key]
        if typ is float and isinstance(v, int) and not isinstance(v, bool):
            continue
        if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
            out.append(f"{key}: expected {getattr(typ, '__name__', 'one of ' + str(typ))}, "
                       f"got {type(v).__name__}")
    version = record.get("version")
    if isinstance(version, int) and version > VERSION:
        out.append(f"version: {version} is newer than this reader ({VERSION})")
    return out


@dataclass
class Case:
    """One scenario case (a variant in one profile) with what the report needs of it."""

    record: dict[str, Any]
    path: Path  # the result.json
    lab_dir: Path | None  # the lab run directory, when it exists
    history: pd.DataFrame | None = None  # history.jsonl events (None: none or unreadable)
    slug: str = ""

    @property
    def name(self) -> str:
        return str(self.record["name"])

    @property
    def passed(self) -> bool:
        return bool(self.record["pass"])

    @property
    def number(self) -> int | None:
        n = self.record.get("number")
        return n if isinstance(n, int) else None

    @property
    def expectations(self) -> list[dict[str, Any]]:
        return [e for e in self.record["expectations"] if isinstance(e, dict)]

    @property
    def fault_windows(self) -> list[dict[str, Any]]:
        wins = self.record.get("fault_windows")
        return [w for w in wins if isinstance(w, dict)] if isinstance(wins, list) else []

    def figure(self, name: str) -> float | None:
        return number(self.record["figures"].get(name))


@dataclass
class Scenarios:
    """All cases of a results directory, in the order the listing gives (else by name)."""

    directory: Path
    cases: list[Case] = field(default_factory=list)
    #: listing entries whose record could not be used (name, file): shown as failed rows
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.cases)

    @property
    def total(self) -> int:
        return len(self.cases) + len(self.unreadable)


def load(directory: Path, run_dir: Path, problems: Problems, *,
         missing_ok: bool = False) -> Scenarios | None:
    """The scenario results under ``directory`` (``listing.jsonl`` and each record it names);
    records not in the listing (a run killed before it appended) are found by globbing."""
    if not directory.is_dir():
        if not missing_ok:
            problems.add(SECTION, directory, "missing (no such directory)")
        return None
    out = Scenarios(directory)
    listing = read_jsonl(directory / "listing.jsonl", problems, SECTION, required=("file",))
    files: list[tuple[str, Path]] = []
    if listing is not None:
        files = [(str(e.get("name", e["file"])), directory / str(e["file"])) for e in listing]
    seen = {p.resolve() for _, p in files}
    for extra in sorted(directory.glob("*/result.json")):
        if extra.resolve() not in seen:
            files.append((extra.parent.name, extra))
    for name, path in files:
        case = load_case(path, run_dir, problems)
        if case is None:
            out.unreadable.append((name, problems.rel(path)))
        else:
            out.cases.append(case)
    return out


def load_case(path: Path, run_dir: Path, problems: Problems) -> Case | None:
    """One case from its ``result.json`` (with its history), or None (the problem recorded).
    ``run_dir``: where a moved lab run directory is looked for (``<run_dir>/labs/<run id>``)."""
    record = read_json(path, problems, SECTION)
    if record is None:
        return None
    bad = problems_of(record)
    if bad:
        problems.add(SECTION, path, "not a v1 result record: " + "; ".join(bad))
        return None
    case = Case(record, path, _lab_dir(record, run_dir), slug=path.parent.name)
    case.history = _history(case, problems)
    return case


def _lab_dir(record: dict[str, Any], run_dir: Path) -> Path | None:
    """The case's lab run directory: as recorded, else ``<run>/labs/<run_id>`` (a run directory
    that was moved or copied keeps working)."""
    lab = record.get("lab")
    if not isinstance(lab, dict):
        return None
    recorded = lab.get("run_dir")
    if isinstance(recorded, str) and Path(recorded).is_dir():
        return Path(recorded)
    run_id = lab.get("run_id")
    if isinstance(run_id, str):
        for candidate in (run_dir / "labs" / run_id, run_dir.parent / "runs" / run_id):
            if candidate.is_dir():
                return candidate
    return None


def _history(case: Case, problems: Problems) -> pd.DataFrame | None:
    frames = []
    for h in case.record["histories"]:
        if not isinstance(h, dict) or not isinstance(h.get("path"), str):
            continue
        rows = read_jsonl(case.path.parent / h["path"], problems, SECTION,
                          required=("ev", "client"))
        if rows:
            frames.append(pd.DataFrame.from_records(rows))
    if not frames:
        return None
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values("wall", kind="stable") if "wall" in df.columns else df


def reconnect_times(case: Case) -> list[float]:
    """Seconds from each close to being subscribed again (``reconnected`` events)."""
    h = case.history
    if h is None or "down_s" not in h.columns:
        return []
    s = h.loc[h["ev"] == "reconnected", "down_s"]
    return [float(v) for v in pd.to_numeric(s, errors="coerce").dropna()]


def close_codes(case: Case) -> dict[str, int]:
    """Close code -> count of the connections the clients lost (a client's own stop excluded)."""
    h = case.history
    if h is None or "code" not in h.columns:
        return {}
    closes = h[h["ev"] == "close"]
    if "stop" in closes.columns:
        closes = closes[closes["stop"].fillna(False).astype(bool) == False]  # noqa: E712
    counts = closes["code"].dropna().astype(int).astype(str).value_counts()
    return {str(k): int(v) for k, v in sorted(counts.items())}


def head_latency(case: Case) -> pd.DataFrame | None:
    """Per second of the case (Unix seconds ``t``): p50 and p99 of the head notification
    latency (``notify`` events' ``lat_ms``); None without notifications."""
    h = case.history
    if h is None or "lat_ms" not in h.columns or "wall" not in h.columns:
        return None
    n = h[h["ev"] == "notify"][["wall", "lat_ms"]].dropna()
    if n.empty:
        return None
    n = n.assign(sec=n["wall"].astype(float).floordiv(1.0))
    g = n.groupby("sec")["lat_ms"]
    return pd.DataFrame({"t": g.median().index.astype(float), "p50": g.quantile(0.5).values,
                         "p99": g.quantile(0.99).values}).reset_index(drop=True)

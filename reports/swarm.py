"""A swarm's output directory (docs/swarm.md): summary, request log, fault windows, node series."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reports.files import Problems, expect_dict, number, read_csv, read_json, read_jsonl

SECTION = "swarm"


@dataclass
class Swarm:
    directory: Path
    summary: dict[str, Any] | None = None
    requests: pd.DataFrame | None = None  # t, type, name, ms, ok (Unix seconds)
    windows: list[dict[str, Any]] = field(default_factory=list)  # link, toxic, start, end, ...
    node: pd.DataFrame | None = None  # t, head, mempool, node_ws, nginx_active

    @property
    def started(self) -> float | None:
        """The swarm's start (Unix seconds): the x origin of its plots."""
        s = number((self.summary or {}).get("started"))
        if s is not None:
            return s
        if self.requests is not None and not self.requests.empty:
            return float(self.requests["t"].min())
        return None

    def connections(self) -> dict[str, Any]:
        return dict((self.summary or {}).get("connections") or {})

    def close_codes(self) -> dict[str, int]:
        codes = (self.summary or {}).get("close_codes") or {}
        return {str(k): int(v) for k, v in codes.items() if number(v) is not None}

    def series(self, rtype: str, name: str | None = None) -> pd.DataFrame:
        """Request rows of one ``type`` (and ``name``)."""
        r = self.requests
        if r is None:
            return pd.DataFrame(columns=["t", "type", "name", "ms", "ok"])
        sel = r["type"] == rtype
        if name is not None:
            sel &= r["name"] == name
        return r[sel]


def load(directory: Path, problems: Problems, *, missing_ok: bool = False) -> Swarm | None:
    if not directory.is_dir():
        if not missing_ok:
            problems.add(SECTION, directory, "missing (no such directory)")
        return None
    sw = Swarm(directory)
    sw.summary = expect_dict(read_json(directory / "summary.json", problems, SECTION),
                             directory / "summary.json", problems, SECTION)
    frames = []
    logs = sorted(directory.glob("requests-*.jsonl"))
    if not logs:
        problems.add(SECTION, directory / "requests-*.jsonl", "missing (no request log)")
    for path in logs:
        rows = read_jsonl(path, problems, SECTION, required=("t", "type", "name", "ms"))
        if rows:
            frames.append(pd.DataFrame.from_records(rows, columns=["t", "type", "name", "ms",
                                                                   "ok"]))
    if frames:
        df = pd.concat(frames, ignore_index=True)
        df["t"] = pd.to_numeric(df["t"], errors="coerce")
        df["ms"] = pd.to_numeric(df["ms"], errors="coerce")
        sw.requests = df.dropna(subset=["t"]).sort_values("t", kind="stable")
    sw.windows = _windows(directory, sw.summary, problems)
    sw.node = read_csv(directory / "node-metrics.csv", problems, SECTION, required=("t",),
                       missing_ok=True)
    return sw


def _windows(directory: Path, summary: dict[str, Any] | None,
             problems: Problems) -> list[dict[str, Any]]:
    """Fault windows: ``faults.json`` (the swarm's fault schedule as it ran), else the summary's
    copy, else rebuilt from the proxy's events (``toxic_started``/``toxic_stopped``)."""
    data = read_json(directory / "faults.json", problems, SECTION, missing_ok=True)
    if data is None and summary is not None:
        data = summary.get("faults")
    events = read_jsonl(directory / "proxy-events.jsonl", problems, SECTION, missing_ok=True)
    if isinstance(data, list):
        windows = [dict(w) for w in data if isinstance(w, dict) and
                   number(w.get("start")) is not None]
        return count_per_window(windows, events) if events else windows
    return count_per_window(windows_from_events(events or []), events or [])


def count_per_window(windows: list[dict[str, Any]], events: list[dict[str, Any]]
                     ) -> list[dict[str, Any]]:
    """Each window's own ``fired`` (connections a continuous toxic acted on) and ``actions``
    (cuts, closes, resets), from the proxy's ``toxic_fired`` events inside it: a toxic on a
    repeating schedule has one window per period, each with its own counts."""
    for w in windows:
        start, end = float(w["start"]), number(w.get("end"))
        mine = [e for e in events if e.get("event") == "toxic_fired"
                and e.get("proxy") == w.get("link") and e.get("toxic") == w.get("toxic")
                and (t := number(e.get("time"))) is not None
                and start <= t <= (end if end is not None else t)]
        w["fired"] = sum("action" not in e for e in mine)
        w["actions"] = sum("action" in e for e in mine)
    return windows


def windows_from_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per toxic, when it was on: from added/started to removed/stopped (docs/swarm.md)."""
    open_at: dict[tuple[str, str], float] = {}
    out: list[dict[str, Any]] = []
    last = 0.0
    for e in events:
        t = number(e.get("time"))
        if t is None:
            continue
        last = max(last, t)
        key = (str(e.get("proxy", "")), str(e.get("toxic", "")))
        kind = e.get("event")
        if kind in ("toxic_added", "toxic_started") and key not in open_at:
            if kind == "toxic_added" and e.get("active") is False:
                continue
            open_at[key] = t
        elif kind in ("toxic_removed", "toxic_stopped") and key in open_at:
            out.append({"link": key[0], "toxic": key[1], "start": open_at.pop(key), "end": t})
    out += [{"link": k[0], "toxic": k[1], "start": s, "end": last} for k, s in open_at.items()]
    return sorted(out, key=lambda w: w["start"])


def percentiles_over_time(rows: pd.DataFrame, origin: float, bucket_s: float = 1.0
                          ) -> pd.DataFrame:
    """Per ``bucket_s`` since ``origin``: count, p50, p90, p99 and max of ``ms``."""
    if rows.empty:
        return pd.DataFrame(columns=["s", "count", "p50", "p90", "p99", "max"])
    df = rows.assign(s=((rows["t"] - origin) // bucket_s) * bucket_s)
    g = df.groupby("s")["ms"]
    out = pd.DataFrame({"count": g.size(), "p50": g.quantile(0.5), "p90": g.quantile(0.9),
                        "p99": g.quantile(0.99), "max": g.max()})
    return out.reset_index()


def counts_over_time(rows: pd.DataFrame, origin: float, bucket_s: float = 1.0,
                     until: float | None = None) -> pd.Series:
    """Rows per ``bucket_s`` since ``origin`` (index: seconds), every bucket up to the last row
    (or ``until``, Unix seconds) present, empty ones as 0."""
    if rows.empty:
        return pd.Series(dtype=float)
    buckets = ((rows["t"] - origin) // bucket_s).astype(int)
    last = int((until - origin) // bucket_s) if until is not None else int(buckets.max())
    counts = buckets.value_counts().reindex(range(0, max(last, int(buckets.max())) + 1),
                                            fill_value=0)
    counts.index = counts.index * bucket_s
    return counts.sort_index()

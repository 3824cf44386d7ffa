"""The report's figures: matplotlib on its Agg canvas (no display, no network), PNG files.

Every function draws one figure into ``out_dir`` and returns a :class:`Plot` (or None when
there is nothing to draw). Figures are built with :class:`matplotlib.figure.Figure` directly
(no pyplot state), so rendering needs no backend selection and leaks nothing between plots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from reports import scenarios as sc
from reports.swarm import Swarm, counts_over_time, percentiles_over_time

DPI = 96
_FAULT_COLORS = ["#f4a261", "#e76f51", "#e9c46a", "#90be6d", "#b5838d", "#8ecae6"]


@dataclass(frozen=True)
class Plot:
    file: str  # relative to the page
    title: str
    alt: str


def _figure(width: float, height: float) -> Figure:
    """A figure laid out by the constrained layout engine (margins fit the labels in one draw)."""
    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Figure, out_dir: Path, name: str, title: str, alt: str) -> Plot:
    out_dir.mkdir(parents=True, exist_ok=True)
    # zlib level 1: half the time of the default for files about a third larger
    fig.savefig(out_dir / name, dpi=DPI, pil_kwargs={"compress_level": 1})
    return Plot(f"{out_dir.name}/{name}", title, alt)


def shade(ax: Axes, windows: Sequence[dict[str, Any]], origin: float, *,
          start_key: str = "start", end_key: str = "end", until: float | None = None) -> None:
    """Shade each fault window (Unix seconds) on an axis whose x is seconds since ``origin``;
    one legend entry per fault."""
    colors: dict[str, str] = {}
    for w in windows:
        start = w.get(start_key)
        end = w.get(end_key)
        if not isinstance(start, int | float):
            continue
        if not isinstance(end, int | float):
            end = until if until is not None else start
        label = fault_label(w)
        color = colors.setdefault(label, _FAULT_COLORS[len(colors) % len(_FAULT_COLORS)])
        ax.axvspan(float(start) - origin, max(float(end), float(start) + 0.05) - origin,
                   color=color, alpha=0.25, lw=0)
    if colors:
        handles = [Patch(color=c, alpha=0.4, label=lbl) for lbl, c in colors.items()]
        extra = ax.get_legend_handles_labels()[0]
        ax.legend(handles=extra + handles, fontsize=7, loc="upper left")


def latency_scale(ax: Axes, values: pd.Series) -> None:
    """Linear from 0, or symmetric-log when the values span more than two orders of magnitude
    (a few 1-second stalls among millisecond deliveries)."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    v = v[v > 0]
    if not v.empty and v.max() > 100 * max(float(v.median()), 1.0):
        ax.set_yscale("symlog", linthresh=10)
    ax.set_ylim(bottom=0)


def fault_label(w: dict[str, Any]) -> str:
    if w.get("component"):
        return f"{w['component']}: {w.get('action', 'action')}"
    link, toxic = w.get("link") or "", w.get("toxic") or w.get("fault") or ""
    return f"{link}/{toxic}" if link else str(toxic or "fault")


# -- scenarios ----------------------------------------------------------------------------------

def scenario_latency(case: sc.Case, out_dir: Path, name: str) -> Plot | None:
    """Head notification latency per second (p50, p99) with the fault windows shaded and the
    clients' lost connections marked."""
    lat = sc.head_latency(case)
    if lat is None:
        return None
    origin = float(case.record["start_unix"])
    fig = _figure(8, 2.6)
    ax = fig.subplots()
    ax.plot(lat["t"] - origin, lat["p50"], label="p50", lw=1.2)
    ax.plot(lat["t"] - origin, lat["p99"], label="p99", lw=1.2)
    h = case.history
    if h is not None and "code" in h.columns:
        closes = h[(h["ev"] == "close")]
        if "stop" in closes.columns:
            closes = closes[closes["stop"].fillna(False).astype(bool) == False]  # noqa: E712
        if not closes.empty:
            ax.plot(closes["wall"].astype(float) - origin, [0] * len(closes), "|", color="black",
                    ms=10, label="connection lost")
    ax.set_xlabel("seconds since the case started")
    ax.set_ylabel("head latency ms")
    latency_scale(ax, lat["p99"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    shade(ax, case.fault_windows, origin, start_key="on", end_key="off",
          until=float(case.record["end_unix"]))
    return _save(fig, out_dir, name, f"{case.name}: head latency over time",
                 "head notification latency p50 and p99 per second, fault windows shaded")


def scenario_reconnects(cases: Sequence[sc.Case], out_dir: Path) -> Plot | None:
    """The distribution of reconnect times (close -> subscribed again) per case."""
    data = [(c.name, sc.reconnect_times(c)) for c in cases]
    data = [(n, v) for n, v in data if v]
    if not data:
        return None
    fig = _figure(8, 0.5 + 0.45 * len(data) + 1)
    ax = fig.subplots()
    ax.boxplot([v for _, v in data], orientation="horizontal", whis=(1, 99), showfliers=True,
               flierprops={"markersize": 3})
    ax.set_yticks(range(1, len(data) + 1), [f"{n} (n={len(v)})" for n, v in data], fontsize=8)
    ax.set_xlabel("reconnect time s (close to subscribed again); whiskers p1-p99")
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, out_dir, "scenario-reconnects.png", "Reconnect-time distribution per case",
                 "box plot of reconnect times per scenario case")


def scenario_closes(cases: Sequence[sc.Case], out_dir: Path) -> Plot | None:
    """Close codes the clients saw, per case (stacked)."""
    rows = {c.name: sc.close_codes(c) for c in cases}
    rows = {k: v for k, v in rows.items() if v}
    if not rows:
        return None
    df = pd.DataFrame(rows).T.fillna(0)
    fig = _figure(8, 0.5 + 0.45 * len(df) + 1)
    ax = fig.subplots()
    left = pd.Series(0.0, index=df.index)
    for code in df.columns:
        ax.barh(range(len(df)), df[code], left=left, label=str(code))
        left += df[code]
    ax.set_yticks(range(len(df)), list(df.index), fontsize=8)
    ax.set_xlabel("connections lost, by close code")
    ax.legend(fontsize=7, title="code", title_fontsize=7)
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, out_dir, "scenario-closes.png", "Close codes per case",
                 "stacked bars of close codes per scenario case")


# -- the swarm ----------------------------------------------------------------------------------

def swarm_latency(sw: Swarm, out_dir: Path) -> Plot | None:
    origin = sw.started
    notify = sw.series("notify")
    if origin is None or notify.empty:
        return None
    p = percentiles_over_time(notify, origin)
    fig = _figure(8, 3)
    ax = fig.subplots()
    for col in ("p50", "p90", "p99"):
        ax.plot(p["s"], p[col], label=f"notify {col}", lw=1.2)
    opens = sw.series("WS", "open")
    if not opens.empty:
        po = percentiles_over_time(opens, origin)
        ax.plot(po["s"], po["p99"], ".", label="handshake p99", ms=4)
    ax.set_xlabel("seconds since the swarm started")
    ax.set_ylabel("ms")
    latency_scale(ax, p["p99"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    shade(ax, sw.windows, origin)
    return _save(fig, out_dir, "swarm-latency.png", "Swarm: latency percentiles over time",
                 "notification latency p50, p90, p99 per second with fault windows shaded")


def swarm_connections(sw: Swarm, out_dir: Path) -> Plot | None:
    origin = sw.started
    if origin is None or sw.requests is None:
        return None
    fig = _figure(8, 3)
    ax, hist = fig.subplots(1, 2, width_ratios=[2.2, 1])
    until = float(sw.requests["t"].max())
    for label, rows in (("handshakes", sw.series("WS", "open")),
                        ("reconnects", sw.series("WS", "reconnect"))):
        c = counts_over_time(rows, origin, until=until)
        if not c.empty:
            ax.step(c.index, c.values, where="post", label=label)
    closes = sw.requests[(sw.requests["type"] == "WS") &
                         sw.requests["name"].astype(str).str.startswith("close ") &
                         (sw.requests["name"] != "close 1000")]
    c = counts_over_time(closes, origin, until=until)
    if not c.empty:
        ax.step(c.index, c.values, where="post", label="abnormal closes")
    ax.set_xlabel("seconds since the swarm started")
    ax.set_ylabel("per second")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    shade(ax, sw.windows, origin)
    rt = pd.to_numeric(sw.series("WS", "reconnect")["ms"], errors="coerce").dropna()
    if rt.empty:
        hist.text(0.5, 0.5, "no reconnects", ha="center", va="center")
        hist.set_axis_off()
    else:
        hist.hist(rt / 1000, bins=min(40, max(5, int(math.sqrt(len(rt))))))
        hist.set_xlabel("reconnect time s")
        hist.set_ylabel("reconnects")
        hist.grid(alpha=0.3)
    return _save(fig, out_dir, "swarm-connections.png",
                 "Swarm: handshakes, closes and reconnects; reconnect-time distribution",
                 "connection events per second and reconnect time histogram")


def close_codes(codes: dict[str, int], out_dir: Path, name: str, title: str) -> Plot | None:
    if not codes:
        return None
    fig = _figure(4, 2.4)
    ax = fig.subplots()
    keys = sorted(codes)
    bars = ax.bar(keys, [codes[k] for k in keys],
                  color=["#2a9d8f" if k == "1000" else "#e76f51" for k in keys])
    ax.bar_label(bars, fontsize=7)
    ax.set_xlabel("close code")
    ax.set_ylabel("connections")
    return _save(fig, out_dir, name, title, "bar chart of close codes")


def swarm_node(sw: Swarm, out_dir: Path) -> Plot | None:
    node = sw.node
    origin = sw.started
    if node is None or node.empty or origin is None:
        return None
    t = pd.to_numeric(node["t"], errors="coerce") - origin
    fig = _figure(8, 3.6)
    top, bottom = fig.subplots(2, 1, sharex=True)
    if "head" in node.columns:
        top.plot(t, node["head"], label="block height", color="#264653")
    top.set_ylabel("height")
    top.grid(alpha=0.3)
    if "mempool" in node.columns:
        twin = top.twinx()
        twin.plot(t, node["mempool"], label="mempool", color="#e76f51", lw=1)
        twin.set_ylabel("mempool txs")
    for col, label in (("node_ws", "node WebSockets"), ("nginx_active", "nginx active")):
        if col in node.columns:
            bottom.plot(t, node[col], label=label, lw=1)
    bottom.set_ylabel("connections")
    bottom.set_xlabel("seconds since the swarm started")
    bottom.grid(alpha=0.3)
    bottom.legend(fontsize=7, loc="upper right")
    shade(top, sw.windows, origin)
    shade(bottom, sw.windows, origin)
    return _save(fig, out_dir, "swarm-node.png", "Node: block height and mempool over time",
                 "block height, mempool size and open connections per second")


# -- benchmarks ---------------------------------------------------------------------------------

def scheduler(cells: Sequence[dict[str, Any]], out_dir: Path) -> Plot | None:
    """TPS, parallel efficiency and conflict rate per strategy, per workload (2 workers, or the
    most measured; one row of panels per executor)."""
    df = pd.DataFrame.from_records([c for c in cells if isinstance(c, dict)])
    need = {"executor", "workload", "label", "workers", "tps", "efficiency", "conflict_rate"}
    if df.empty or not need <= set(df.columns):
        return None
    executors = list(dict.fromkeys(df["executor"]))
    labels = list(dict.fromkeys(df["label"]))  # one color per strategy in every panel
    colors = {lbl: f"C{i % 10}" for i, lbl in enumerate(labels)}
    fig = _figure(11, 3.2 * len(executors))
    axes = fig.subplots(len(executors), 3, squeeze=False)
    for row, ex in enumerate(executors):
        d = df[df["executor"] == ex]
        w = 2 if (d["workers"] == 2).any() else int(d["workers"].max())
        serial = d[d["label"] == "Serial"]
        d = pd.concat([serial, d[(d["workers"] == w) & (d["label"] != "Serial")]])
        for col, (metric, label) in enumerate((("tps", "TPS"), ("efficiency", "efficiency"),
                                               ("conflict_rate", "conflict rate"))):
            ax = axes[row][col]
            pivot = d.pivot_table(index="workload", columns="label", values=metric,
                                  aggfunc="max", sort=False)
            if metric != "tps" and "Serial" in pivot.columns:
                pivot = pivot.drop(columns="Serial")
            n = max(1, len(pivot.columns))
            width = 0.8 / n
            for i, lbl in enumerate(pivot.columns):
                ax.bar([x + i * width for x in range(len(pivot))], pivot[lbl], width,
                       label=str(lbl), color=colors.get(lbl))
            ax.set_xticks([x + 0.4 - width / 2 for x in range(len(pivot))], list(pivot.index),
                          rotation=30, fontsize=7, ha="right")
            ax.set_title(f"{ex}: {label} ({w} workers)", fontsize=9)
            ax.grid(alpha=0.3, axis="y")
            if row == 0 and col == 0:
                ax.legend(fontsize=6)
    return _save(fig, out_dir, "scheduler.png", "Scheduler: TPS, efficiency, conflict rate per "
                 "strategy", "grouped bars per workload and strategy")


# -- trends -------------------------------------------------------------------------------------

def trend(metric: str, ids: Sequence[str], history: Sequence[float], value: float | None,
          center: float | None, allowed: float | None, out_dir: Path, name: str) -> Plot:
    """A metric over the previous runs and this one, with the band it may move in unflagged."""
    fig = _figure(5, 2.4)
    ax = fig.subplots()
    xs = list(range(len(history)))
    ax.plot(xs, history, "o-", ms=3, label="previous runs")
    if value is not None:
        ax.plot([len(history)], [value], "o", color="#d62828", ms=6, label="this run")
    if center is not None and allowed is not None:
        ax.axhspan(center - allowed, center + allowed, color="#2a9d8f", alpha=0.15,
                   label="no-regression band")
        ax.axhline(center, color="#2a9d8f", lw=0.8)
    labels = [*(list(ids) if len(ids) == len(history) else [""] * len(history)), "this run"]
    ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=6, ha="right")
    ax.set_title(metric, fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    return _save(fig, out_dir, name, metric, f"{metric} over the previous runs and this one")


def index_trends(runs: Sequence[tuple[str, dict[str, float]]], metrics: Sequence[str],
                 out_dir: Path, name: str, title: str) -> Plot | None:
    """Small multiples: each metric over the runs (oldest first)."""
    metrics = [m for m in metrics if sum(m in v for _, v in runs) >= 2]
    if not metrics:
        return None  # a trend needs two runs
    cols = 4
    rows = math.ceil(len(metrics) / cols)
    fig = _figure(11, 2.1 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(ax for row in axes for ax in row):
        if i >= len(metrics):
            ax.set_axis_off()
            continue
        m = metrics[i]
        xs = [j for j, (_, v) in enumerate(runs) if m in v]
        ax.plot(xs, [runs[j][1][m] for j in xs], "o-", ms=3)
        ax.set_title(m, fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_xticks(xs, [runs[j][0][-15:] for j in xs], rotation=40, fontsize=5, ha="right")
        ax.grid(alpha=0.3)
    return _save(fig, out_dir, name, title, "key metrics over the runs")

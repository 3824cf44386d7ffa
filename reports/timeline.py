"""The timeline of one scenario case, in the spirit of Jepsen's ``timeline.html``: one time
axis with every client's connections, closes, reconnects and handshake failures, the fault
windows, nginx's error-log lines and the fault proxy's events; beside it the expectations with
their observed values and the same events as a table. ``dubhe-lab replay`` writes it for each
incident replay (docs/incidents.md).

:func:`render` reads the case's files only — ``result.json`` and its histories, ``replay.json``
when the case is a replay, and the case's slice of the lab's nginx error log (the record's byte
offsets) — and writes ``timeline.png`` and ``timeline.html`` beside ``result.json``.

Times are seconds since the case's first client event (else its first fault, else its start).
nginx's error log carries local time to the second: its lines are placed with this machine's
time zone, so render on the machine (or in the time zone) the case ran in.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from reports import scenarios as sc
from reports.files import Problems, number, read_json

TEMPLATES = Path(__file__).with_name("templates")
#: Clients drawn as rows at most (the rest are counted in the title).
MAX_ROWS = 40
#: Events listed in the page's table at most.
MAX_EVENTS = 600
_FAULT_COLORS = ["#f4a261", "#e76f51", "#e9c46a", "#90be6d", "#b5838d", "#8ecae6"]
_CLOSE_COLORS = {1006: "#d62828", 1000: "#6c757d", 1001: "#6c757d", 1008: "#f77f00",
                 1011: "#7b2cbf", 1012: "#7b2cbf"}

#: nginx error-log messages worth a label (a copy of the common ones of
#: lab.checkers.nginx_logs.SIGNATURES: reports never import the lab).
NGINX_KINDS: tuple[tuple[str, str], ...] = (
    ("ws upstream timeout", r"upstream timed out \(110: [^)]*\) while proxying upgraded"),
    ("upstream timeout", r"upstream timed out \(110"),
    ("limit_conn", r'limiting connections by zone "'),
    ("limit_req", r"limiting requests, excess"),
    ("worker_connections", r"worker_connections are not enough"),
    ("SSL_do_handshake failed", r"SSL_do_handshake\(\) failed"),
    ("peer closed in SSL handshake", r"peer closed connection in SSL handshake"),
    ("plain HTTP to HTTPS port", r"client sent plain HTTP request to HTTPS port"),
    ("upstream refused", r"connect\(\) failed \(111"),
    ("upstream closed early", r"upstream prematurely closed connection"),
)
_ERROR_LINE = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*)$")


@dataclass(frozen=True)
class Event:
    """One point of the timeline: ``t`` seconds since the origin, on ``row``."""

    t: float
    row: str
    what: str  # marker class: open, close, handshake, reconnect, keepalive, fatal, ...
    label: str
    code: int | None = None
    #: How long the event may have lasted or how uncertain its time is (nginx: 1 s).
    width: float = 0.0


@dataclass
class Timeline:
    """What :func:`render` gives back: the two files it wrote, and what it could not read."""

    png: Path | None
    html: Path
    rows: int
    events: int
    problems: list[str] = field(default_factory=list)


# -- reading -------------------------------------------------------------------------------------

def nginx_events(lines: Iterable[str], origin: float) -> list[Event]:
    """nginx error-log lines (not ``notice``: start-up chatter) as events, one per second and
    kind (``x N`` when several): nginx logs local time to the second, so each event spans its
    second (``width`` 1)."""
    counts: dict[tuple[float, str], int] = {}
    for line in lines:
        m = _ERROR_LINE.match(line.rstrip("\n"))
        if m is None or m.group(2) in ("notice", "debug"):
            continue
        t = time.mktime(time.strptime(m.group(1), "%Y/%m/%d %H:%M:%S"))
        msg = m.group(3)
        kind = next((k for k, rx in NGINX_KINDS if re.search(rx, msg)), None)
        if kind is None and m.group(2) == "info":
            continue  # keepalive closes and the like: only the known info lines matter
        label = f"[{m.group(2)}] {kind or msg.split(',')[0][:60]}"
        counts[(t, label)] = counts.get((t, label), 0) + 1
    return [Event(t - origin, "nginx", "nginx", label + (f" x {n}" if n > 1 else ""), width=1.0)
            for (t, label), n in sorted(counts.items())]


def client_events(history: Sequence[Mapping[str, Any]], origin: float) -> list[Event]:
    """The client events the timeline draws (deliveries become ticks)."""
    out = []
    for e in history:
        t = number(e.get("wall"))
        if t is None:
            continue
        row, ev, x = str(e.get("client", "?")), e.get("ev"), t - origin
        if ev == "open":
            out.append(Event(x, row, "open", f"open #{e.get('conn')}"))
        elif ev == "close" and not e.get("stop"):
            n = number(e.get("code"))
            code = None if n is None else int(n)
            out.append(Event(x, row, "close", f"close {code} by {e.get('by', '?')}"
                             + (f": {e['reason']}" if e.get("reason") else ""), code))
        elif ev == "close":
            out.append(Event(x, row, "stop", "closed by the client's stop"))
        elif ev == "handshake" and e.get("ok"):
            out.append(Event(x, row, "handshake_ok", f"handshake {e.get('status', 'ok')}"))
        elif ev == "handshake" and not e.get("ok"):
            status = e.get("status") or e.get("kind")
            out.append(Event(x, row, "handshake", f"handshake failed: {status}"
                             + (f" {e['exception']}" if e.get("exception") else "")))
        elif ev == "reconnected":
            out.append(Event(x, row, "reconnect", f"resubscribed after {e.get('down_s')} s"))
        elif ev == "keepalive_timeout":
            out.append(Event(x, row, "keepalive", "no pong: keepalive timeout"))
        elif ev == "fatal":
            out.append(Event(x, row, "fatal", f"gave up: {str(e.get('message', ''))[:80]}"))
        elif ev == "deliver":
            out.append(Event(x, row, "deliver", f"head {e.get('n')} ({e.get('src')})"))
        elif ev == "request" and e.get("ok") is False:
            out.append(Event(x, row, "request", f"{e.get('method')} failed: "
                             f"{e.get('error') or e.get('status') or e.get('code')}"))
    return out


def proxy_events(events: Sequence[Mapping[str, Any]], origin: float) -> list[Event]:
    out = []
    for e in events:
        t = number(e.get("time"))
        name = str(e.get("event", ""))
        if t is None or name in ("toxic_added", "toxic_removed", "toxic_updated"):
            continue
        who = e.get("toxic") or e.get("proxy") or ""
        out.append(Event(t - origin, "proxy", "proxy", f"{name} {who}".strip()))
    return out


def fault_rows(windows: Sequence[Mapping[str, Any]], origin: float, end: float
               ) -> list[tuple[str, float, float, bool]]:
    """(label, on, off, still on at the end) per fault window, seconds since ``origin``."""
    out = []
    for w in windows:
        on = number(w.get("on"))
        if on is None:
            continue
        off = number(w.get("off"))
        label = str(w.get("fault") or "fault")
        if w.get("component"):
            label = f"{w.get('action')} {w.get('component')}"
        elif w.get("link"):
            label = f"{w.get('toxic')} on {w.get('link')}"
        out.append((label, on - origin, (off if off is not None else end) - origin, off is None))
    return out


def origin_of(record: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> float:
    walls = [t for e in history if (t := number(e.get("wall"))) is not None]
    if walls:
        return min(walls)
    ons = [t for w in record.get("fault_windows") or [] if isinstance(w, dict)
           and (t := number(w.get("on"))) is not None]
    return min(ons) if ons else float(record["start_unix"])


# -- drawing -------------------------------------------------------------------------------------

def _marker(ev: Event) -> tuple[str, str, float, str]:
    """(matplotlib marker, color, size, legend label) of an event."""
    if ev.what == "close":
        return "x", _CLOSE_COLORS.get(ev.code or 0, "#212529"), 7, f"close {ev.code}"
    return {
        "handshake": ("v", "#9d0208", 6, "handshake failed"),
        "handshake_ok": (".", "#2a9d8f", 4, "handshake succeeded"),
        "reconnect": ("^", "#1d4ed8", 6, "resubscribed"),
        "keepalive": ("o", "#f77f00", 5, "keepalive timeout"),
        "fatal": ("X", "#000000", 9, "client gave up"),
        "request": (".", "#9d0208", 5, "request failed"),
        "nginx": ("d", "#6a040f", 6, "nginx error-log lines (to the second)"),
        "proxy": ("|", "#6f4518", 9, "fault proxy event"),
        "stop": ("|", "#adb5bd", 7, "client stopped"),
    }.get(ev.what, ("|", "#adb5bd", 4, ev.what))


def draw(path: Path, title: str, events: Sequence[Event],
         faults: Sequence[tuple[str, float, float, bool]], clients: Sequence[str],
         end: float, lag: Sequence[tuple[float, float]] = ()) -> None:
    """The timeline figure: a row per client (connections as bars), rows for the faults, nginx
    and the proxy; fault windows shaded across every row; optionally the node's L1 lag below."""
    shown = list(clients[:MAX_ROWS])
    rows = ["faults", "proxy", "nginx", *shown]
    y = {r: i for i, r in enumerate(rows)}
    height = 1.4 + 0.26 * len(rows) + (1.6 if lag else 0)
    fig = Figure(figsize=(11, min(height, 30)), layout="constrained")
    if lag:
        ax, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=[max(3, len(rows) * 0.26), 1.6])
    else:
        ax, ax2 = fig.subplots(), None
    colors: dict[str, str] = {}
    for label, on, off, open_ended in faults:
        color = colors.setdefault(label, _FAULT_COLORS[len(colors) % len(_FAULT_COLORS)])
        for a in (ax, ax2):
            if a is not None:
                a.axvspan(on, max(off, on + 0.03), color=color, alpha=0.18, lw=0)
        ax.broken_barh([(on, max(off - on, 0.03))], (y["faults"] - 0.3, 0.6), color=color,
                       alpha=0.9)
        ax.text(on, y["faults"] + 0.38, label + (" (until the end)" if open_ended else ""),
                fontsize=7, va="bottom")
    _connections(ax, events, y)
    ticks = [e for e in events if e.what == "deliver" and e.row in y]
    if ticks:
        ax.plot([e.t for e in ticks], [y[e.row] for e in ticks], "|", color="#95d5b2", ms=4,
                alpha=0.8, zorder=2)
    handles: dict[str, Line2D | Patch] = {}
    texts: dict[tuple[str, float], list[str]] = {}
    for e in events:
        if e.what in ("deliver", "open") or e.row not in y:
            continue
        marker, color, size, label = _marker(e)
        if e.width:  # known to the second: a bar over it, the marker in its middle
            ax.broken_barh([(e.t, e.width)], (y[e.row] - 0.2, 0.4), color=color, alpha=0.2)
            texts.setdefault((e.row, e.t), []).append(e.label)
        ax.plot([e.t + e.width / 2], [y[e.row]], marker, color=color, ms=size, zorder=4,
                mew=1.5 if marker in "x|" else 1)
        handles.setdefault(label, Line2D([], [], marker=marker, color=color, ls="", ms=size))
    if len(texts) <= 40:
        for (row, t), labels in texts.items():
            ax.text(t, y[row] - 0.25, "; ".join(labels), fontsize=6, va="bottom",
                    color="#6a040f")
    if any(e.what == "open" for e in events):
        handles["connection open"] = Line2D([], [], color="#2a9d8f", lw=3)
    if ticks:
        handles["head delivered"] = Line2D([], [], marker="|", color="#95d5b2", ls="", ms=6)
    for label, color in colors.items():
        handles[label] = Patch(color=color, alpha=0.5)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.9)
    ax.set_xlim(min([0.0, *(e.t for e in events)]) - 0.1, end + 0.1)
    ax.grid(alpha=0.25, axis="x")
    more = len(clients) - len(shown)
    ax.set_title(title + (f" ({more} more clients not drawn)" if more > 0 else ""), fontsize=10,
                 loc="left")
    ax.legend(list(handles.values()), list(handles), fontsize=7, loc="upper left",
              bbox_to_anchor=(1.005, 1.0), borderaxespad=0)
    if ax2 is not None:
        ax2.plot([t for t, _ in lag], [v for _, v in lag], color="#1d3557", lw=1.2)
        ax2.set_ylabel("L1 lag\n(blocks)", fontsize=8)
        ax2.grid(alpha=0.25)
        ax2.set_xlabel("seconds")
    else:
        ax.set_xlabel("seconds")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=96, pil_kwargs={"compress_level": 1})


def _connections(ax: Axes, events: Sequence[Event], y: Mapping[str, int]) -> None:
    """A bar per connection, from its open to its close (or the client's stop)."""
    opened: dict[str, float] = {}
    bars: dict[str, list[tuple[float, float]]] = {}
    last: dict[str, float] = {}
    for e in sorted(events, key=lambda e: e.t):
        last[e.row] = e.t
        if e.what == "open":
            opened[e.row] = e.t
        elif e.what in ("close", "stop", "keepalive", "fatal") and e.row in opened:
            t0 = opened.pop(e.row)
            bars.setdefault(e.row, []).append((t0, max(e.t - t0, 0.02)))
    for row, t0 in opened.items():  # still open when the history ends
        bars.setdefault(row, []).append((t0, max(last.get(row, t0) - t0, 0.02)))
    for row, spans in bars.items():
        if row in y:
            ax.broken_barh(spans, (y[row] - 0.12, 0.24), color="#2a9d8f", zorder=3)


# -- the page ------------------------------------------------------------------------------------

def render(case_dir: Path, *, run_dir: Path | None = None) -> Timeline:
    """Write ``timeline.png`` and ``timeline.html`` for the case whose ``result.json`` is in
    ``case_dir``. ``run_dir``: where a moved lab run directory is looked for. A missing or
    unreadable input is named on the page (and in :attr:`Timeline.problems`), never raised;
    a record that cannot be read at all gives a page saying so."""
    problems = Problems(case_dir)
    case = sc.load_case(case_dir / "result.json", run_dir or case_dir.parent.parent, problems)
    replay = read_json(case_dir / "replay.json", problems, "timeline", missing_ok=True)
    page = case_dir / "timeline.html"
    if case is None:
        _write(page, _env().get_template("timeline.html.j2").render(
            css=(TEMPLATES / "base.css").read_text(), r=None, replay=None, verdict="",
            problems=[p.line() for p in problems], expectations=[], faults=[], events=[],
            png=None, cut=0, origin_iso=""))
        return Timeline(None, page, 0, 0, [p.line() for p in problems])
    r = case.record
    history = [] if case.history is None else [
        {k: v for k, v in row.items() if v == v} for row in case.history.to_dict("records")]
    origin = origin_of(r, history)
    end = max(float(r["end_unix"]), origin) - origin
    events = client_events(history, origin)
    events += proxy_events([e for e in r["fault_events"] if isinstance(e, dict)], origin)
    events += nginx_events(_nginx_lines(case, problems), origin)
    events.sort(key=lambda e: e.t)
    faults = fault_rows(case.fault_windows, origin, float(r["end_unix"]))
    clients = sorted({e.row for e in events if e.row not in ("nginx", "proxy")},
                     key=_natural)
    end = max([min(end, max((e.t for e in events), default=end) + 0.5),
               *(off for _, _, off, _ in faults)])
    lag = _l1_lag(r, origin)
    png: Path | None = case_dir / "timeline.png"
    mode = replay.get("mode") if isinstance(replay, dict) else None
    verdict = _verdict(bool(r["pass"]), mode)
    title = f"{r['name']}: {verdict}"
    try:
        assert png is not None
        draw(png, title, events, faults, clients, end, lag)
    except Exception as exc:  # a drawing bug must not hide the page
        problems.add("timeline", png or case_dir, f"could not draw: {type(exc).__name__}: {exc}")
        png = None
    listed = [e for e in events if e.what != "deliver"]
    rows = [{"t": f"{e.t:.3f}", "row": e.row, "what": e.label} for e in listed[:MAX_EVENTS]]
    rows += [{"t": f"{on:.3f}", "row": "faults", "what": f"on: {label}"}
             for label, on, _, _ in faults]
    rows += [{"t": f"{off:.3f}", "row": "faults", "what": f"off: {label}"}
             for label, _, off, still in faults if not still]
    rows.sort(key=lambda x: float(x["t"]))
    text = _env().get_template("timeline.html.j2").render(
        css=(TEMPLATES / "base.css").read_text(), r=r, replay=replay, verdict=verdict,
        problems=[p.line() for p in problems], expectations=case.expectations,
        faults=_fault_table(replay, faults), events=rows, png=png.name if png else None,
        cut=max(0, len(listed) - MAX_EVENTS),
        origin_iso=dt.datetime.fromtimestamp(origin, dt.UTC).isoformat(timespec="milliseconds"))
    _write(page, text)
    return Timeline(png, page, len(clients), len(events), [p.line() for p in problems])


def _verdict(passed: bool, mode: Any) -> str:
    if mode == "repro":
        return "reproduced" if passed else "NOT reproduced"
    if mode == "fixed":
        return "the fix holds" if passed else "the fix does NOT hold"
    return "pass" if passed else "FAIL"


def _fault_table(replay: Any, faults: Sequence[tuple[str, float, float, bool]]
                 ) -> list[dict[str, str]]:
    planned = replay.get("timeline") if isinstance(replay, dict) else None
    out = []
    for i, (label, on, off, still) in enumerate(faults):
        plan = planned[i] if isinstance(planned, list) and i < len(planned) else {}
        plan = plan if isinstance(plan, dict) else {}
        for_s = number(plan.get("for_s"))
        out.append({"fault": label, "planned_at": _num(plan.get("at_s")),
                    "planned_for": "" if for_s is None else f"{for_s:g}",
                    "on": f"{on:.3f}", "off": "(end)" if still else f"{off:.3f}"})
    return out


def _num(v: Any) -> str:
    n = number(v)
    return "" if n is None else f"{n:g}"


def _nginx_lines(case: sc.Case, problems: Problems) -> list[str]:
    span = case.record["logs"].get("nginx_error")
    if not isinstance(span, dict) or case.lab_dir is None:
        return []
    path = case.lab_dir / str(span.get("path", ""))
    begin, stop = span.get("begin"), span.get("end")
    if not isinstance(begin, int) or not isinstance(stop, int):
        return []
    try:
        with path.open("rb") as f:
            f.seek(begin)
            return f.read(max(0, stop - begin)).decode(errors="replace").splitlines()
    except OSError as exc:
        problems.add("timeline", path, f"cannot read the nginx error log: {exc}")
        return []


def _l1_lag(record: Mapping[str, Any], origin: float) -> list[tuple[float, float]]:
    """The node's L1 head lag (mock head - node's head) from an ``l1_failover`` case's samples."""
    details = record.get("details")
    samples = details.get("samples") if isinstance(details, dict) else None
    out = []
    for s in samples if isinstance(samples, list) else []:
        if not isinstance(s, dict):
            continue
        t, mock, head = number(s.get("t")), number(s.get("mock")), number(s.get("head"))
        if t is not None and mock is not None and head is not None:
            out.append((t - origin, mock - head))
    return out


def _natural(name: str) -> tuple[str, int]:
    m = re.match(r"^(.*?)-?(\d+)$", name)
    return (m.group(1), int(m.group(2))) if m else (name, -1)


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                              autoescape=jinja2.select_autoescape(["html", "j2"]),
                              undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


__all__ = ["MAX_EVENTS", "MAX_ROWS", "NGINX_KINDS", "Event", "Timeline", "client_events",
           "draw", "fault_rows", "nginx_events", "origin_of", "proxy_events", "render"]

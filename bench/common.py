"""Helpers shared by benchmark commands: percentiles, tables, subprocess servers, progress, and
the machine-readable result every command writes with ``--json FILE`` (:class:`BenchResult`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from lab.orchestrate.node_proc import NodeProcess, default_config


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    i = min(len(s) - 1, max(0, round(q * (len(s) - 1))))
    return s[i]


def progress(msg: str) -> None:
    """A progress line on stderr (stdout carries the results), in the style every tool uses
    (docs/cli.md): ``== stage`` lines pass as they are, anything else is an indented detail."""
    line = msg if msg.startswith(("== ", "   ")) else f"   {msg}"
    print(line, file=sys.stderr, flush=True)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def verdict(ok: bool | None) -> str:
    """``PASS``, ``MISS``, or ``not judged`` (``None``: the run was too small for the target)."""
    return "not judged" if ok is None else "PASS" if ok else "MISS"


# -- the machine-readable result (--json FILE) ------------------------------------------------

#: Version of the JSON every ``dubhe-bench`` command writes (docs/reports.md).
JSON_VERSION = 1
Direction = Literal["lower", "higher"]
_CORE_KEYS = frozenset({"bench", "version", "started", "ended", "argv", "figures", "targets",
                        "exit_code"})


@dataclass
class Target:
    """A performance target: ``value`` measured against ``target`` (``direction``: which way
    is better). ``passed`` is ``None`` when the run was not judged (``note`` says why)."""

    target: float
    value: float | None
    direction: Direction
    unit: str
    passed: bool | None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target, "value": _finite(self.value),
                               "pass": self.passed, "direction": self.direction,
                               "unit": self.unit, "judged": self.passed is not None}
        if self.note:
            out["note"] = self.note
        return out


class BenchResult:
    """What one benchmark run measured, written as JSON by ``--json FILE``::

        {"bench": name, "version": 1, "started": unix, "ended": unix, "argv": [...],
         "figures": {name: number | null},
         "targets": {name: {"target", "value", "pass": bool | null, "direction": "lower" |
                            "higher", "unit", "judged": bool, "note"?}},
         "exit_code": int, ...bench-specific extras}

    Every target's value is also a figure of the same name. NaN and infinities are written as
    ``null`` (JSON has neither). The exit code is 1 when a judged target missed, else 0.
    """

    def __init__(self, bench: str, argv: Sequence[str]) -> None:
        self.bench = bench
        self.argv = list(argv)
        self.started = time.time()
        self.figures: dict[str, float | None] = {}
        self.targets: dict[str, Target] = {}
        self.extras: dict[str, Any] = {}

    def figure(self, name: str, value: float | None) -> None:
        """Record a figure (a number; ``None``/NaN: not measured)."""
        self.figures[name] = _finite(value)

    def target(self, name: str, *, target: float, value: float | None, direction: Direction,
               unit: str, passed: bool | None = None, judged: bool = True,
               note: str = "") -> bool | None:
        """Record a target and its figure; returns the verdict (``None`` when not judged).

        ``passed`` defaults to ``value <= target`` (lower is better) or ``value >= target``
        (higher); give it when the condition is strict or compound. ``judged=False`` (with a
        ``note`` saying why) when the options shrank the run below what the target assumes.
        A missing value (``None``/NaN) misses a judged target."""
        v = _finite(value)
        if not judged:
            verdict_: bool | None = None
        elif passed is not None:
            verdict_ = bool(passed)
        elif v is None:
            verdict_ = False
        else:
            verdict_ = v <= target if direction == "lower" else v >= target
        self.targets[name] = Target(target, v, direction, unit, verdict_, note)
        self.figures[name] = v
        return verdict_

    def extra(self, **values: Any) -> None:
        """Bench-specific keys beside the common ones (tables, samples, cells)."""
        clash = set(values) & _CORE_KEYS
        if clash:
            raise ValueError(f"extra keys clash with the common ones: {sorted(clash)}")
        self.extras.update(values)

    @property
    def missed(self) -> list[str]:
        """Names of the judged targets that missed."""
        return [n for n, t in self.targets.items() if t.passed is False]

    @property
    def not_judged(self) -> list[str]:
        return [n for n, t in self.targets.items() if t.passed is None]

    def exit_code(self) -> int:
        """1 when a judged target missed (CI gates on it), else 0."""
        return 1 if self.missed else 0

    def as_dict(self, exit_code: int | None = None) -> dict[str, Any]:
        return {
            "bench": self.bench, "version": JSON_VERSION, "started": round(self.started, 3),
            "ended": round(time.time(), 3), "argv": self.argv,
            "figures": dict(self.figures),
            "targets": {n: t.as_dict() for n, t in self.targets.items()},
            "exit_code": self.exit_code() if exit_code is None else exit_code,
            **_clean(self.extras),
        }

    def write(self, path: Path | str | None, exit_code: int | None = None) -> None:
        """Write the JSON whole (a temporary file, then renamed); nothing when ``path`` is None."""
        if path is None:
            return
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.as_dict(exit_code), indent=2, allow_nan=False,
                                  default=str) + "\n")
        tmp.replace(path)

    def print_targets(self, indent: str = "  ") -> None:
        """One line per target: verdict, name, value vs target (and why, when not judged)."""
        for name, t in self.targets.items():
            op = "<=" if t.direction == "lower" else ">="
            value = "n/a" if t.value is None else f"{t.value:,.4g}"
            why = f" ({t.note})" if t.note else ""
            print(f"{indent}{verdict(t.passed):<10} {name}: {value} {t.unit} "
                  f"(target {op} {t.target:,.4g} {t.unit}){why}")


_RST = [(re.compile(r":[a-z]+:`~?([^`]*)`"), r"\1"), (re.compile(r"``([^`]*)``"), r"\1"),
        (re.compile(r"`([^`]*)`"), r"\1")]


def plain(text: str) -> str:
    """``text`` without reStructuredText markup (roles, double and single backticks)."""
    for pattern, repl in _RST:
        text = pattern.sub(repl, text)
    return text


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default (``(default: 3)``) unless it says it already
    or there is none; texts are plain (no reST backticks)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = re.sub(r"\(default ([^):]+)\)", r"(default: \1)", plain(action.help or ""))
        default = action.default
        if (action.option_strings and "default" not in text and default is not None
                and default is not False and default is not argparse.SUPPRESS):
            shown = f"{default:,}" if isinstance(default, int) and not isinstance(
                default, bool) and abs(default) >= 10_000 else str(default)
            text = f"{text} (default: {shown.replace('%', '%%')})".strip()
        return text


EPILOG = ("Prints what it measured, the baseline measured in the same run and the ratio, then a "
          "verdict per target: PASS, MISS, or 'not judged' (with the reason) when the options "
          "shrink the run below what the target assumes. Exit status: 0 no judged target "
          "missed, 1 a target was missed (CI can gate on it), 2 bad options, 130 interrupted "
          "(Ctrl-C). Progress goes to stderr, results to stdout (docs/cli.md).")


def bench_parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of ``dubhe-bench NAME``: prog, the module docstring's first paragraph
    as plain sentences, defaults shown, the shared epilog (verdicts, exit status)."""
    first = (doc or "").strip().split("\n\n")[0]
    description = " ".join(plain(first).split())
    return argparse.ArgumentParser(prog=f"dubhe-bench {name}", description=description,
                                   epilog=EPILOG, formatter_class=_HelpFormatter)


def output_file(value: str) -> Path:
    """An argparse type for a file the command will write: its directory must exist and be
    writable now, not only when the run (minutes later) is done."""
    path = Path(value)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is a directory; give a file name")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{value}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"{value}: directory {parent} is not writable")
    return path


def add_json_option(ap: argparse.ArgumentParser) -> None:
    """The ``--json FILE`` option every ``dubhe-bench`` command takes."""
    ap.add_argument("--json", type=output_file, metavar="FILE",
                    help="also write the figures and targets as JSON to FILE (the schema every "
                    "dubhe-bench command shares: docs/reports.md)")


def _finite(v: float | None) -> float | None:
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _clean(o: Any) -> Any:
    """JSON-able data with NaN/infinities as None (recursively)."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_clean(v) for v in o]
    return o


class NodeServer(NodeProcess):
    """``dubhe-node`` in a subprocess with a temporary config (loopback, OS-chosen ports), started
    on construction; ``stop()`` also removes the temporary directory. :meth:`stop_all` stops the
    ones still running (an interrupted benchmark)."""

    _live: ClassVar[set[NodeServer]] = set()

    def __init__(self, sections: dict[str, dict[str, Any]]) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="dubhe-bench-")
        wd = Path(self.tmp.name)
        super().__init__(wd, default_config(wd, **sections))
        NodeServer._live.add(self)
        self.start()

    @classmethod
    def stop_all(cls) -> None:
        for node in list(cls._live):
            with contextlib.suppress(Exception):
                node.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> int:
        NodeServer._live.discard(self)
        rc = super().stop(sig, timeout_s)
        self.tmp.cleanup()
        return rc

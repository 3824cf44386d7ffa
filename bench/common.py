"""Helpers shared by benchmark commands: percentiles, tables, subprocess servers, progress."""

from __future__ import annotations

import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab.orchestrate.node_proc import NodeProcess, default_config


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    i = min(len(s) - 1, max(0, round(q * (len(s) - 1))))
    return s[i]


def progress(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


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


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


class NodeServer(NodeProcess):
    """``dubhe-node`` in a subprocess with a temporary config (loopback, OS-chosen ports), started
    on construction; ``stop()`` also removes the temporary directory."""

    def __init__(self, sections: dict[str, dict[str, Any]]) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="dubhe-bench-")
        wd = Path(self.tmp.name)
        super().__init__(wd, default_config(wd, **sections))
        self.start()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> int:
        rc = super().stop(sig, timeout_s)
        self.tmp.cleanup()
        return rc

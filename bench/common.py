"""Helpers shared by benchmark commands: percentiles, tables, subprocess servers, progress."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tomli_w

_READY = re.compile(r"dubhe-node ready rpc=(\S+) ws=(\S+)")


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


class NodeServer:
    """``dubhe-node`` in a subprocess with a temporary config (loopback, OS-chosen ports)."""

    def __init__(self, sections: dict[str, dict[str, Any]]) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="dubhe-bench-")
        wd = Path(self.tmp.name)
        cfg: dict[str, dict[str, Any]] = {
            "api": {"rpc_bind": "127.0.0.1:0", "ws_bind": "127.0.0.1:0"},
            "state": {"backend": "rocksdb", "path": str(wd / "data")},
            "security": {"audit_log": str(wd / "audit.jsonl")},
        }
        for k, v in sections.items():
            cfg.setdefault(k, {}).update(v)
        (wd / "config.toml").write_bytes(tomli_w.dumps(cfg).encode())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node", "--config", str(wd / "config.toml")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ},
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        self.rpc = self.ws = ""
        lines = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = _READY.search(line)
            if m:
                self.rpc, self.ws = m.group(1), m.group(2)
                return
        self.stop()
        raise RuntimeError("node did not start:\n" + "".join(lines))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.tmp.cleanup()

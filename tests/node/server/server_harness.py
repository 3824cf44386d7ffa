"""Runs ``dubhe-node`` as a real subprocess on OS-chosen loopback ports (used by conftest.py and tests)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import tomli_w

from lab.orchestrate.node_proc import default_config

ADMIN_TOKEN = "test-admin-token"
_READY = re.compile(r"dubhe-node ready rpc=(\S+) ws=(\S+)")


class RunningNode:
    def __init__(self, workdir: Path, config: dict[str, Any]) -> None:
        self.workdir = workdir
        self.config = config
        self.proc: subprocess.Popen[str] | None = None
        self.rpc = ""
        self.ws = ""
        self.lines: list[str] = []

    def start(self, timeout_s: float = 20.0) -> RunningNode:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg_path = self.workdir / "config.toml"
        cfg_path.write_bytes(tomli_w.dumps(self.config).encode())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node", "--config", str(cfg_path)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ},
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("node exited:\n" + "".join(self.lines))
            self.lines.append(line)
            m = _READY.search(line)
            if m:
                self.rpc, self.ws = m.group(1), m.group(2)
                return self
        raise RuntimeError("node not ready:\n" + "".join(self.lines))

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        if self.proc.stdout:
            self.lines.extend(self.proc.stdout.readlines())
        return rc

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


def make_config(workdir: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    base = {"security": {"admin_token": ADMIN_TOKEN, "audit_log": str(workdir / "audit.jsonl")}}
    for k, v in sections.items():
        base.setdefault(k, {}).update(v)
    return default_config(workdir, **base)

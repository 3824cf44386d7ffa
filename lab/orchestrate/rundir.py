"""A lab run's directory: its layout, ``lab.json``, the pid file, and cleaning up after a lab
whose owner died.

Layout (``reports/runs/<run-id>/`` by default; ``reports/runs/latest`` links to the newest)::

    lab.json            the topology: components, ports, links, endpoints, seed, state
    lab.pid             while up: the owner process and every component's pid (JSON)
    logs/<component>.log
    node/config.toml    node/data/ (RocksDB)   node/audit.jsonl
    nginx/nginx.conf    nginx/error.log   nginx/access.log   nginx/tmp/
    tls/ca.pem          the run's CA (clients trust it)   tls/server.pem   tls/server.key

Files are written whole (to a temporary name, then renamed), so a reader never sees half a
``lab.json`` and a killed lab never leaves one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from lab.orchestrate.errors import EnvironmentProblem

#: Where runs go unless told otherwise (relative to the working directory).
DEFAULT_ROOT = Path("reports") / "runs"
LAB_JSON = "lab.json"
PID_FILE = "lab.pid"


def new_run_id(name: str = "lab") -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{name}-{secrets.token_hex(2)}"


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


@dataclass(frozen=True)
class RunDir:
    """Paths of one run; :meth:`create` makes the directory."""

    path: Path

    @classmethod
    def new(cls, root: Path | None = None, name: str = "lab", path: Path | None = None
            ) -> RunDir:
        """A run directory's paths (nothing created yet: see :meth:`make`)."""
        if path is None:
            path = (root or DEFAULT_ROOT).resolve() / new_run_id(name)
        return cls(path.resolve())

    @classmethod
    def create(cls, root: Path | None = None, name: str = "lab", path: Path | None = None
               ) -> RunDir:
        return cls.new(root, name, path).make()

    def make(self) -> RunDir:
        """Create the directory and its subfolders, and point ``latest`` at it."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            for sub in ("logs", "node", "nginx", "tls"):
                (self.path / sub).mkdir(exist_ok=True)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot create the run directory {self.path}: "
                                     f"{exc.strerror or exc}") from None
        self._link_latest()
        return self

    def _link_latest(self) -> None:
        latest = self.path.parent / "latest"
        with contextlib.suppress(OSError):
            tmp = self.path.parent / f".latest.{os.getpid()}"
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.path.name)
            os.replace(tmp, latest)

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def lab_json(self) -> Path:
        return self.path / LAB_JSON

    @property
    def pid_file(self) -> Path:
        return self.path / PID_FILE

    def remove_temp(self) -> None:
        """Delete what only a running lab needs (nginx's temp dirs); logs and data stay."""
        shutil.rmtree(self.path / "nginx" / "tmp", ignore_errors=True)

    def log(self, component: str) -> Path:
        return self.path / "logs" / f"{component}.log"

    def read_lab_json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.lab_json.read_text())
        except FileNotFoundError:
            raise EnvironmentProblem(f"{self.path} is not a lab run directory "
                                     f"(no {LAB_JSON})") from None
        except (OSError, ValueError) as exc:
            raise EnvironmentProblem(f"cannot read {self.lab_json}: {exc}") from None
        if not isinstance(data, dict):
            raise EnvironmentProblem(f"{self.lab_json} is not a lab description")
        return data


def resolve_run_dir(run_dir: Path | None, root: Path | None = None) -> RunDir:
    """``run_dir`` itself, or the newest run under ``root`` (its ``latest`` link)."""
    if run_dir is not None:
        return RunDir(run_dir.resolve())
    latest = (root or DEFAULT_ROOT) / "latest"
    if not latest.exists():
        raise EnvironmentProblem(f"no lab run found ({latest} does not exist); "
                                 "pass --run-dir or start one with 'dubhe-lab up'")
    return RunDir(latest.resolve())


# -- the pid file and cleaning up after a dead owner -----------------------------------------

def alive(pid: int, create_time: float) -> bool:
    """Is ``pid`` the same process that was recorded (not a recycled pid)?"""
    try:
        proc = psutil.Process(pid)
        same = abs(proc.create_time() - create_time) < 0.05
        return bool(same and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def read_pid_file(run: RunDir) -> dict[str, Any] | None:
    try:
        data = json.loads(run.pid_file.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def owner_alive(pid_data: dict[str, Any]) -> bool:
    owner = pid_data.get("owner") or {}
    return bool(owner) and alive(int(owner.get("pid", 0)), float(owner.get("create_time", 0)))


def _group_members(pgid: int, since: float) -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter(["pid", "create_time"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):  # gone meanwhile
            if os.getpgid(proc.pid) == pgid and proc.create_time() >= since - 0.05:
                out.append(proc)
    return out


def kill_recorded(pid: int, create_time: float, grace_s: float = 3.0) -> bool:
    """Stop a recorded component and its process group (SIGCONT, SIGTERM, then SIGKILL).
    Returns whether anything was still running."""
    members = _group_members(pid, create_time) if not alive(pid, create_time) else []
    if not alive(pid, create_time) and not members:
        return False
    for sig in (signal.SIGCONT, signal.SIGTERM):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and alive(pid, create_time):
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for proc in _group_members(pid, create_time):
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return True


def clean_dead_lab(run: RunDir) -> list[str]:
    """If ``run`` has a pid file whose owner is gone, stop what it left and remove the file.
    Returns the names of the components that were still running."""
    data = read_pid_file(run)
    if data is None or owner_alive(data):
        return []
    cleaned = []
    if data.get("backend") == "docker":
        # Containers are found by the run's label on the engine, not by pid.
        from lab.orchestrate.docker import clean_run

        cleaned = clean_run(run.run_id)
    else:
        for name, rec in (data.get("components") or {}).items():
            if kill_recorded(int(rec["pid"]), float(rec["create_time"])):
                cleaned.append(name)
    run.remove_temp()
    with contextlib.suppress(FileNotFoundError):
        run.pid_file.unlink()
    with contextlib.suppress(EnvironmentProblem):
        desc = run.read_lab_json()
        desc["state"] = "cleaned"
        desc["cleaned"] = {"at": time.time(), "by_pid": os.getpid(), "components": cleaned}
        write_json(run.lab_json, desc)
    return cleaned


def runs_with_pid_files(root: Path) -> Iterator[RunDir]:
    if not root.is_dir():
        return
    for pid_file in sorted(root.glob(f"*/{PID_FILE}")):
        yield RunDir(pid_file.parent.resolve())


def clean_dead_labs(root: Path) -> dict[str, list[str]]:
    """:func:`clean_dead_lab` for every run under ``root``; run id -> components stopped."""
    out = {}
    for run in runs_with_pid_files(root):
        data = read_pid_file(run)
        if data is not None and not owner_alive(data):
            out[run.run_id] = clean_dead_lab(run)
    return out


def prune_runs(root: Path, keep: int | None = None) -> list[str]:
    """Delete the oldest run directories under ``root`` beyond the newest ``keep``
    (``LAB_KEEP_RUNS``, default 200); runs with a live owner are never touched."""
    if keep is None:
        try:
            keep = int(os.environ.get("LAB_KEEP_RUNS", "200"))
        except ValueError:
            keep = 200
    if not root.is_dir():
        return []
    runs = sorted((p for p in root.iterdir() if p.is_dir() and not p.is_symlink()
                   and (p / LAB_JSON).exists()), key=lambda p: p.name)
    removed = []
    for path in runs[:max(0, len(runs) - keep)]:
        data = read_pid_file(RunDir(path))
        if data is not None and owner_alive(data):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return removed

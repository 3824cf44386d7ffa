"""The Docker engine: connecting with a one-line error, and the labels that find the lab's objects.

Everything the lab creates on the engine (containers, networks) carries :data:`LAB_LABEL` and
``dubhe.run=<run id>``; teardown and the cleaning after a killed owner find objects by label,
never by name. ``dubhe.owner=<pid>:<start time>`` names the process that owns a run, so a later
``up``/``down`` can tell a live lab of another user or worktree (left alone) from one whose owner
died (removed).
"""

from __future__ import annotations

import os
import re
from typing import Any

import psutil

from lab.orchestrate.errors import EnvironmentProblem

LAB_LABEL = "dubhe.lab"
RUN_LABEL = "dubhe.run"
COMPONENT_LABEL = "dubhe.component"
OWNER_LABEL = "dubhe.owner"
RUN_DIR_LABEL = "dubhe.run_dir"
#: ``process`` (runs the component) or ``net`` (holds its address and ports; see DockerBackend).
ROLE_LABEL = "dubhe.role"

#: What testcontainers needs on a machine like this one (see docs/containers.md): no reaper
#: image to pull, and ports reached on the docker host (127.0.0.1), not through a gateway.
TESTCONTAINERS_ENV = {"TESTCONTAINERS_RYUK_DISABLED": "true",
                      "TESTCONTAINERS_CONNECTION_MODE": "docker_host"}


def _reason(exc: BaseException) -> str:
    text = str(exc)
    # docker-py wraps the socket error several levels deep; the innermost words are the useful
    # ones ("No such file or directory", "Permission denied", "Connection refused").
    found = re.findall(r"\(\d+, '([^']+)'\)", text)
    if found:
        return str(found[-1])
    return text.splitlines()[0][:200] if text else type(exc).__name__


def connect(timeout_s: float = 60.0) -> Any:
    """A ``docker.DockerClient`` on the engine of the environment (``DOCKER_HOST`` or the local
    socket), checked with a ping. Raises :class:`EnvironmentProblem` (one line) when the SDK is
    not installed or no engine answers."""
    try:
        import docker
    except ImportError:
        raise EnvironmentProblem(
            "the container backend needs the Python package 'docker' (make setup installs the "
            "project's 'docker' extra; or pip install -e '.[docker]')") from None
    try:
        client = docker.from_env(timeout=int(timeout_s), max_pool_size=32)
        client.ping()
    except docker.errors.DockerException as exc:
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        raise EnvironmentProblem(f"no Docker engine answers at {where} ({_reason(exc)}); "
                                 "start the engine or set DOCKER_HOST") from None
    return client


def engine_problem() -> str | None:
    """None when an engine answers, else the one-line reason (for skip messages)."""
    try:
        connect(timeout_s=5).close()
    except EnvironmentProblem as exc:
        return str(exc)
    return None


def owner_label(pid: int | None = None) -> str:
    """``<pid>:<process start time>`` of this (or the given) process."""
    proc = psutil.Process(pid)
    return f"{proc.pid}:{proc.create_time():.3f}"


def owner_alive(label: str) -> bool:
    """Is the process named by an :func:`owner_label` value still the same process?"""
    try:
        pid_s, created_s = label.split(":", 1)
        proc = psutil.Process(int(pid_s))
        return bool(abs(proc.create_time() - float(created_s)) < 0.05
                    and proc.status() != psutil.STATUS_ZOMBIE)
    except (ValueError, psutil.Error):
        return False

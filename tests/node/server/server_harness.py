"""Runs ``dubhe-node`` as a real subprocess on OS-chosen loopback ports (used by conftest.py and
tests): :class:`lab.orchestrate.node_proc.NodeProcess` with the tests' config defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.orchestrate.node_proc import NodeProcess, default_config

ADMIN_TOKEN = "test-admin-token"
RunningNode = NodeProcess


def make_config(workdir: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    base = {"security": {"admin_token": ADMIN_TOKEN, "audit_log": str(workdir / "audit.jsonl")}}
    for k, v in sections.items():
        base.setdefault(k, {}).update(v)
    return default_config(workdir, **base)

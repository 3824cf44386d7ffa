"""``python -m lab.proxy``: prints the seed it uses, serves the API, stops on SIGTERM."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request

import pytest


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "lab.proxy", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline()


@pytest.mark.parametrize("args", [("--seed", "42"), ()])
def test_prints_seed_and_serves(args: tuple[str, ...]) -> None:
    proc, line = _start(*args)
    try:
        m = re.search(
            r"API on (http://127\.0\.0\.1:\d+) seed=(\d+) \(replay with --seed \2\)", line
        )
        assert m, line
        if args:
            assert m.group(2) == "42"
        with urllib.request.urlopen(m.group(1) + "/version", timeout=5) as resp:
            assert json.loads(resp.read()) == {"version": "2.12.0"}
    finally:
        proc.terminate()
        assert proc.communicate(timeout=10)[0] is not None and proc.returncode == 0


def test_busy_port_is_a_clear_error() -> None:
    proc, line = _start()
    try:
        port = re.search(r":(\d+) seed", line).group(1)  # type: ignore[union-attr]
        run = subprocess.run([sys.executable, "-m", "lab.proxy", "--port", port],
                             capture_output=True, text=True, timeout=30)
        assert run.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in run.stderr
        assert "Traceback" not in run.stderr
    finally:
        proc.terminate()
        proc.communicate(timeout=10)

"""Scenario: the Toxiproxy conformance suite against ``python -m lab.proxy`` as a real process.

The unit run uses an in-process server; here the server is the program users start, on a free
loopback port, and the suite (plus the stock toxiproxy-python checks) talks to it only through
``LAB_TOXIPROXY_URL``. Set ``LAB_TOXIPROXY_URL`` yourself to aim it at Shopify's Toxiproxy.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = [ROOT / "tests/lab/proxy/test_proxy_api_conformance.py",
         ROOT / "tests/lab/proxy/test_proxy_stock_client.py"]


@pytest.fixture
def server_url() -> Iterator[str]:
    if url := os.getenv("LAB_TOXIPROXY_URL"):
        yield url
        return
    proc = subprocess.Popen([sys.executable, "-m", "lab.proxy", "--port", "0", "--seed", "6"],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    try:
        assert "API on " in line, line
        yield line.split("API on ", 1)[1].split()[0]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_conformance_against_the_server_process(server_url: str) -> None:
    """name: proxy-conformance; role: fault proxy; the API matches Toxiproxy 2.12 route by route."""
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, SUITE)],
        cwd=ROOT, env=dict(os.environ, LAB_TOXIPROXY_URL=server_url),
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]

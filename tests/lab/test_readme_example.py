"""The README's "Sending a transaction from Python" script, run as a newcomer would: against a lab
started with a fault profile (mobile-3g on the client's link), through client-edge and nginx,
until its receipts and the balances it prints."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from lab.orchestrate import Lab, LabSpec

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lab


def readme_script() -> str:
    section = (ROOT / "README.md").read_text().split("## Sending a transaction from Python", 1)[1]
    section = section.split("\n## ", 1)[0]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m, "README: no python block under 'Sending a transaction from Python'"
    return m.group(1)


@pytest.mark.timeout(240)
async def test_the_readme_transaction_goes_through_a_fault_profile(
    tmp_path: Path, lab_factory: Callable[[LabSpec], Awaitable[Lab]]
) -> None:
    lab = await lab_factory(LabSpec(profiles=(str(ROOT / "fault-profiles" / "mobile-3g.toml"),)))
    script = tmp_path / "send_tx.py"
    script.write_text(readme_script())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), cwd=tmp_path,
        env={**os.environ, "DUBHE_RPC": lab.endpoints["http"]},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    text = out.decode()
    assert proc.returncode == 0, text + err.decode()
    assert re.search(r"^mint: block \d+, status 0x1, gas (\d+) \(estimated \1\)$", text, re.M), text
    assert re.search(r"^transfer: block \d+, status 0x1, gas (\d+) \(estimated \1\)$", text,
                     re.M), text
    assert text.rstrip().endswith("alice 700, bob 300")
    # the requests really crossed the faulty link: the proxy logged the 3G toxics acting on it
    fired = [e for e in await lab.fault_events() if e.get("event") == "toxic_fired"]
    assert any(e.get("proxy") == "client-edge" for e in fired), fired[-5:]

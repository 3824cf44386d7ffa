"""The tests' time unit (tests/timing.py): one read of LAB_TIMEOUT_FACTOR, waits on conditions."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import timing  # type: ignore[import-not-found]
from timing import ConditionTimeout, scaled, wait_until, wait_until_sync

TESTS = Path(__file__).resolve().parent


def _factor_in_child(value: str) -> subprocess.CompletedProcess[str]:
    code = "import timing; print(timing.FACTOR, timing.scaled(2))"
    return subprocess.run([sys.executable, "-c", code], cwd=TESTS, capture_output=True, text=True,
                          env={"LAB_TIMEOUT_FACTOR": value, "PATH": ""}, timeout=60, check=False)


def test_factor_scales_bounds() -> None:
    out = _factor_in_child("2.5")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2.5", "5.0"]
    assert scaled(1.0) == timing.FACTOR


@pytest.mark.parametrize("bad", ["fast", "0", "-1", "nan"])
def test_bad_factor_is_one_clear_error(bad: str) -> None:
    out = _factor_in_child(bad)
    assert out.returncode != 0
    assert f"LAB_TIMEOUT_FACTOR must be a positive number, got {bad!r}" in out.stderr


async def test_wait_until_returns_the_first_truthy_value() -> None:
    calls = []

    def cond() -> int:
        calls.append(1)
        return len(calls) if len(calls) >= 3 else 0

    assert await wait_until(cond, interval=0) == 3


async def test_wait_until_awaits_async_conditions() -> None:
    async def cond() -> str:
        return "ready"

    assert await wait_until(cond) == "ready"


async def test_wait_until_names_the_condition_when_it_times_out() -> None:
    t0 = time.monotonic()
    with pytest.raises(ConditionTimeout, match=r"the moon not reached within .* \(last value 0\)"):
        await wait_until(lambda: 0, 0.05 / timing.FACTOR, what="the moon")
    assert time.monotonic() - t0 < scaled(5)  # a bound, not a measurement


def test_wait_until_sync() -> None:
    box = [0]

    def cond() -> bool:
        box[0] += 1
        return box[0] > 2

    assert wait_until_sync(cond, interval=0) is True
    with pytest.raises(ConditionTimeout, match=r"condition .*<lambda>"):
        wait_until_sync(lambda: None, 0.01 / timing.FACTOR)

"""JUnit XML (``pytest --junitxml``): totals and the failing tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from reports.files import Problems

SECTION = "properties"


@dataclass
class Suite:
    path: Path
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    time_s: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (test id, first line)
    slowest: list[tuple[str, float]] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped


def load(path: Path, problems: Problems, *, missing_ok: bool = False) -> Suite | None:
    if not path.exists():
        if not missing_ok:
            problems.add(SECTION, path, "missing (no such file)")
        return None
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        problems.add(SECTION, path, f"corrupt: not JUnit XML ({exc})")
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    if not suites:
        problems.add(SECTION, path, "corrupt: no <testsuite> element")
        return None
    out = Suite(path)
    times: list[tuple[str, float]] = []
    for s in suites:
        for case in s.iter("testcase"):
            out.tests += 1
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            t = float(case.get("time") or 0)
            out.time_s += t
            times.append((name, t))
            for tag in ("failure", "error"):
                el = case.find(tag)
                if el is not None:
                    setattr(out, f"{tag}s", getattr(out, f"{tag}s") + 1)
                    msg = (el.get("message") or el.text or "").strip().splitlines()
                    out.failed.append((name, msg[0][:300] if msg else tag))
            if case.find("skipped") is not None:
                out.skipped += 1
    out.slowest = sorted(times, key=lambda x: -x[1])[:5]
    return out

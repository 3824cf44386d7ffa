"""``dubhe-bench --json`` files: one schema for every benchmark (docs/reports.md).

``{"bench", "version": 1, "started", "argv", "figures": {name: number | null}, "targets":
{name: {"target", "value", "pass": bool | null, "direction", "unit", ...}}, ...extras}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports.files import Problems, number, read_json

SECTION = "benchmarks"
VERSION = 1


@dataclass
class Target:
    name: str
    target: float | None
    value: float | None
    passed: bool | None  # None: not judged
    direction: str
    unit: str
    note: str = ""

    @property
    def verdict(self) -> str:
        return "not judged" if self.passed is None else "PASS" if self.passed else "MISS"


@dataclass
class Bench:
    name: str
    path: Path
    data: dict[str, Any]
    figures: dict[str, float | None] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)

    @property
    def missed(self) -> list[Target]:
        return [t for t in self.targets if t.passed is False]

    @property
    def exit_code(self) -> int | None:
        v = self.data.get("exit_code")
        return v if isinstance(v, int) else None

    def direction_of(self, figure: str) -> str | None:
        for t in self.targets:
            if t.name == figure:
                return t.direction
        return None


def load_one(path: Path, problems: Problems) -> Bench | None:
    data = read_json(path, problems, SECTION)
    if data is None:
        return None
    bad = _problems_of(data)
    if bad:
        problems.add(SECTION, path, "not a dubhe-bench result: " + "; ".join(bad))
        return None
    b = Bench(str(data["bench"]), path, data)
    b.figures = {str(k): number(v) for k, v in data["figures"].items()}
    for name, t in data["targets"].items():
        b.targets.append(Target(
            str(name), number(t.get("target")), number(t.get("value")),
            t.get("pass") if isinstance(t.get("pass"), bool) else None,
            str(t.get("direction", "")), str(t.get("unit", "")), str(t.get("note", ""))))
    return b


def _problems_of(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return ["not a JSON object"]
    out = []
    if not isinstance(data.get("bench"), str):
        out.append("bench: missing")
    version = data.get("version")
    if not isinstance(version, int):
        out.append("version: missing")
    elif version > VERSION:
        out.append(f"version: {version} is newer than this reader ({VERSION})")
    if not isinstance(data.get("figures"), dict):
        out.append("figures: expected an object")
    targets = data.get("targets")
    if not isinstance(targets, dict):
        out.append("targets: expected an object")
    else:
        for name, t in targets.items():
            if not isinstance(t, dict) or "value" not in t or "target" not in t:
                out.append(f"targets.{name}: expected {{target, value, pass, ...}}")
            elif t.get("direction") not in ("lower", "higher"):
                out.append(f"targets.{name}.direction: expected 'lower' or 'higher'")
    return out


def load_all(directory: Path, problems: Problems, expected: list[Path] | None = None
             ) -> list[Bench]:
    """Every ``*.json`` in ``directory``; each ``expected`` file that is missing is a problem."""
    paths = sorted(directory.glob("*.json")) if directory.is_dir() else []
    for p in expected or []:
        if p not in paths:
            paths.append(p)  # read_json records it as missing
    out = [b for p in sorted(paths) if (b := load_one(p, problems)) is not None]
    return out

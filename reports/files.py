"""Reading result files without letting one bad file stop the report.

Every reader takes a :class:`Problems` collector: a missing, unreadable or corrupt file is
recorded there (naming the file, relative to the run directory, and what is wrong) and the
reader returns ``None``, so the page can show an error section and render everything else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Problem:
    """A result file that could not be used: ``file`` relative to the run directory."""

    section: str
    file: str
    message: str

    def line(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass
class Problems:
    """The problems met while loading one run; ``root`` makes the file names relative."""

    root: Path
    items: list[Problem] = field(default_factory=list)

    def add(self, section: str, path: Path | str, message: str) -> None:
        self.items.append(Problem(section, self.rel(path), message))

    def rel(self, path: Path | str) -> str:
        p = Path(path)
        try:
            return str(p.relative_to(self.root))
        except ValueError:
            return str(p)

    def of(self, section: str) -> list[Problem]:
        return [p for p in self.items if p.section == section]

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def read_json(path: Path, problems: Problems, section: str, *, missing_ok: bool = False) -> Any:
    """The parsed JSON, or None (the problem recorded). ``missing_ok``: a missing file is not a
    problem (optional inputs)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if not missing_ok:
            problems.add(section, path, "missing (no such file)")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(section, path, f"unreadable ({exc})")
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problems.add(section, path, f"corrupt: not JSON ({exc.msg} at line {exc.lineno} column "
                                    f"{exc.colno})")
        return None


def read_jsonl(path: Path, problems: Problems, section: str, *, required: tuple[str, ...] = (),
               missing_ok: bool = False) -> list[dict[str, Any]] | None:
    """The objects of a JSON-lines file, or None when the file is missing or any line is bad
    (the first bad line is named: a half-valid file is not silently half-shown)."""
    rows: list[dict[str, Any]] = []
    try:
        with path.open("rb") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    problems.add(section, path, f"corrupt: line {i} is not JSON ({exc})")
                    return None
                if not isinstance(obj, dict) or any(k not in obj for k in required):
                    problems.add(section, path, f"corrupt: line {i} is not an object with "
                                                f"{', '.join(required) or 'keys'}")
                    return None
                rows.append(obj)
    except FileNotFoundError:
        if not missing_ok:
            problems.add(section, path, "missing (no such file)")
        return None
    except OSError as exc:
        problems.add(section, path, f"unreadable ({exc})")
        return None
    return rows


def read_csv(path: Path, problems: Problems, section: str, *, required: tuple[str, ...] = (),
             missing_ok: bool = False) -> pd.DataFrame | None:
    """A CSV as a DataFrame, or None (missing, unreadable, or without the required columns)."""
    if not path.exists():
        if not missing_ok:
            problems.add(section, path, "missing (no such file)")
        return None
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:  # pandas' parser errors: ValueError
        problems.add(section, path, f"corrupt: not CSV ({str(exc).splitlines()[0]})")
        return None
    missing = [c for c in required if c not in df.columns]
    if missing:
        problems.add(section, path, f"corrupt: no column {', '.join(missing)}")
        return None
    return df


def number(v: Any) -> float | None:
    """A finite number, else None (bools are not numbers here)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def expect_dict(data: Any, path: Path, problems: Problems, section: str) -> dict[str, Any] | None:
    """``data`` when it is a JSON object, else a problem naming the file."""
    if data is None:
        return None
    if not isinstance(data, dict):
        problems.add(section, path, f"corrupt: expected a JSON object, got {type(data).__name__}")
        return None
    return data

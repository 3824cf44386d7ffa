"""The mutation-testing targets: one module each, with the test subset that covers it.

Read from a TOML file (default: ``lab/mutation/targets.toml``)::

    [defaults]                      # every key optional
    packages = ["node", "lab"]      # copied for mutmut; tests import these copies
    copy = ["tests", "conftest.py"] # also copied (the tests and their set-up)
    hypothesis_profile = "mutation" # HYPOTHESIS_PROFILE for the test runs
    min_score = 0.90                # the score excluding message-only mutants must reach it
    budget_s = 1800                 # wall-clock budget of one target; then it stops, partial
    preload = ["pytest", ...]       # third-party modules the fork server imports once

    [[target]]
    name = "node.rpc.jsonrpc"       # result file <name>.json, metric mutation.<name>.score
    module = "node/rpc/jsonrpc.py"  # the one file mutated
    tests = ["tests/node/rpc"]      # pytest selection (paths or node ids)
    # optional: min_score, budget_s, copy (added), mutants (key globs: a subset),
    # quick (part of `--quick`), timeout_multiplier (mutmut's: a mutant's run may take this
    # many times its tests' clean time, plus 1 s, before it counts as timed out; default 15),
    # note

A bad file raises :class:`TargetsError` naming the file and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_FILE = Path(__file__).with_name("targets.toml")
#: Third-party modules worth importing once in mutmut's fork server (never the project's own:
#: a module imported there is shared by every mutant's run, so objects it builds at import
#: time would not see the mutant).
DEFAULT_PRELOAD = ["pytest", "_pytest.python", "hypothesis", "pytest_asyncio", "pytest_timeout",
                   "orjson", "aiohttp", "websockets", "cryptography", "nacl", "pydantic",
                   "prometheus_client", "jinja2", "psutil"]


class TargetsError(Exception):
    """A targets file that cannot be used: the message names the file and the key."""


@dataclass(frozen=True)
class Target:
    name: str
    module: str
    tests: list[str]
    min_score: float
    budget_s: float
    packages: list[str]
    copy: list[str]
    hypothesis_profile: str
    preload: list[str]
    mutants: list[str] = field(default_factory=list)
    quick: bool = False
    timeout_multiplier: float = 15.0
    note: str = ""


def load(path: Path = DEFAULT_FILE, *, repo: Path | None = None) -> list[Target]:
    """The targets of ``path``; with ``repo``, also checks that every module, test path and
    copied path exists there."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise TargetsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TargetsError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(raw) - {"defaults", "target"}
    if unknown:
        raise TargetsError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))} "
                           "(expected [defaults] and [[target]])")
    d = raw.get("defaults", {})
    if not isinstance(d, dict):
        raise TargetsError(f"{path}: defaults: expected a table")
    _known(path, "defaults", d, {"packages", "copy", "hypothesis_profile", "min_score",
                                 "budget_s", "preload"})
    packages = _strs(path, "defaults.packages", d.get("packages", ["node", "lab"]))
    copy = _strs(path, "defaults.copy", d.get("copy", ["tests", "conftest.py"]))
    profile = _str(path, "defaults.hypothesis_profile", d.get("hypothesis_profile", "mutation"))
    min_score = _fraction(path, "defaults.min_score", d.get("min_score", 0.9))
    budget_s = _positive(path, "defaults.budget_s", d.get("budget_s", 1800))
    preload = _strs(path, "defaults.preload", d.get("preload", DEFAULT_PRELOAD))
    items = raw.get("target", [])
    if not isinstance(items, list) or not items:
        raise TargetsError(f"{path}: expected at least one [[target]]")
    out: list[Target] = []
    for i, t in enumerate(items):
        where = f"target[{i}]"
        if not isinstance(t, dict):
            raise TargetsError(f"{path}: {where}: expected a table")
        _known(path, where, t, {"name", "module", "tests", "min_score", "budget_s", "copy",
                                "mutants", "quick", "timeout_multiplier", "note"})
        for key in ("name", "module", "tests"):
            if key not in t:
                raise TargetsError(f"{path}: {where}: missing key {key!r}")
        name = _str(path, f"{where}.name", t["name"])
        where = f"target {name!r}"
        module = _str(path, f"{where}.module", t["module"])
        if not module.endswith(".py"):
            raise TargetsError(f"{path}: {where}.module: expected a .py file, got {module!r}")
        if not any(module.startswith(p.rstrip("/") + "/") for p in packages):
            raise TargetsError(f"{path}: {where}.module: {module!r} is outside the copied "
                               f"packages {packages}")
        tests = _strs(path, f"{where}.tests", t["tests"])
        if not tests:
            raise TargetsError(f"{path}: {where}.tests: expected at least one test path")
        quick = t.get("quick", False)
        if not isinstance(quick, bool):
            raise TargetsError(f"{path}: {where}.quick: expected true or false")
        out.append(Target(
            name=name, module=module, tests=tests,
            min_score=_fraction(path, f"{where}.min_score", t.get("min_score", min_score)),
            budget_s=_positive(path, f"{where}.budget_s", t.get("budget_s", budget_s)),
            packages=packages,
            copy=[*copy, *_strs(path, f"{where}.copy", t.get("copy", []))],
            hypothesis_profile=profile, preload=preload,
            mutants=_strs(path, f"{where}.mutants", t.get("mutants", [])), quick=quick,
            timeout_multiplier=_positive(path, f"{where}.timeout_multiplier",
                                         t.get("timeout_multiplier", 15.0)),
            note=_str(path, f"{where}.note", t.get("note", ""), empty=True)))
    names = [t.name for t in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise TargetsError(f"{path}: target name(s) used twice: {', '.join(dup)}")
    if repo is not None:
        for t in out:
            for p in [t.module, *(s.split("::")[0] for s in t.tests), *t.copy, *t.packages]:
                if not (repo / p).exists():
                    raise TargetsError(f"{path}: target {t.name!r}: {p} does not exist in "
                                       f"{repo}")
    return out


def _known(path: Path, where: str, table: dict[str, Any], keys: set[str]) -> None:
    extra = set(table) - keys
    if extra:
        raise TargetsError(f"{path}: {where}: unknown key(s) {', '.join(sorted(extra))} "
                           f"(known: {', '.join(sorted(keys))})")


def _str(path: Path, where: str, v: object, *, empty: bool = False) -> str:
    if not isinstance(v, str) or (not v and not empty):
        raise TargetsError(f"{path}: {where}: expected a{'' if empty else ' non-empty'} string")
    return v


def _strs(path: Path, where: str, v: object) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(s, str) and s for s in v):
        raise TargetsError(f"{path}: {where}: expected a list of non-empty strings")
    return list(v)


def _fraction(path: Path, where: str, v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
        raise TargetsError(f"{path}: {where}: expected a number from 0 to 1, got {v!r}")
    return float(v)


def _positive(path: Path, where: str, v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
        raise TargetsError(f"{path}: {where}: expected a positive number, got {v!r}")
    return float(v)

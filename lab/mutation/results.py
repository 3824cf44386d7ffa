"""Read what mutmut 3 left in a work directory and turn it into one result dict per target.

mutmut keeps, per mutated file ``F``:

* ``mutants/F.meta``: JSON whose ``exit_code_by_key`` maps each mutant's key
  (``<module>.x_<function>__mutmut_<n>`` or ``<module>.xǁ<Class>ǁ<method>__mutmut_<n>``) to the
  exit code of its test run (``None``: not run yet);
* ``mutants/F``: the file rewritten with, per function, the original as
  ``<mangled>__mutmut_orig`` and each mutant as ``<mangled>__mutmut_<n>``.

From these this module derives the status of each mutant (:data:`STATUS_BY_EXIT_CODE`, the
table of mutmut 3.8's ``stats.py``), the line of the original file each surviving mutant
changes and the change itself, and whether a mutant only changes a *message* (an exception's
message argument, an ``assert``'s message, a logging call's format: :func:`message_only`),
which the score excluding messages leaves out. No mutmut import: the files are the interface,
and a format change shows up as a failing smoke test (tests/lab/test_mutation.py).
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULT_VERSION = 1

#: mutmut 3.8 ``stats.status_by_exit_code`` (anything else is "suspicious").
STATUS_BY_EXIT_CODE: dict[int | None, str] = {
    1: "killed", 3: "killed", 0: "survived", 5: "no tests", 2: "interrupted",
    None: "not checked", 33: "no tests", 34: "skipped", 35: "suspicious", 36: "timeout",
    37: "caught by type check", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
    -11: "segfault", -9: "segfault",
}
#: Statuses that count as the tests noticing the mutant.
DETECTED = ("killed", "timeout", "segfault", "caught by type check")
#: Statuses that count against the score: the mutant ran (or had no test) and nothing noticed.
UNDETECTED = ("survived", "no tests", "suspicious")
#: Neither: not run (budget spent, interrupted) or skipped by a pragma.
UNSCORED = ("not checked", "interrupted", "skipped")

_LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}
_EXC_NAME = re.compile(r"(Error|Exception|Warning)$")


def status_of(exit_code: int | None) -> str:
    return STATUS_BY_EXIT_CODE.get(exit_code, "suspicious")


@dataclass
class Mutant:
    """One mutant: its key, status, and where it is in the original file."""

    key: str
    status: str
    function: str  # Class.method or function
    line: int | None = None
    change: str = ""
    diff: str = ""
    message_only: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "status": self.status, "function": self.function,
                "line": self.line, "change": self.change, "message_only": self.message_only,
                "diff": self.diff}


@dataclass
class Tally:
    """Counts and scores of a set of mutants."""

    statuses: dict[str, int] = field(default_factory=dict)

    def add(self, status: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1

    @property
    def detected(self) -> int:
        return sum(self.statuses.get(s, 0) for s in DETECTED)

    @property
    def undetected(self) -> int:
        return sum(self.statuses.get(s, 0) for s in UNDETECTED)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def score(self) -> float | None:
        """detected / (detected + undetected); None when no mutant was scored."""
        n = self.detected + self.undetected
        return self.detected / n if n else None


def module_name(path: str) -> str:
    """``node/rpc/jsonrpc.py`` -> ``node.rpc.jsonrpc`` (mutmut's key prefix)."""
    name = path[:-3] if path.endswith(".py") else path
    name = name.replace("/", ".")
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


def split_key(key: str, module: str) -> tuple[str | None, str, str]:
    """``(class or None, function, generated name)`` of a mutant key of ``module``."""
    generated = key[len(module) + 1:] if key.startswith(module + ".") else key.rpartition(".")[2]
    mangled = generated.partition("__mutmut_")[0]
    if "ǁ" in mangled:
        _, cls, fn = mangled.split("ǁ", 2)
        return cls, fn, generated
    return None, mangled[2:] if mangled.startswith("x_") else mangled, generated


def read_module(work: Path, module_path: str, *, repo: Path) -> tuple[list[Mutant], str | None]:
    """Every mutant of ``module_path`` in ``work`` (a mutmut work directory), with its status;
    survivors also get line, change and diff. Returns ``(mutants, problem)``; ``problem`` says
    what could not be read (then the list may be empty)."""
    meta_path = work / "mutants" / f"{module_path}.meta"
    try:
        meta = json.loads(meta_path.read_text())
        codes = meta["exit_code_by_key"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [], f"{meta_path}: {type(exc).__name__}: {exc}"
    if not isinstance(codes, dict):
        return [], f"{meta_path}: exit_code_by_key is not an object"
    module = module_name(module_path)
    mutated = _Functions.parse(work / "mutants" / module_path)
    original = _Functions.parse(repo / module_path, original=True)
    out: list[Mutant] = []
    for key, code in codes.items():
        cls, fn, generated = split_key(str(key), module)
        m = Mutant(str(key), status_of(code if isinstance(code, int) else None),
                   f"{cls}.{fn}" if cls else fn)
        _locate(m, cls, fn, generated, mutated, original, module_path)
        out.append(m)
    return out, None


class _Functions:
    """The functions of one source file: ``(class or None, name) -> (lines, def line)``."""

    def __init__(self, lines: list[str], defs: dict[tuple[str | None, str], tuple[int, int]]):
        self.lines = lines
        self.defs = defs

    @classmethod
    def parse(cls, path: Path, *, original: bool = False) -> _Functions:
        try:
            text = path.read_text()
            tree = ast.parse(text)
        except (OSError, SyntaxError, ValueError):
            return cls([], {})
        defs: dict[tuple[str | None, str], tuple[int, int]] = {}

        def visit(body: list[ast.stmt], owner: str | None) -> None:
            for node in body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    defs.setdefault((owner, node.name), (node.lineno, node.end_lineno or 0))
                elif isinstance(node, ast.ClassDef) and (original or owner is None):
                    visit(node.body, node.name)

        visit(tree.body, None)
        return cls(text.splitlines(), defs)

    def source(self, owner: str | None, name: str) -> list[str] | None:
        span = self.defs.get((owner, name))
        if span is None:
            return None
        return self.lines[span[0] - 1: span[1]]


def _locate(m: Mutant, cls: str | None, fn: str, generated: str, mutated: _Functions,
            original: _Functions, module_path: str) -> None:
    orig_name = generated.partition("__mutmut_")[0] + "__mutmut_orig"
    before = mutated.source(cls, orig_name)
    after = mutated.source(cls, generated)
    if before is None or after is None:
        return
    # the copies are named after the mutant: name both after the function before comparing
    before = [ln.replace(orig_name, fn) for ln in before]
    after = [ln.replace(generated, fn) for ln in after]
    m.diff = "\n".join(difflib.unified_diff(before, after, module_path, module_path,
                                            lineterm="", n=1))
    m.message_only = message_only("\n".join(before), "\n".join(after))
    ops = [op for op in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes()
           if op[0] != "equal"]
    if not ops:
        return
    _, i1, i2, j1, j2 = ops[0]
    old = " ".join(s.strip() for s in before[i1:max(i2, i1 + 1)])
    new = " ".join(s.strip() for s in after[j1:j2])
    m.change = f"{old} -> {new}" if new else f"{old} -> (removed)"
    span = original.defs.get((cls, fn))
    if span is not None:
        line = span[0] + i1  # the copies start at their def line, as the original does
        if not (0 < line <= len(original.lines)
                and original.lines[line - 1].strip() == before[i1].strip()):
            found = [n for n in range(span[0], span[1] + 1)
                     if original.lines[n - 1].strip() == before[i1].strip()]
            line = found[0] if found else span[0]
        m.line = line


def message_only(before: str, after: str) -> bool:
    """Whether the two versions of a function differ only in strings used as messages: a string
    (or f-string) replaced by another string or by ``None`` as the *message argument* of an
    exception (the last positional argument of a raised call or of a call to
    ``*Error``/``*Exception``/``*Warning``, or a ``message``/``msg``/``reason`` keyword), as an
    ``assert``'s message, or as the format of a logging call (``log.warning("...", x)``).
    Other arguments of an exception (``InvalidTransaction("malformed", ...)``'s cause,
    ``UndeclaredAccess("read", key)``'s operation) are data, and so is every other string."""
    try:
        a = ast.parse(textwrap.dedent(before))
        b = ast.parse(textwrap.dedent(after))
    except SyntaxError:
        return False
    found: list[bool] = []

    def call(x: ast.Call, y: ast.Call, kind: str | None) -> bool:
        if not same(x.func, y.func, False) or len(x.args) != len(y.args) \
                or len(x.keywords) != len(y.keywords):
            return False
        for i, (p, q) in enumerate(zip(x.args, y.args, strict=True)):
            msg = (kind == "exception" and i == len(x.args) - 1) or (kind == "log" and i == 0)
            if not same(p, q, msg):
                return False
        for kp, kq in zip(x.keywords, y.keywords, strict=True):
            if kp.arg != kq.arg or not same(kp.value, kq.value, kind is not None and kp.arg in (
                    "message", "msg", "reason")):
                return False
        return True

    def same(x: Any, y: Any, ctx: bool) -> bool:
        if isinstance(x, ast.AST):
            if _is_text(x) and isinstance(y, ast.Constant) and (
                    y.value is None or isinstance(y.value, str)):
                if ast.dump(x) == ast.dump(y):
                    return True
                found.append(ctx)
                return ctx
            if type(x) is not type(y):
                return False
            if isinstance(x, ast.Call) and isinstance(y, ast.Call):
                return call(x, y, _call_kind(x))
            if isinstance(x, ast.Raise) and isinstance(y, ast.Raise):
                if isinstance(x.exc, ast.Call) and isinstance(y.exc, ast.Call):
                    return call(x.exc, y.exc, "exception") and same(x.cause, y.cause, False)
                return same(x.exc, y.exc, False) and same(x.cause, y.cause, False)
            for name in x._fields:
                if isinstance(x, ast.FunctionDef | ast.AsyncFunctionDef) and name == "name":
                    continue  # the copies are named after the mutant
                inner = True if isinstance(x, ast.Assert) and name == "msg" else ctx
                if not same(getattr(x, name), getattr(y, name), inner):
                    return False
            return True
        if isinstance(x, list):
            return isinstance(y, list) and len(x) == len(y) and all(
                same(p, q, ctx) for p, q in zip(x, y, strict=True))
        return bool(x == y)

    return same(a, b, False) and bool(found) and all(found)


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str))


def _call_kind(node: ast.Call) -> str | None:
    """``exception`` for a call to ``*Error``/``*Exception``/``*Warning``, ``log`` for a
    logging call (``log.info``, ``logger.warning``, ``warnings.warn``), else None."""
    f = node.func
    name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
    if _EXC_NAME.search(name):
        return "exception"
    if isinstance(f, ast.Attribute) and name in _LOG_METHODS:
        owner = f.value
        oname = owner.id if isinstance(owner, ast.Name) else \
            owner.attr if isinstance(owner, ast.Attribute) else ""
        if "log" in oname.lower() or oname == "warnings":
            return "log"
    return None


def summarize(mutants: list[Mutant]) -> dict[str, Any]:
    """Counts and scores (module docstring of :mod:`lab.mutation`)."""
    every, code = Tally(), Tally()
    for m in mutants:
        every.add(m.status)
        if not m.message_only:
            code.add(m.status)
    survivors = sorted((m for m in mutants if m.status in UNDETECTED),
                       key=lambda m: (m.line or 0, m.key))
    return {
        "mutants": every.total, "killed": every.detected, "survived": every.undetected,
        "not_checked": every.total - every.detected - every.undetected,
        "statuses": dict(sorted(every.statuses.items())),
        "score": every.score,
        "message_only": {"mutants": every.total - code.total,
                         "survived": every.undetected - code.undetected},
        "score_excluding_messages": code.score,
        "survivors": [m.as_dict() for m in survivors],
    }

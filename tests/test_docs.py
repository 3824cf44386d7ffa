"""Docs that match the tree.

* Every command of README.md's command table, and every command line the docs show (inline code
  and code blocks of the tracked Markdown files), runs with ``--help`` and exits 0, and every
  option the docs give it appears in that help: a renamed subcommand or option fails here.
  Console scripts run from the environment running the tests (the project's ``.venv/bin``);
  ``python -m`` forms with its interpreter. ``make`` targets and ``tox`` environments are looked
  up in the Makefile and tox.ini.
* No tracked file cites a path outside the repository (notes only some machines have).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCRIPTS = ("dubhe-node", "dubhe-bench", "dubhe-lab", "dubhe-config-validate", "dubhe-proxy",
           "dubhe-l1")
_PROGRAMS = "|".join(map(re.escape, SCRIPTS))
_START = re.compile(
    rf"^(?:\$ )?(?P<cmd>(?:{_PROGRAMS})\b.*|python -m [a-z_][a-z0-9_.]*\b.*|make \S.*|tox -e \S.*)$"
)
_WORD = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclass(frozen=True)
class Command:
    """A documented command: the program, its subcommand words, the options the docs give it."""

    program: tuple[str, ...]
    words: tuple[str, ...]
    options: tuple[str, ...]
    where: str

    @property
    def argv(self) -> tuple[str, ...]:
        return (*self.program, *self.words, "--help")

    def __str__(self) -> str:
        return " ".join((*self.program, *self.words))


def parse(text: str, where: str) -> list[Command]:
    """The command(s) in one documented line (``a\\|b`` alternatives give one command each)."""
    line = text.replace("\\|", "|").split("  #", 1)[0].strip()
    m = _START.match(line)
    if m is None:
        return []
    tokens = m.group("cmd").split()
    if tokens[0] == "python":
        program, rest = tuple(tokens[:3]), tokens[3:]
    else:
        program, rest = (tokens[0],), tokens[1:]
    words: list[list[str]] = [[]]
    options: list[str] = []
    in_words = True
    for tok in rest:
        bare = tok.strip("[]().,")
        if bare.startswith("-"):
            in_words = False
            name = bare.split("=", 1)[0]
            if re.fullmatch(r"--?[A-Za-z][A-Za-z0-9-]*", name):
                options.append(name)
        elif in_words and all(_WORD.match(w) for w in bare.split("|")) and bare == tok:
            words = [[*ws, alt] for ws in words for alt in bare.split("|")]
        else:
            in_words = False  # a placeholder (FILE, N) or a value: the words end here
    return [Command(program, tuple(ws), tuple(options), where) for ws in words]


def _code_lines(md: str) -> Iterator[str]:
    fenced = False
    for line in md.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            yield line
        else:
            yield from re.findall(r"`([^`]+)`", line)


def _tracked(pattern: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", pattern], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return [ROOT / p for p in out.split()]


def documented_commands() -> list[Command]:
    seen: dict[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], Command] = {}
    for md in _tracked("*.md"):
        for code in _code_lines(md.read_text()):
            for c in parse(code, md.relative_to(ROOT).as_posix()):
                seen.setdefault((c.program, c.words, c.options), c)
    return sorted(seen.values(), key=str)


def readme_table_commands() -> list[Command]:
    """The first code span of each row of README.md's ``## Commands`` table, plus any further
    code span in that cell (``dubhe-node --config FILE`` (or ``python -m node``))."""
    section = (ROOT / "README.md").read_text().split("## Commands", 1)[1].split("\n## ", 1)[0]
    out: list[Command] = []
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        cell = re.split(r"(?<!\\)\|", row)[1]
        spans = re.findall(r"`([^`]+)`", cell)
        cmds = [c for s in spans for c in parse(s, "README.md")]
        assert cmds, f"README command table: no command found in {cell.strip()!r}"
        out.extend(cmds)
    return out


@cache
def _make_targets() -> frozenset[str]:
    text = (ROOT / "Makefile").read_text()
    return frozenset(re.findall(r"^([a-z][a-z0-9-]*):", text, flags=re.M))


@cache
def _tox_envs() -> frozenset[str]:
    return frozenset(
        re.findall(r"^\[testenv:([a-z0-9-]+)\]", (ROOT / "tox.ini").read_text(), flags=re.M)
    )


def _resolve(c: Command) -> list[str]:
    if c.program[0] == "python":
        return [sys.executable, *c.argv[1:]]
    exe = BIN / c.program[0]
    assert exe.exists(), f"{c.where}: console script {c.program[0]} is not installed in {BIN}"
    return [str(exe), *c.argv[1:]]


@cache
def _help(argv: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def check(c: Command) -> None:
    """Fails naming the doc, the command and what is wrong with it."""
    if c.program == ("make",):
        missing = [w for w in c.words if w not in _make_targets()]
        assert not missing, f"{c.where}: `make {' '.join(c.words)}`: no Makefile target {missing}"
        return
    if c.program == ("tox",):
        return  # tox environments: checked by test_tox_environments_exist
    r = _help(tuple(_resolve(c)))
    assert r.returncode == 0, (
        f"{c.where}: `{c} --help` exited {r.returncode}: {r.stderr.strip()[-300:]}"
    )
    shown = r.stdout + r.stderr
    for opt in c.options:
        if opt in ("--help", "-h"):
            continue
        assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", shown), (
            f"{c.where}: `{c}` documents {opt}, which its --help does not list"
        )


def _warm(commands: list[Command]) -> None:
    """Run the distinct ``--help`` calls two at a time (each is a process start-up)."""
    argvs = {tuple(_resolve(c)) for c in commands if c.program[0] not in ("make", "tox")}
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(_help, argvs))


def test_parse_documented_lines() -> None:
    assert parse("dubhe-lab up [--profile FILE] [--seed N]", "x") == [
        Command(("dubhe-lab",), ("up",), ("--profile", "--seed"), "x")]
    assert [c.words for c in parse("python -m lab.l1 eth\\|sui --port N", "x")] == [
        ("eth",),
        ("sui",),
    ]
    assert parse("dubhe-config-validate FILE", "x")[0].words == ()
    assert parse("dubhe-bench scheduler --adaptive on,off  # a comment --not-an-option", "x")[
        0
    ].options == ("--adaptive",)
    assert parse("make run ARGS='--seed N'", "x")[0].words == ("run",)
    assert parse("ruff check node", "x") == []


def test_readme_command_table() -> None:
    commands = readme_table_commands()
    assert len(commands) >= 15
    _warm(commands)
    for c in commands:
        check(c)


def test_every_command_the_docs_show() -> None:
    commands = documented_commands()
    assert any(c.program == ("dubhe-node",) for c in commands)
    _warm(commands)
    failures = []
    for c in commands:
        try:
            check(c)
        except AssertionError as e:
            failures.append(str(e).splitlines()[0])
    assert not failures, "\n".join(failures)


def test_tox_environments_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"`tox -e ([a-z0-9,-]+)`", readme)
    assert m is not None
    missing = set(m.group(1).split(",")) - _tox_envs()
    assert not missing, f"README names tox environments that tox.ini lacks: {sorted(missing)}"


# Paths that exist only on some machines: a contributor's home, the lab's shared notes, a worktree.
_OUTSIDE = re.compile(r"(?<![\w.])(?:/work/|/home/|/Users/|/root/|\.\./\.\./)\S*")


def test_no_path_outside_the_repository_is_cited() -> None:
    hits = []
    for path in _tracked("*"):
        if path.suffix in {".elf", ".png", ".ico"} or not path.is_file() or path == Path(__file__):
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            for m in _OUTSIDE.finditer(line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {m.group(0)}")
    assert not hits, "cites paths outside the repository:\n" + "\n".join(hits)

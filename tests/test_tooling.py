"""The make targets and the tox environments run the same checks, and the Makefile explains itself.

README calls ``tox -e imports,lint,types,tests,scenarios`` "the same checks" as ``make test``:
these tests compare the commands (``make -n``, without running them) with tox.ini's, and the
extras tox installs with the ones ``make setup`` installs (a tox env with fewer extras type-checks
a different program: mypy then reports ``no-any-return`` where an optional package is missing).
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("imports", "lint", "types", "tests")


@cache
def make_n(*targets: str) -> tuple[str, ...]:
    """The recipe lines ``make`` would run for ``targets`` (set-up not remade)."""
    # --no-print-directory, and no MAKEFLAGS/MAKELEVEL from a `make test` this runs under:
    # a nested make prints "make[1]: Entering directory ..." lines otherwise (CI does that).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    out = subprocess.run(["make", "--no-print-directory", "-n", "-o", "setup", *targets,
                          "PYTEST_ARGS="], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return tuple(line.strip() for line in out.splitlines() if line.strip())


def _norm(line: str) -> tuple[str, ...]:
    words = shlex.split(line)
    env = [w for w in words if re.fullmatch(r"[A-Z_]+=.*", w)]
    words = [w for w in words if w not in env]
    return (*env, Path(words[0]).name, *words[1:])


def make_commands(target: str) -> list[tuple[str, ...]]:
    return [_norm(line) for line in make_n(target) if not line.startswith("echo ")]


@cache
def tox() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(ROOT / "tox.ini")
    return cp


def tox_commands(env: str) -> list[tuple[str, ...]]:
    cp = tox()
    setenv = cp.get(f"testenv:{env}", "setenv", fallback="")
    env_words = [f"{k.strip()}={v.strip()}" for k, v in
                 (item.split("=", 1) for item in setenv.splitlines() if "=" in item)]
    out = []
    for line in cp.get(f"testenv:{env}", "commands").strip().splitlines():
        line = re.sub(r"\{posargs:([^}]*)\}", r"\1", line)
        out.append(_norm(" ".join([*env_words, line])))
    return out


def tox_extras(env: str) -> set[str]:
    cp = tox()
    raw = cp.get(f"testenv:{env}", "extras", fallback=None) or cp.get("testenv", "extras")
    return {e.strip() for e in raw.split(",") if e.strip()}


def _merge_pytest(cmds: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Consecutive pytest commands with the same options as one command over all their paths."""
    out: list[tuple[str, ...]] = []
    for c in cmds:
        if out and c[:4] == ("python", "-m", "pytest", "-q") and out[-1][:4] == c[:4]:
            prev_opts = [w for w in out[-1] if not (ROOT / w).is_dir()]
            opts = [w for w in c if not (ROOT / w).is_dir()]
            if prev_opts == opts:
                paths = [w for w in out[-1] if (ROOT / w).is_dir()] + [
                    w for w in c if (ROOT / w).is_dir()]
                out[-1] = (*opts, *paths)
                continue
        out.append(c)
    return out


def test_make_test_runs_what_the_tox_envlist_runs() -> None:
    envlist = [e.strip() for e in tox().get("tox", "envlist").split(",")]
    tox_cmds = _merge_pytest([c for env in envlist for c in tox_commands(env)])
    assert make_commands("test") == tox_cmds


def test_each_single_target_matches_its_tox_env() -> None:
    for target, env in [("imports", "imports"), ("lint", "lint"), ("types", "types"),
                        ("scenarios", "scenarios"), ("nightly-tests", "nightly")]:
        assert make_commands(target) == tox_commands(env), target


def test_tox_installs_the_extras_make_setup_installs() -> None:
    m = re.search(r"pip install -q -e '\.\[([a-z,]+)\]'", (ROOT / "Makefile").read_text())
    assert m is not None
    want = set(m.group(1).split(","))
    envs = [s.removeprefix("testenv:") for s in tox().sections() if s.startswith("testenv:")]
    for env in envs:
        assert tox_extras(env) == want, f"tox env {env}: extras {sorted(tox_extras(env))}"


def test_make_test_prints_a_header_before_each_stage() -> None:
    lines = make_n("test")
    headers = [i for i, line in enumerate(lines) if line.startswith('echo "== ')]
    assert len(headers) == len(STAGES)
    for n, (i, stage) in enumerate(zip(headers, STAGES, strict=True), 1):
        assert f"== {n}/{len(STAGES)} {stage}:" in lines[i]
        assert not lines[i + 1].startswith("echo "), "a header is followed by its command"


def test_make_help_lists_every_target() -> None:
    text = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY: (.*)$", text, re.M)
    assert phony is not None
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    listed = set(re.findall(r"^  make (\S+)", out, re.M))
    assert set(phony.group(1).split()) <= listed, set(phony.group(1).split()) - listed
    # the default goal explains rather than installs
    first = subprocess.run(["make", "-n", "-s"], cwd=ROOT, capture_output=True, text=True,
                           check=True, timeout=60).stdout
    assert "pip install" not in first


# Every console script and the ``python -m`` form it is also reachable as.
MODULE_FORMS = {
    "dubhe-node": "node", "dubhe-lab": "lab", "dubhe-bench": "bench", "dubhe-proxy": "lab.proxy",
    "dubhe-l1": "lab.l1", "dubhe-config-validate": None,
}


def test_every_tool_is_a_console_script_and_a_module() -> None:
    import sys
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == set(MODULE_FORMS), "a new tool: name it dubhe-* and list it here"
    bin_dir = Path(sys.executable).parent
    for name, module in MODULE_FORMS.items():
        assert name.startswith("dubhe-")
        r = subprocess.run([str(bin_dir / name), "--help"], capture_output=True, text=True,
                           timeout=60, check=False)
        assert r.returncode == 0 and r.stdout.startswith(f"usage: {name}"), (name, r.stdout[:200])
        if module is not None:
            m = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT,
                               capture_output=True, text=True, timeout=60, check=False)
            assert m.returncode == 0 and m.stdout == r.stdout, module


def test_the_quick_start_says_where_the_tools_are() -> None:
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "source .venv/bin/activate" in quick and "make shell" in quick
    assert "shell" in re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.M)

"""The tools follow docs/cli.md: one spelling per option, help with defaults and no markup, exit
codes by meaning, and no traceback for a user error or an interrupt.

* Every ``dubhe-*`` tool is run with a missing path, a directory and a non-UTF-8 file where it
  takes a file: one clear line naming the file, exit 1 (a validator's verdict) or 2 (bad input),
  never a traceback.
* Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops the servers cleanly
  (exit 0) and a benchmark at any point (exit 130, one line, no traceback from any of its
  processes, no "Unclosed client session" warnings).
* The parsers are inspected in-process: option spellings, help texts, defaults.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import tomli_w

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


# -- the parsers, captured in-process ----------------------------------------------------------

class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def capture(main: Callable[[list[str]], Any], argv: list[str] | None = None
            ) -> argparse.ArgumentParser:
    """The parser ``main`` builds (its ``parse_args`` raises before anything runs)."""
    original = argparse.ArgumentParser.parse_args

    def grab(self: argparse.ArgumentParser, *_: Any, **__: Any) -> Any:
        raise _Captured(self)

    argparse.ArgumentParser.parse_args = grab  # type: ignore[assignment,method-assign]
    try:
        main(argv or [])
    except _Captured as c:
        return c.parser
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
    raise AssertionError(f"{main} parsed no arguments")


def bench_names() -> list[str]:
    from bench.cli import _available

    return _available()


def bench_parser_of(name: str) -> argparse.ArgumentParser:
    mod = importlib.import_module(f"bench.{name.replace('-', '_')}")
    return capture(mod.main)


def tool_parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of every tool, subcommands included, named as typed."""
    from lab.cli import parser as lab_parser
    from lab.l1.__main__ import main as l1_main
    from lab.proxy.__main__ import parse_args as proxy_args
    from node.config import validate_main
    from node.server.main import main as node_main

    yield "dubhe-node", capture(node_main)
    yield "dubhe-config-validate", capture(validate_main)
    yield "dubhe-proxy", capture(proxy_args)
    yield "dubhe-l1", capture(l1_main)
    lab = lab_parser()
    yield "dubhe-lab", lab
    for action in lab._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, p in action.choices.items():
                yield f"dubhe-lab {sub}", p
    for name in bench_names():
        yield f"dubhe-bench {name}", bench_parser_of(name)


def visible_options(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {o: a for a in p._actions if a.help != argparse.SUPPRESS for o in a.option_strings}


def all_options(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {o: a for a in p._actions for o in a.option_strings}


# -- option spellings --------------------------------------------------------------------------

def test_one_spelling_per_meaning() -> None:
    """``--config`` is a node config only; fault profiles are ``--profile``; block periods
    ``--block-time-ms``; process counts ``--processes``; output files take a FILE."""
    seen: dict[str, list[str]] = {}
    for tool, p in tool_parsers():
        for opt, action in visible_options(p).items():
            seen.setdefault(opt, []).append(tool)
            if opt in ("--json", "--csv") and action.nargs != 0 and action.metavar:
                assert action.metavar == "FILE", (tool, opt, action.metavar)
    assert sorted(seen["--config"]) == ["dubhe-node"], seen["--config"]
    for retired in ("--block-ms", "--procs"):
        assert retired not in seen, (retired, seen.get(retired))
    assert "dubhe-proxy" in seen["--profile"] and "dubhe-lab up" in seen["--profile"]
    assert {"dubhe-bench latency", "dubhe-bench ws-fanout", "dubhe-bench submit",
            "dubhe-l1"} <= set(seen["--block-time-ms"])


@pytest.mark.parametrize(("tool", "argv", "dest", "value"), [
    ("dubhe-proxy", ["--config", "p.toml"], "profile", Path("p.toml")),
    ("dubhe-proxy", ["-config", "t.json", "-host", "0.0.0.0", "-port", "1", "-seed", "3"],
     "profile", Path("t.json")),
    ("dubhe-bench latency", ["--block-ms", "50", "--procs", "3"], "block_ms", 50),
    ("dubhe-bench ws-fanout", ["--block-ms", "50", "--procs", "3"], "procs", 3),
])
def test_old_spellings_still_parse(tool: str, argv: list[str], dest: str, value: object) -> None:
    p = dict(tool_parsers())[tool]
    args = p.parse_args(argv)
    assert getattr(args, dest) == value
    if tool == "dubhe-proxy" and "-host" in argv:
        assert (args.host, args.port, args.seed) == ("0.0.0.0", 1, 3)


# -- help texts --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", bench_names())
def test_bench_help_is_whole_plain_sentences_with_defaults(name: str) -> None:
    p = bench_parser_of(name)
    text = p.format_help()
    assert "`" not in text, f"reST markup in dubhe-bench {name} --help"
    assert p.description and p.description.rstrip().endswith("."), p.description
    assert "Exit status: 0" in text and "not judged" in text
    for opt, action in visible_options(p).items():
        if opt in ("-h", "--help") or not opt.startswith("--"):
            continue
        assert action.help, f"dubhe-bench {name} {opt}: no help text"
        shown = p.formatter_class(prog=p.prog)._get_help_string(action) or ""
        if action.default not in (None, False):
            assert "default" in shown, (name, opt, shown)
        assert "`" not in shown


def test_every_option_of_every_tool_says_what_it_is_and_its_default() -> None:
    missing = []
    for tool, p in tool_parsers():
        for opt, action in visible_options(p).items():
            if opt in ("-h", "--help") or not opt.startswith("--"):
                continue
            shown = p.formatter_class(prog=p.prog)._get_help_string(action) or ""
            if not shown:
                missing.append(f"{tool} {opt}: no help")
            elif action.default not in (None, False, []) and "default" not in shown:
                missing.append(f"{tool} {opt}: default {action.default!r} not shown")
    assert not missing, "\n".join(missing)


def test_validator_help_and_usage_exit_codes() -> None:
    for argv, rc in ((["--help"], 0), ([], 2)):
        r = subprocess.run([str(BIN / "dubhe-config-validate"), *argv], capture_output=True,
                           text=True, timeout=60, check=False)
        assert r.returncode == rc, (argv, r.stdout, r.stderr)


# -- bad paths and encodings -------------------------------------------------------------------

def _bad_files(tmp: Path) -> dict[str, Path]:
    latin1 = tmp / "latin1.toml"
    latin1.write_bytes(b'name = "caf\xe9"\n')
    adir = tmp / "a-directory"
    adir.mkdir()
    return {"missing": tmp / "missing.toml", "directory": adir, "not-utf8": latin1}


#: (argv with {f} for the bad file, the exit codes allowed)
FILE_TAKERS: list[tuple[list[str], tuple[int, ...]]] = [
    (["dubhe-node", "--config", "{f}"], (2,)),
    (["dubhe-config-validate", "{f}"], (1,)),
    (["dubhe-proxy", "--port", "0", "--profile", "{f}"], (2,)),
    (["dubhe-proxy", "--check", "{f}"], (1,)),
    (["dubhe-lab", "up", "--runs-root", "{tmp}/runs", "--profile", "{f}"], (2,)),
    (["dubhe-lab", "up", "--runs-root", "{tmp}/runs", "--spec", "{f}"], (2,)),
    (["dubhe-lab", "swarm", "--runs-root", "{tmp}/runs", "--profile", "{f}"], (2,)),
    (["dubhe-lab", "compose", "--spec", "{f}"], (2,)),
    (["dubhe-lab", "fault", "apply", "{f}", "--runs-root", "{tmp}/runs"], (2,)),
    (["dubhe-lab", "nightly", "--dry-run", "--trends", "{f}", "--out", "{tmp}/n"], (2,)),
]
#: Output files: a directory that does not exist, a directory given as the file.
OUTPUT_TAKERS = [["dubhe-bench", "vm", "--json", "{tmp}/no-such-dir/out.json"],
                 ["dubhe-bench", "vm", "--json", "{tmp}/a-directory"],
                 ["dubhe-bench", "scheduler", "--csv", "{tmp}/no-such-dir/cells.csv"]]


def test_no_traceback_for_a_bad_path_or_encoding(tmp_path: Path) -> None:
    bad = _bad_files(tmp_path)
    runs = [([a.replace("{f}", str(path)).replace("{tmp}", str(tmp_path)) for a in argv],
             codes, kind)
            for argv, codes in FILE_TAKERS for kind, path in bad.items()]
    runs += [([a.replace("{tmp}", str(tmp_path)) for a in argv], (2,), "output")
             for argv in OUTPUT_TAKERS]

    def run(item: tuple[list[str], tuple[int, ...], str]) -> str | None:
        argv, codes, kind = item
        r = subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True,
                           timeout=120, check=False, cwd=tmp_path)
        out = r.stdout + r.stderr
        shown = " ".join(argv)
        if "Traceback" in out:
            return f"{shown} ({kind}): traceback\n{out[-800:]}"
        if r.returncode not in codes:
            return f"{shown} ({kind}): exit {r.returncode}, expected {codes}: {out[-300:]}"
        named = [a for a in argv if str(tmp_path) in a and "runs" not in a and a != "{tmp}/n"]
        if not any(a in out for a in named):
            return f"{shown} ({kind}): the message does not name the file: {out[-300:]}"
        return None

    with ThreadPoolExecutor(2) as pool:
        failures = [f for f in pool.map(run, runs) if f]
    assert not failures, "\n".join(failures)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), \
        "a bad input left a run directory behind"


# -- Ctrl-C --------------------------------------------------------------------------------------

def _ctrl_c(argv: list[str], ready: str, *, after_s: float = 0.0, cwd: Path | None = None,
            ) -> tuple[int, str]:
    """Start ``argv`` in its own process group, wait for a line containing ``ready``, then send
    SIGINT to the whole group (what a terminal's Ctrl-C does); returns (exit code, output)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, cwd=cwd)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            lines.append(line)
            if ready in line or time.monotonic() > deadline:
                break
        assert any(ready in line for line in lines), "".join(lines)
        time.sleep(after_s)
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return proc.returncode, "".join(lines) + rest


def test_ctrl_c_stops_the_servers_cleanly(tmp_path: Path) -> None:
    conf = tmp_path / "node.toml"
    conf.write_bytes(tomli_w.dumps({
        "api": {"rpc_bind": "127.0.0.1:0", "ws_bind": "127.0.0.1:0"},
        "state": {"path": str(tmp_path / "data")},
        "security": {"audit_log": str(tmp_path / "audit.jsonl")}}).encode())
    servers = [
        ([str(BIN / "dubhe-node"), "--config", str(conf)], "dubhe-node ready"),
        ([str(BIN / "dubhe-proxy"), "--port", "0"], "API on"),
        ([str(BIN / "dubhe-l1"), "eth", "--port", "0", "--seed", "1"], "lab.l1 eth seed=1"),
    ]
    for argv, ready in servers:
        rc, out = _ctrl_c(argv, ready, cwd=tmp_path)
        assert rc == 0 and "Traceback" not in out, (argv[0], rc, out[-1500:])


#: Interrupted in the default run (a node + wrk + client processes; forked subscriber processes;
#: an in-process VM); every other benchmark in the slow run (make nightly-tests).
FAST_BENCHES = {"rpc", "ws-fanout", "vm"}


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=[] if n in FAST_BENCHES else [pytest.mark.slow])
    for n in bench_names() if n != "loader"  # the loader bench is over in ~3 s
])
def test_ctrl_c_during_a_benchmark(name: str, tmp_path: Path) -> None:
    """The issue's case: ~59 lines of tracebacks from several processes and "Unclosed
    connector" warnings. Now: one line, exit 130, whichever process got the signal."""
    rc, out = _ctrl_c([str(BIN / "dubhe-bench"), name], "   ", after_s=1.0, cwd=ROOT)
    assert rc == 130, out[-2000:]
    assert "Traceback" not in out and "Unclosed" not in out and "Exception ignored" not in out, \
        out[-3000:]
    assert out.rstrip().endswith(f"dubhe-bench {name}: interrupted; nothing was judged"), \
        out[-500:]
    assert not re.search(r"^\s*(PASS|MISS)\s", out, re.M)

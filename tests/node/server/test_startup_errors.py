"""What ``dubhe-node`` says when it cannot start: the key to change and how to find who is in
the way, one line per problem, never a traceback (exit 2: the config file is invalid; exit 1:
this machine cannot run it)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import tomli_w
from server_harness import RunningNode, make_config


def _run(tmp_path: Path, cfg: dict[str, Any],
         name: str = "c.toml") -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    path.write_bytes(tomli_w.dumps(cfg).encode())
    return subprocess.run([sys.executable, "-m", "node", "--config", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_port_in_use_names_the_key_and_how_to_find_the_holder(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = _run(tmp_path, make_config(tmp_path, api={"ws_bind": f"127.0.0.1:{port}"}))
    assert r.returncode == 1, r.stderr
    assert f'api.ws_bind = "127.0.0.1:{port}": the address is already in use' in r.stderr
    assert f"ss -ltnp 'sport = :{port}'" in r.stderr and "change api.ws_bind" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_locked_state_directory_names_the_key_and_the_lock(tmp_path: Path) -> None:
    first = RunningNode(tmp_path / "a", make_config(tmp_path / "a")).start()
    try:
        cfg = make_config(tmp_path / "b", state={"path": str(tmp_path / "a" / "data")})
        (tmp_path / "b").mkdir()
        r = _run(tmp_path / "b", cfg)
    finally:
        assert first.stop() == 0
    assert r.returncode == 1, r.stderr
    lock = f"{tmp_path}/a/data/LOCK"
    assert f'state.path = "{tmp_path}/a/data": the RocksDB directory is in use by another ' \
        f"process (find it with: fuser -v {lock}, or lsof {lock})" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_config_exits_2_listing_every_problem(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("")
    cfg = make_config(tmp_path, api={"max_batch": 0}, state={"path": str(a_file / "data")})
    r = _run(tmp_path, cfg)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert [line.split(": ")[2] for line in lines] == ["api.max_batch"], lines
    # once the values are valid, the paths are checked before anything is opened; a valid
    # config this machine cannot run exits 1
    r = _run(tmp_path, make_config(tmp_path, state={"path": str(a_file / "data")}))
    assert r.returncode == 1
    assert r.stderr.startswith(f"dubhe-node: {tmp_path}/c.toml: state.path: ")
    assert r.stderr.strip().endswith(f"{a_file} is not a directory")

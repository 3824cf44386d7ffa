"""``dubhe-lab compose``: a Compose file from the lab's own plan, valid for docker-compose, that
runs the lab with its links and profile."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from docker_helpers import client, nothing_left
from lab_helpers import get_status
from timing import scaled, wait_until

from lab.container.compose import to_yaml
from lab.orchestrate import LabHandle, RunDir
from lab.orchestrate.docker import _existing_subnets, pick_subnet

CLI = [sys.executable, "-m", "lab"]
PROFILES = Path(__file__).resolve().parents[3] / "fault-profiles"
COMPOSE = shutil.which("docker-compose")


def _compose(tmp_path: Path, *extra: str) -> tuple[str, Path]:
    run = tmp_path / "lab"
    done = subprocess.run([*CLI, "compose", "--dir", str(run), "--seed", "7", *extra],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"lab files in {run}" in done.stderr
    return done.stdout, run


def _free_port_base(n: int = 32) -> int:
    """A base with ``n`` free loopback ports above it (another test session may hold 18100+)."""
    rng = random.Random()
    for _ in range(100):
        base = rng.randrange(20000, 30000, n)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no run of free loopback ports found")


def test_yaml_writer_quotes_what_compose_would_misread() -> None:
    text = to_yaml({"a": {"b": ["x", 1, True], "c": "$$HOME: yes", "d": []},
                    "e": [{"f": "g", "h": {"i": "j"}}]})
    assert text == ('a:\n  b: ["x", 1, true]\n  c: "$$HOME: yes"\n  d: []\n'
                    'e:\n  - f: "g"\n    h:\n      i: "j"\n')


def test_compose_file_from_the_plan(tmp_path: Path) -> None:
    text, run = _compose(tmp_path, "--profile", str(PROFILES / "polkadot-aggressive-timeout.toml"))
    desc = json.loads((run / "lab.json").read_text())
    assert desc["backend"] == "compose" and desc["seed"] == 7
    for name in desc["components"]:
        assert f"\n  {name}:\n" in text
    # Every host port on loopback; the log wrapper's $ escaped from Compose's interpolation.
    assert '"127.0.0.1:18000:8545"' in text and "0.0.0.0:" not in text.split("ports")[1][:50]
    assert '"exec \\"$$@\\" >>\\"$$DUBHE_LOG\\" 2>&1"' in text
    # The proxy starts with the links, and the profile's toxics on client-edge.
    links = (run / "proxy" / "links.toml").read_text()
    assert links.count("[[proxies]]") == len(desc["links"])
    assert 'type = "cut"' in links and 'type = "ws_swallow"' in links
    # nginx lets the lab network read its status page (the host's traffic arrives from it).
    assert "allow 10.213.255.0/24;" in (run / "nginx" / "nginx.conf").read_text()


def test_compose_refuses_a_profile_naming_a_missing_link(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "b"\n[[proxies]]\nlink = "node-l1-eth"\n')
    spec = tmp_path / "spec.toml"
    spec.write_text("l1 = []\n")
    done = subprocess.run([*CLI, "compose", "--dir", str(tmp_path / "lab"), "--spec", str(spec),
                           "--profile", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "node-l1-eth" in done.stderr
    assert not (tmp_path / "lab").exists()  # nothing written


@pytest.mark.skipif(COMPOSE is None, reason="docker-compose is not installed")
def test_docker_compose_config_accepts_it(tmp_path: Path) -> None:
    text, _ = _compose(tmp_path, "--profile", str(PROFILES / "mobile-3g.toml"))
    (tmp_path / "lab.compose.yml").write_text(text)
    assert COMPOSE is not None
    done = subprocess.run([COMPOSE, "-f", str(tmp_path / "lab.compose.yml"), "config"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ipv4_address: 10.213.255." in done.stdout


@pytest.mark.docker
@pytest.mark.skipif(COMPOSE is None, reason="docker-compose is not installed")
async def test_docker_compose_runs_the_lab(tmp_path: Path, lab_image: str) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text("l1 = []\n")
    # a free port range and subnet: a fixed pair collided when two test sessions ran at once
    subnet = pick_subnet(await asyncio.to_thread(_existing_subnets, client()))
    text, run = _compose(tmp_path, "--spec", str(spec), "--port-base", str(_free_port_base()),
                         "--subnet", str(subnet))
    file = tmp_path / "lab.compose.yml"
    file.write_text(text)
    assert COMPOSE is not None
    base = [COMPOSE, "-f", str(file), "-p", f"dubhetest{tmp_path.name[-10:].lower()}"]
    up = await asyncio.to_thread(subprocess.run, [*base, "up", "-d"], capture_output=True,
                                 text=True, timeout=180)
    try:
        assert up.returncode == 0, up.stderr
        handle = LabHandle.attach(RunDir(run))

        async def through_the_edge() -> bool:
            try:
                return await get_status(handle.endpoints["health"], 2) == 200
            except Exception:
                return False

        # client -> client-edge (proxy) -> nginx -> nginx-node-rpc (proxy) -> node
        await wait_until(through_the_edge, scaled(60), what="/health through the edge")
        assert set(await handle.links.active()) == {
            "nginx-node-rpc", "nginx-node-ws", "client-edge", "client-edge-tls"}
        await handle.close()
    finally:
        await asyncio.to_thread(subprocess.run, [*base, "down"], capture_output=True, text=True,
                                timeout=120)
    assert nothing_left(run.name)

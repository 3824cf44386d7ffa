"""config.toml's commented L1 example works against ``dubhe-l1`` as shipped: uncommented, with
the mocks started as its comment says (ports swapped for free ones), the node follows both chains
with every endpoint "up" and nothing logged about chains. A node configured for another chain id
shows the endpoint "wrong_chain" in dubhe_status instead of "up"."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from server_harness import RunningNode, make_config  # type: ignore[import-not-found]
from timing import wait_until  # type: ignore[import-not-found]

from lab.clients.rpc import HttpRpc

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.timeout(120)


def example() -> tuple[str, list[str]]:
    """The uncommented example (TOML text) and the mock commands its comment gives."""
    text = (ROOT / "config.toml").read_text().split("# Optional L1 adapters", 1)[1]
    commands = re.findall(r"^#\s+(dubhe-l1 .*?)(?:\s+#.*)?$", text, re.M)
    body = text[text.index("# [adapters.ethereum]"):]
    return "\n".join(line.removeprefix("# ").removeprefix("#") for line in
                     body.splitlines()), commands


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def mocks(commands: list[str], ports: dict[str, int]) -> Iterator[None]:
    with ExitStack() as stack:
        for cmd in commands:
            argv = [str(ports.get(w, w)) for w in cmd.split()]
            proc = subprocess.Popen([sys.executable, "-m", "lab.l1", *argv[1:], "--seed", "3",
                                     "--block-time-ms", "200"], stdout=subprocess.PIPE, text=True)
            stack.callback(lambda p=proc: (p.terminate(), p.wait(10)))
            assert proc.stdout is not None
            for _ in range(argv.count("--port") or 1):
                assert proc.stdout.readline().startswith("lab.l1 ")
        yield


def test_the_example_names_what_dubhe_l1_serves() -> None:
    import argparse

    from lab.l1 import __main__ as l1_main

    text, commands = example()
    cfg = tomllib.loads(text)
    eth, sui = cfg["adapters"]["ethereum"], cfg["adapters"]["sui"]
    captured: dict[str, Any] = {}

    def grab(self: argparse.ArgumentParser, *a: Any, **k: Any) -> Any:
        captured["defaults"] = {a.dest: a.default for a in self._actions}
        raise SystemExit(0)

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = grab  # type: ignore[assignment,method-assign]
    try:
        with pytest.raises(SystemExit):
            l1_main.main([])
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
    assert eth["chain_id"] == captured["defaults"]["chain_id"]
    for ep in (eth, *eth["endpoints"], sui):
        assert ep["ws_url"] == ep["rpc_url"].replace("http://", "ws://") + "/ws"
    assert commands == ["dubhe-l1 eth --port 18545 --port 28545", "dubhe-l1 sui --port 19000"]


async def _l1_status(node: RunningNode) -> dict[str, Any]:
    async with HttpRpc(node.rpc) as rpc:
        status: dict[str, Any] = (await rpc.call("dubhe_status"))["l1"]
        return status


async def test_the_example_follows_the_shipped_mocks(tmp_path: Path) -> None:
    text, commands = example()
    ports = {p: _free_port() for p in ("18545", "28545", "19000")}
    for old, new in ports.items():
        text = text.replace(f":{old}", f":{new}")
    adapters = tomllib.loads(text)["adapters"]
    with mocks(commands, ports):
        node = RunningNode(tmp_path, make_config(tmp_path, adapters=adapters)).start()
        try:
            async def all_up() -> bool:
                chains = (await _l1_status(node))["chains"]
                return all(
                    c["head"] is not None and c["head"]["number"] >= 3
                    and all(e["state"] == "up" and not e["last_error"] for e in c["endpoints"])
                    for c in chains.values()) and set(chains) == {"ethereum", "sui"}
            await wait_until(all_up, 60)
        finally:
            assert node.stop() == 0
    log = "".join(node.output)
    assert "ChainMismatch" not in log and "chain id" not in log


async def test_a_chain_mismatch_shows_in_the_endpoint_state(tmp_path: Path) -> None:
    port = _free_port()
    with mocks([f"dubhe-l1 eth --port {port}"], {}):
        adapters = {"ethereum": {"rpc_url": f"http://127.0.0.1:{port}",
                                 "ws_url": f"ws://127.0.0.1:{port}/ws", "chain_id": 1}}
        node = RunningNode(tmp_path, make_config(tmp_path, adapters=adapters)).start()
        try:
            async def marked() -> bool:
                eps = (await _l1_status(node))["chains"]["ethereum"]["endpoints"]
                return bool(eps) and eps[0]["state"] == "wrong_chain"
            await wait_until(marked, 30)
            eth = (await _l1_status(node))["chains"]["ethereum"]
            assert eth["endpoints"][0]["last_error"] == (
                "serves chain id 1337, but adapters.ethereum.chain_id is 1")
            assert eth["head"] is None
        finally:
            assert node.stop() == 0
    log = "".join(node.output)
    assert log.count("serves chain id 1337, but adapters.ethereum.chain_id is 1: it is not used") \
        == 1, log[-2000:]

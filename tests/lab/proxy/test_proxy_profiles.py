"""Fault profiles: every shipped file loads; mistakes name the file and the key."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from proxy_helpers import open_through

from lab import links as lab_links
from lab.proxy.client import ToxiproxyClient
from lab.proxy.profiles import ProfileError, load_profile, parse_profile
from lab.proxy.server import ProxyServer

PROFILES = Path(__file__).resolve().parents[3] / "fault-profiles"
SHIPPED = sorted(PROFILES.glob("*.toml"))


def test_the_expected_profiles_ship() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"polkadot-aggressive-timeout", "flaky-l1", "mobile-3g", "high-latency-jitter",
            "connection-saturation", "l1-blackhole", "slow-close"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_profile_is_valid(path: Path) -> None:
    profile = load_profile(path)
    assert profile.name == path.stem
    assert profile.proxies and all(lab_links.get(p.link) for p in profile.proxies)


def _error(data: dict[str, object]) -> str:
    with pytest.raises(ProfileError) as info:
        parse_profile(data, "bad.toml")
    return str(info.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"name": "x", "colour": 1}, "bad.toml: profile 'x': colour: unknown key"),
        ({"proxies": []}, "bad.toml: name: required string"),
        (
            {"name": "x", "proxies": [{"link": "moon"}]},
            "bad.toml: profile 'x': proxies[0].link: unknown link 'moon'",
        ),
        (
            {"name": "x", "proxies": [{"link": "client-edge", "toxics": [{"type": "lag"}]}]},
            "bad.toml: profile 'x': proxies[0].toxics[0].type: unknown toxic type 'lag'",
        ),
        (
            {
                "name": "x",
                "proxies": [
                    {
                        "link": "client-edge",
                        "toxics": [{"type": "latency", "attributes": {"latncy": 1}}],
                    }
                ],
            },
            "bad.toml: profile 'x': proxies[0].toxics[0].attributes.latncy: unknown attribute "
            "(known: jitter, latency)",
        ),
        (
            {
                "name": "x",
                "proxies": [
                    {
                        "link": "client-edge",
                        "toxics": [{"type": "latency", "attributes": {"latency": "fast"}}],
                    }
                ],
            },
            "bad.toml: profile 'x': proxies[0].toxics[0].attributes.latency: must be integer, got "
            "'fast'",
        ),
        (
            {
                "name": "x",
                "proxies": [
                    {"link": "client-edge", "toxics": [{"type": "latency", "toxicity": 2}]}
                ],
            },
            "bad.toml: profile 'x': proxies[0].toxics[0].toxicity: must be a number in [0, 1]",
        ),
        (
            {
                "name": "x",
                "proxies": [
                    {
                        "link": "client-edge",
                        "toxics": [{"type": "latency", "schedule": {"start": 5, "stop": 1}}],
                    }
                ],
            },
            "bad.toml: profile 'x': proxies[0].toxics[0].schedule.stop: must be greater than start",
        ),
        (
            {
                "name": "x",
                "proxies": [
                    {"link": "client-edge", "toxics": [{"type": "latency", "stream": "sideways"}]}
                ],
            },
            "bad.toml: profile 'x': proxies[0].toxics[0].stream: must be 'upstream' or "
            "'downstream'",
        ),
        (
            {"name": "x", "proxies": [{"link": "client-edge"}, {"link": "client-edge"}]},
            "bad.toml: profile 'x': proxies[1].name: duplicate proxy name 'client-edge'",
        ),
    ],
)
def test_errors_name_file_and_key(data: dict[str, object], expected: str) -> None:
    assert _error(data).startswith(expected)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("name = \n")
    with pytest.raises(ProfileError, match=r"broken.toml: invalid TOML"):
        load_profile(bad)


def test_cli_reports_bad_profile_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "typo.toml"
    bad.write_text('name = "t"\n[[proxies]]\nlink = "client-edge"\n'
                   '[[proxies.toxics]]\ntype = "latency"\nattributes = { latncy = 5 }\n')
    run = subprocess.run([sys.executable, "-m", "lab.proxy", "--port", "0", "--config", str(bad)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    assert "typo.toml: profile 't': proxies[0].toxics[0].attributes.latncy: unknown attribute" \
        in run.stderr
    assert "Traceback" not in run.stderr


async def test_server_loads_profile_with_its_seed(tmp_path: Path, echo_server: str) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(f'''
name = "p"
seed = 99
[[proxies]]
link = "client-edge"
listen = "127.0.0.1:0"
upstream = "{echo_server}"
[[proxies.toxics]]
type = "latency"
attributes = {{ latency = 50 }}
''')
    async with ProxyServer("127.0.0.1", 0, config=profile) as server, ToxiproxyClient(
        server.base_url
    ) as tp:
        assert server.seed == 99
        proxy = await tp.proxy("client-edge")
        assert [t.type for t in proxy.toxics] == ["latency"]
        reader, writer = await open_through(proxy.listen)
        writer.write(b"p")
        assert await asyncio.wait_for(reader.readexactly(1), 2) == b"p"
        writer.close()


async def test_client_applies_profile_to_any_server(tp: ToxiproxyClient, echo_server: str) -> None:
    profile = load_profile(PROFILES / "flaky-l1.toml", addresses={
        "node-l1-eth": ("127.0.0.1:0", echo_server), "node-l1-sui": ("127.0.0.1:0", echo_server)})
    proxies = await tp.apply_profile(profile)
    assert [p.name for p in proxies] == ["node-l1-eth", "node-l1-sui"]
    eth = await tp.proxy("node-l1-eth")
    assert [t.name for t in eth.toxics] == ["eth-reset", "eth-timeout", "eth-latency"]
    assert eth.toxics[0].toxicity == pytest.approx(0.1)


def test_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lab.proxy.__main__ import main

    bad = tmp_path / "bad.toml"
    bad.write_text('name = "b"\n[[proxies]]\nlink = "moon"\n')
    assert main(["--check", *map(str, SHIPPED)]) == 0
    assert main(["--check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.toml: profile 'b': proxies[0].link: unknown link 'moon'" in err


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
async def test_shipped_profile_runs_traffic(path: Path, echo_server: str) -> None:
    addresses = {link: ("127.0.0.1:0", echo_server) for link in lab_links.STANDALONE_ADDRESSES}
    profile = load_profile(path, addresses=addresses)
    async with ProxyServer("127.0.0.1", 0, seed=profile.seed) as server, ToxiproxyClient(
        server.base_url
    ) as tp:
        await tp.apply_profile(profile)
        for spec in profile.proxies:
            proxy = await tp.proxy(spec.name)
            assert sorted(t.name for t in proxy.toxics) == sorted(b["name"] for b in spec.toxics)
            _, writer = await open_through(proxy.listen)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            await asyncio.sleep(0.05)
            writer.close()
        await asyncio.sleep(0.05)
        events = await tp.events()
        assert not [e for e in events if e["event"] == "toxic_error"]
        assert sum(e["event"] == "toxic_added" for e in events) == sum(
            len(p.toxics) for p in profile.proxies)


async def test_polkadot_profile_reproduces_1006_storm() -> None:
    """The seed incident as data: every WebSocket client through the edge ends with 1006."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed

    async def quiet(ws: ServerConnection) -> None:
        try:
            await ws.wait_closed()
        except ConnectionClosed:
            pass

    async with serve(quiet, "127.0.0.1", 0, compression=None) as upstream:
        port = next(iter(upstream.sockets)).getsockname()[1]
        profile = load_profile(PROFILES / "polkadot-aggressive-timeout.toml",
                               addresses={"client-edge": ("127.0.0.1:0", f"127.0.0.1:{port}")})
        async with ProxyServer("127.0.0.1", 0, seed=profile.seed) as server, ToxiproxyClient(
            server.base_url
        ) as tp:
            await tp.apply_profile(profile)
            edge = await tp.proxy("client-edge")
            t0 = time.monotonic()
            clients = [await connect(f"ws://{edge.listen}/", ping_interval=0.5, ping_timeout=0.5,
                                     close_timeout=0.5) for _ in range(10)]
            await asyncio.wait_for(asyncio.gather(*(c.wait_closed() for c in clients)), 5)
            took = time.monotonic() - t0
            assert [c.close_code for c in clients] == [1006] * 10
            assert took < 3.5
            fired = {e["toxic"] for e in await tp.events() if e["event"] == "toxic_fired"}
            assert "idle-cut" in fired

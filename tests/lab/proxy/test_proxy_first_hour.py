"""What a Toxiproxy user meets first: every profile problem at once with ranges checked,
Toxiproxy's flags and JSON config, a printed list of what a profile created, INFO logs of proxy
and toxic changes, and a client whose ``proxy.toxics`` follows its own changes."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from lab.proxy.client import ToxiproxyClient
from lab.proxy.profiles import ProfileError, load_profile, parse_profile

BAD = """\
name = "typos"

[[proxies]]
link = "client-edge"
listen = "127.0.0.1:99999"
upstream = "127.0.0.1:0"

[[proxies.toxics]]
type = "latency"
attributes = { latency = -100 }

[[proxies.toxics]]
type = "bandwidth"
attributes = { rate = -1 }

[[proxies.toxics]]
type = "ws_close"
attributes = { code = 99 }
"""


def test_every_problem_of_a_profile_at_once_with_ranges(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD)
    with pytest.raises(ProfileError) as e:
        load_profile(bad)
    assert dict(e.value.problems) == {
        "proxies[0].listen": "'127.0.0.1:99999': the port must be a number in 0..65535",
        "proxies[0].upstream": "'127.0.0.1:0': the port must be a number in 1..65535",
        "proxies[0].toxics[0].attributes.latency": "-100 is out of range (must be >= 0)",
        "proxies[0].toxics[1].attributes.rate": "-1 is out of range (must be >= 0)",
        "proxies[0].toxics[2].attributes.code": "99 is out of range (must be 1000..4999)",
    }
    r = subprocess.run([sys.executable, "-m", "lab.proxy", "--check", str(bad)],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1
    assert r.stderr.count(f"error: {bad}: profile 'typos': ") == 5, r.stderr


def test_unknown_names_suggest_the_close_one() -> None:
    with pytest.raises(ProfileError) as e:
        parse_profile({"name": "x", "seeed": 1, "proxies": [
            {"link": "client-egde", "toxics": [{"type": "latncy"}]}]}, "p.toml")
    problems = dict(e.value.problems)
    assert "did you mean 'seed'?" in problems["seeed"]
    assert "did you mean 'client-edge'?" in problems["proxies[0].link"]
    assert "did you mean 'latency'?" in problems["proxies[0].toxics[0].type"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    import os

    return subprocess.Popen([sys.executable, "-m", "lab.proxy", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.terminate()
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    return out, err


def test_toxiproxy_flags_and_json_config(tmp_path: Path) -> None:
    """``toxiproxy-server -host H -port P -config toxiproxy.json``, as Toxiproxy users type it."""
    listen = _free_port()
    conf = tmp_path / "toxiproxy.json"
    conf.write_text(json.dumps([
        {"name": "redis", "listen": f"127.0.0.1:{listen}", "upstream": "127.0.0.1:6379",
         "enabled": True},
        {"name": "pg", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:5432", "enabled": False},
    ]))
    proc = _serve(["-host", "127.0.0.1", "-port", "0", "-config", str(conf), "-seed", "5"])
    assert proc.stdout is not None
    first = proc.stdout.readline()
    m = re.search(r"API on (http://127\.0\.0\.1:\d+) seed=5 ", first)
    assert m, first
    lines = [proc.stdout.readline() for _ in range(3)]
    with urllib.request.urlopen(m.group(1) + "/proxies", timeout=5) as resp:
        proxies = json.loads(resp.read())
    _stop(proc)
    assert set(proxies) == {"redis", "pg"}
    assert proxies["redis"]["listen"] == f"127.0.0.1:{listen}" and proxies["redis"]["enabled"]
    assert proxies["pg"]["enabled"] is False and proxies["redis"]["toxics"] == []
    assert lines[0].startswith(f"== profile toxiproxy ({conf}): 2 proxies")
    assert lines[1].strip() == (f"proxy redis: 127.0.0.1:{listen} -> 127.0.0.1:6379; toxics: "
                                "none")
    assert lines[2].strip() == "proxy pg: 127.0.0.1:0 -> 127.0.0.1:5432 (disabled); toxics: none"


def test_bad_toxiproxy_json_lists_every_entry_problem(tmp_path: Path) -> None:
    conf = tmp_path / "toxiproxy.json"
    conf.write_text(json.dumps([{"name": "a", "upstream": "nohost"},
                                {"upstream": "127.0.0.1:1", "listn": "x"}]))
    with pytest.raises(ProfileError) as e:
        load_profile(conf)
    assert [k for k, _ in e.value.problems] == ["[0].upstream", "[1].listn", "[1].name"]


def test_a_profile_prints_each_proxy_it_creates(tmp_path: Path) -> None:
    up, listen = _free_port(), _free_port()
    prof = tmp_path / "p.toml"
    prof.write_text(f"""name = "p"
[[proxies]]
link = "client-edge"
listen = "127.0.0.1:{listen}"
upstream = "127.0.0.1:{up}"
[[proxies.toxics]]
type = "latency"
attributes = {{ latency = 300, jitter = 100 }}
schedule = {{ start = 0, stop = 5000 }}
""")
    proc = _serve(["--port", "0", "--profile", str(prof)])
    assert proc.stdout is not None
    head = [proc.stdout.readline() for _ in range(3)]
    out, _ = _stop(proc)
    out = "".join(head) + out
    assert f"== profile p ({prof}): 1 proxies" in out
    assert (f"   proxy client-edge: 127.0.0.1:{listen} -> 127.0.0.1:{up}; toxics: "
            "latency_downstream[latency downstream latency=300,jitter=100 start=0,stop=5000]"
            ) in out


async def test_log_level_info_logs_proxy_and_toxic_changes_and_upstream_failures() -> None:
    proc = _serve(["--port", "0"], env={"LOG_LEVEL": "info"})
    assert proc.stdout is not None
    base = re.search(r"API on (\S+) ", proc.stdout.readline()).group(1)  # type: ignore[union-attr]
    dead = _free_port()  # nothing listens there: the dial fails
    async with ToxiproxyClient(base, timeout=10) as tp:
        proxy = await tp.create_proxy("dead", upstream=f"127.0.0.1:{dead}")
        async with proxy.toxic("latency", attributes={"latency": 10}):
            pass
        with socket.create_connection((proxy.host, proxy.port), timeout=5) as s:
            s.settimeout(5)
            assert s.recv(1) == b""  # closed: the upstream refused
        await proxy.delete()
    _, err = _stop(proc)
    assert re.search(r"INFO lab\.proxy: proxy_created proxy=dead listen=127\.0\.0\.1:\d+ "
                     rf"upstream=127\.0\.0\.1:{dead}", err), err
    assert "INFO lab.proxy: toxic_added proxy=dead toxic=latency_downstream type=latency" in err
    assert "INFO lab.proxy: toxic_removed proxy=dead toxic=latency_downstream" in err
    assert "WARNING lab.proxy: upstream_failed proxy=dead" in err
    assert "INFO lab.proxy: proxy_deleted proxy=dead" in err


async def test_client_toxics_follow_its_own_changes(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("fh-toxics", upstream=echo_server)
    async with proxy.toxic("latency", name="lag", attributes={"latency": 5}) as t:
        assert [x.name for x in proxy.toxics] == ["lag"]
        await proxy.update_toxic("lag", attributes={"latency": 7})
        assert proxy.toxics[0].attributes["latency"] == 7
        other = await tp.proxy("fh-toxics")  # another view adds one: visible after list_toxics
        await other.add_toxic("bandwidth", name="bw", attributes={"rate": 100})
        assert [x.name for x in proxy.toxics] == ["lag"]
        assert sorted(x.name for x in await proxy.list_toxics()) == ["bw", "lag"]
        assert t.name == "lag"
    assert [x.name for x in proxy.toxics] == ["bw"]
    assert [x.name for x in await proxy.list_toxics()] == ["bw"]

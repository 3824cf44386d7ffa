"""The mock L1's admin language refuses what it does not understand, naming it: an unknown key of
a command (``{"cmd": "produce", "cnt": 3}`` used to produce one block), an unknown command (the
answer lists the valid ones). Every body lab/l1/README.md shows parses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import pytest

from lab.l1 import admin
from lab.l1.admin import KEYS, AdminError, parse
from lab.l1.harness import mock_l1, rpc

README = Path(__file__).resolve().parents[3] / "lab" / "l1" / "README.md"


def test_unknown_key_is_refused_with_the_command_keys() -> None:
    with pytest.raises(AdminError) as e:
        parse({"cmd": "produce", "cnt": 3}, address_len=20)
    assert str(e.value) == (
        "cnt: unknown key for produce; did you mean 'count'? produce takes: count")
    with pytest.raises(AdminError, match=r"^force: unknown key for pause; pause takes: no other"):
        parse({"cmd": "pause", "force": True}, address_len=20)


def test_unknown_command_lists_the_commands() -> None:
    with pytest.raises(AdminError) as e:
        parse({"cmd": "produse"}, address_len=20)
    msg = str(e.value)
    assert msg.startswith("cmd: unknown command 'produse'; did you mean 'produce'? commands: ")
    assert all(c in msg for c in KEYS)


def _readme_bodies() -> list[dict[str, object]]:
    section = README.read_text().split("## Admin", 1)[1].split("\n## ", 1)[0]
    rows = "\n".join(line for line in section.splitlines() if line.startswith("| `"))
    spans = re.findall(r"`(\{\"cmd\".*?\})`", rows)
    return [json.loads(s) for s in spans]


def test_every_command_is_documented_with_a_body_that_parses() -> None:
    bodies = _readme_bodies()
    assert {b["cmd"] for b in bodies} == set(KEYS)
    for b in bodies:
        address_len = 32 if "modules" in b else 20
        cmd = parse(b, address_len=address_len)
        assert cmd is not None
        # every key the README shows is one the command takes
        assert set(b) - {"cmd"} <= set(KEYS[str(b["cmd"])]), b


async def test_over_the_wire_a_typo_produces_nothing() -> None:
    async with mock_l1("eth", seed=1, block_time_ms=0) as l1:
        ep = l1.endpoints[0]
        before = int((await rpc(ep.http_url, "eth_blockNumber"))["result"], 16)
        async with aiohttp.ClientSession() as s:
            async with s.post(ep.admin_url, json={"cmd": "produce", "cnt": 3}) as r:
                assert r.status == 400
                assert "did you mean 'count'" in (await r.json())["error"]
        assert int((await rpc(ep.http_url, "eth_blockNumber"))["result"], 16) == before
        assert admin.KEYS["produce"] == ("count",)

"""``toxic_fired`` events and the activation metric are exact (issue: a restart is not a firing).

A continuous toxic fires once per connection when it starts acting there; a moment toxic (cut,
close, reset) fires once per action. Chain churn (other toxics added, updated, removed) restarts
stubs but never adds a firing. The metric always equals the number of events. All on the
virtual clock over the in-memory network.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest
from vclock import virtual_time
from vlab import VirtualLab, ws_connect, ws_echo


def _fired(lab: VirtualLab, toxic: str | None = None) -> list[dict[str, Any]]:
    return [e for e in lab.events("toxic_fired") if toxic is None or e["toxic"] == toxic]


def _client(writer: asyncio.StreamWriter) -> str:
    host, port = writer.get_extra_info("sockname")[:2]
    return f"{host}:{port}"


@virtual_time
async def test_the_issue_reproducer_fires_once() -> None:
    # Two WebSockets a and b; A aimed at a, B aimed at b; delete B, then A.
    async with VirtualLab() as lab:
        proxy = await lab.proxy("repro", await ws_echo(lab))
        a = await ws_connect(lab, proxy)
        b = await ws_connect(lab, proxy)
        await lab.add(proxy, {"type": "latency", "name": "A", "attributes": {"latency": 0},
                              "target": {"client": _client(a.writer)}})
        await lab.add(proxy, {"type": "latency", "name": "B", "attributes": {"latency": 0},
                              "target": {"client": _client(b.writer)}})
        await proxy.toxics.remove("B")
        await proxy.toxics.remove("A")
        assert [(e["toxic"], e["conn"]) for e in _fired(lab)] == [("A", 1), ("B", 2)]
        assert lab.activations(toxic="A") == 1 and lab.activations(toxic="B") == 1


@virtual_time
async def test_churn_never_refires_a_continuous_toxic() -> None:
    rng = random.Random(21)
    async with VirtualLab() as lab:
        proxy = await lab.proxy("churn", await lab.echo())
        conns = [await lab.connect(proxy) for _ in range(10)]
        await lab.add(proxy, {"type": "latency", "name": "everyone",
                              "attributes": {"latency": 5}})
        await lab.add(proxy, {"type": "slicer", "name": "aimed", "stream": "upstream",
                              "attributes": {"average_size": 3},
                              "target": {"client": _client(conns[3][1])}})
        names: list[str] = []
        for i in range(60):
            roll = rng.random()
            if names and roll < 0.4:
                await proxy.toxics.remove(names.pop(rng.randrange(len(names))))
            elif roll < 0.55:
                await proxy.toxics.update("everyone", {"attributes": {"latency": rng.randrange(9)}})
            else:
                name = f"t{i}"
                target = ({"client": _client(rng.choice(conns)[1])} if rng.random() < 0.5
                          else None)
                body: dict[str, Any] = {"type": rng.choice(["noop", "latency"]), "name": name,
                                        "stream": rng.choice(["upstream", "downstream"])}
                if target is not None:
                    body["target"] = target
                await lab.add(proxy, body)
                names.append(name)
            reader, writer = rng.choice(conns)
            writer.write(b"ping")
            await asyncio.sleep(rng.random() * 0.01)
        for _, writer in conns:  # every byte still arrives
            writer.write(b"!")
        for reader, _ in conns:
            data = await asyncio.wait_for(reader.read(1 << 16), 5)
            while not data.endswith(b"!"):
                data += await asyncio.wait_for(reader.read(1 << 16), 5)
        everyone = Counter(e["conn"] for e in _fired(lab, "everyone"))
        assert everyone == Counter(range(1, 11))  # once per connection, whatever the churn
        assert [e["conn"] for e in _fired(lab, "aimed")] == [4]
        assert lab.activations(toxic="everyone") == 10 and lab.activations(toxic="aimed") == 1
        assert lab.activations() == len(_fired(lab))  # the metric is the event count


@pytest.mark.parametrize("kind", ["cut", "reset_peer", "limit_data", "slow_close"])
@virtual_time
async def test_moment_toxics_fire_once_per_action_under_churn(kind: str) -> None:
    rng = random.Random(kind)
    bodies: dict[str, dict[str, Any]] = {
        "cut": {"type": "cut", "attributes": {"after": 20}},
        "reset_peer": {"type": "reset_peer", "stream": "upstream",
                       "attributes": {"timeout": 20}},
        "limit_data": {"type": "limit_data", "attributes": {"bytes": 3}},
        "slow_close": {"type": "slow_close", "stream": "upstream",
                       "attributes": {"delay": 20}},
    }
    actions = 12
    async with VirtualLab() as lab:
        proxy = await lab.proxy("moments", await lab.echo())
        bystander = await lab.connect(proxy)
        for i in range(actions):
            reader, writer = await lab.connect(proxy)
            name = f"{kind}{i}"
            await lab.add(proxy, dict(bodies[kind], name=name,
                                      target={"client": _client(writer)}))
            writer.write(b"data")
            if kind == "slow_close":
                writer.write_eof()
            for j in range(3):  # churn while the action is pending: restarts its stub
                await asyncio.sleep(0.004)
                await lab.add(proxy, {"type": "noop", "name": f"n{i}.{j}",
                                      "stream": rng.choice(["upstream", "downstream"])})
            try:
                await asyncio.wait_for(reader.read(), 5)
                await asyncio.wait_for(reader.read(), 5)
            except ConnectionResetError:
                pass
            await proxy.toxics.remove(name)
            for j in range(3):
                await proxy.toxics.remove(f"n{i}.{j}")
        fired = [e for e in _fired(lab) if e["type"] == kind]  # the noops fire as well
        assert len(fired) == actions, fired
        assert [e["conn"] for e in fired] == list(range(2, 2 + actions))
        assert all("action" in e for e in fired)
        assert lab.activations(type=kind) == actions
        assert lab.activations() == len(_fired(lab))
        bystander[1].write(b"?")  # the bystander was never touched
        assert await asyncio.wait_for(bystander[0].readexactly(1), 5) == b"?"


@virtual_time
async def test_ws_cut_storm_counts_every_cut() -> None:
    # The 1006 storm in small: cut one subscriber at a time, it reconnects, 30 times.
    async with VirtualLab() as lab:
        proxy = await lab.proxy("storm", await ws_echo(lab))
        subscribers = [await ws_connect(lab, proxy) for _ in range(5)]
        cuts = 0
        for i in range(30):
            k = i % len(subscribers)
            ws = subscribers[k]
            await lab.add(proxy, {"type": "ws_cut", "name": f"cut{i}",
                                  "target": {"client": _client(ws.writer)}})
            ws.send("x" * 100)
            assert await ws.event() is None and ws.proto.close_code == 1006
            cuts += 1
            await proxy.toxics.remove(f"cut{i}")
            subscribers[k] = await ws_connect(lab, proxy)
        assert len(_fired(lab)) == cuts == lab.activations()
        assert {e["action"] for e in _fired(lab)} == {"cut"}


@virtual_time
async def test_schedule_windows_fire_once_per_window_per_connection() -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("windows", await lab.echo())
        for _ in range(3):
            await lab.connect(proxy)
        await lab.add(proxy, {"type": "latency", "name": "w",
                              "schedule": {"start": 10, "stop": 20, "repeat": 50}})
        await asyncio.sleep(0.2)  # windows open at 10, 60, 110, 160
        await lab.add(proxy, {"type": "noop"})  # a restart inside no window
        assert Counter(e["conn"] for e in _fired(lab, "w")) == {1: 4, 2: 4, 3: 4}
        assert lab.activations(toxic="w") == 12


@virtual_time
async def test_flap_fires_once_per_down() -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("flapper", await lab.echo())
        await lab.connect(proxy)
        await lab.add(proxy, {"type": "flap", "attributes": {"up": 100, "down": 100}})
        await asyncio.sleep(0.650)  # down at 100, 300, 500
        await lab.add(proxy, {"type": "noop"})
        fired = _fired(lab, "flap_downstream")
        assert [e["action"] for e in fired] == ["down"] * 3 and "conn" not in fired[0]
        assert lab.activations(toxic="flap_downstream") == 3

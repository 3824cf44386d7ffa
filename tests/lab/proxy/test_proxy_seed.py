"""A working seed: the same seed and connection sequence replay the same draws."""

from __future__ import annotations

import asyncio

from proxy_helpers import open_through

from lab.proxy import rng
from lab.proxy.client import ToxiproxyClient
from lab.proxy.server import ProxyServer


async def _fired(seed: int, echo: str) -> list[int]:
    async with ProxyServer("127.0.0.1", 0, seed=seed) as server, ToxiproxyClient(
        server.base_url
    ) as tp:
        proxy = await tp.create_proxy("seeded", upstream=echo)
        await proxy.add_toxic("latency", toxicity=0.5, attributes={"latency": 1, "jitter": 1})
        for _ in range(16):
            reader, writer = await open_through(proxy.listen)
            writer.write(b"s")
            await asyncio.wait_for(reader.readexactly(1), 2)
            writer.close()
        return [e["conn"] for e in await tp.events() if e["event"] == "toxic_fired"]


async def test_same_seed_same_toxicity_draws(echo_server: str) -> None:
    a = await _fired(7, echo_server)
    assert a == await _fired(7, echo_server)
    assert 0 < len(a) < 16
    assert a != await _fired(8, echo_server)


def test_derived_generators_are_stable() -> None:
    assert rng.derive(1, "p", 3, "up") == rng.derive(1, "p", 3, "up")
    assert rng.derive(1, "p", 3, "up") != rng.derive(1, "p", 3, "down")
    assert rng.generator(5, "x").random() == rng.generator(5, "x").random()

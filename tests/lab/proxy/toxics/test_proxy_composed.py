"""Toxics composed on one stream, a chunk interrupted mid-release, and attribute coercion.

On the virtual clock: bandwidth then latency (each slice keeps its chunk's arrival time, so the
latency is counted from the arrival, not from the slice's release), latency then bandwidth (the
latency moves the chunk's time forward, so the bandwidth schedule starts after it), and a
bandwidth toxic changed while it holds the rest of a chunk (the rest is put back, whole, and
released at the new rate)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from vclock import ms, virtual_time
from vlab import VirtualLab

from lab.proxy.toxics import Toxic, ToxicAttributeError

PAYLOAD = bytes(range(250)) * 1000  # 250,000 bytes, position-dependent


async def _through(chain: list[dict[str, object]], change: dict[str, object] | None = None,
                   at_ms: float = 0, payload: bytes = PAYLOAD) -> list[tuple[float, int]]:
    """Send ``payload`` upstream through ``chain`` (in order); optionally update the first toxic
    with ``change`` at ``at_ms``. Returns the sink's (ms since the write, bytes so far)."""
    async with VirtualLab() as lab:
        upstream, arrivals, done = await lab.sink(len(payload))
        proxy = await lab.proxy("composed", upstream)
        for body in chain:
            await lab.add(proxy, {"stream": "upstream", **body})
        _, writer = await lab.connect(proxy)
        t0 = lab.now()
        writer.write(payload)
        if change is not None:
            await asyncio.sleep(at_ms / 1000)
            await proxy.toxics.update(str(chain[0]["name"]), change)
        assert await asyncio.wait_for(done, 10) == payload  # whole, in order, once
        return [(ms(t - t0), n) for t, n in arrivals]


BANDWIDTH = {"type": "bandwidth", "name": "bw", "attributes": {"rate": 1000}}  # 1000 B/ms


@virtual_time
async def test_bandwidth_then_latency_counts_the_latency_from_the_arrival() -> None:
    # 100 kB slices leave the bandwidth toxic at 100, 200 and 250 ms, each stamped with the
    # chunk's arrival (0): a 150 ms latency holds the first until 150 and lets the rest pass.
    got = await _through([BANDWIDTH, {"type": "latency", "name": "lat",
                                      "attributes": {"latency": 150}}])
    assert got == [(150, 100_000), (200, 200_000), (250, 250_000)]


@virtual_time
async def test_latency_then_bandwidth_starts_the_schedule_after_the_delay() -> None:
    got = await _through([{"type": "latency", "name": "lat", "attributes": {"latency": 150}},
                          BANDWIDTH])
    assert got == [(250, 100_000), (350, 200_000), (400, 250_000)]


@virtual_time
async def test_a_chunk_interrupted_mid_release_is_put_back_whole() -> None:
    # At 150 ms the first slice is out and the toxic waits to release the second; the update
    # interrupts it: the 150 kB it still holds go back to the stream and the new toxic (2000
    # B/ms, 200 kB slices) releases them at once as one slice, 75 ms later.
    got = await _through([BANDWIDTH], {"attributes": {"rate": 2000}}, at_ms=150)
    assert got == [(100, 100_000), (225, 250_000)]


@virtual_time
async def test_a_delayed_chunk_interrupted_is_delayed_from_its_arrival_still() -> None:
    got = await _through([{"type": "latency", "name": "lat", "attributes": {"latency": 300}}],
                         {"attributes": {"latency": 200}}, at_ms=100)
    assert got == [(200, 250_000)]


@dataclass
class _Probe(Toxic):
    """Every attribute kind the toxics use, for coercion (never registered)."""

    type_name = "probe"
    flag: bool = False
    count: int = 0
    ratio: float = 1.0
    label: str = ""
    limit: int | None = 5


@pytest.mark.parametrize(("key", "raw", "value"), [
    ("flag", True, True), ("flag", False, False), ("flag", 1, True), ("flag", 0, False),
    ("count", 3, 3), ("count", 3.0, 3), ("count", -2, -2),
    ("ratio", 2, 2.0), ("ratio", 0.25, 0.25),
    ("label", "x", "x"),
    ("limit", None, None), ("limit", 7, 7), ("limit", 7.0, 7),
])
def test_attributes_are_coerced_as_the_json_allows(key: str, raw: object, value: object) -> None:
    got = getattr(_Probe.from_attributes({key: raw}), key)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(("key", "raw", "message"), [
    ("flag", 2, "must be bool, got 2"), ("flag", "true", "must be bool, got 'true'"),
    ("flag", None, "must be bool, got None"),
    ("count", True, "must be integer, got True"), ("count", 3.5, "must be integer, got 3.5"),
    ("count", None, "must be integer, got None"), ("count", "3", "must be integer, got '3'"),
    ("ratio", False, "must be float, got False"), ("ratio", "1", "must be float, got '1'"),
    ("label", 1, "must be str, got 1"),
    ("limit", "x", "must be integer or NoneType, got 'x'"),
    ("limit", 1.5, "must be integer or NoneType, got 1.5"),
])
def test_a_wrong_attribute_type_is_refused_naming_the_key(key: str, raw: object,
                                                          message: str) -> None:
    with pytest.raises(ToxicAttributeError) as e:
        _Probe.from_attributes({key: raw})
    assert str(e.value) == f"probe.attributes.{key}: {message}" and e.value.key == key


def test_an_update_merges_over_the_current_attributes() -> None:
    base = _Probe.from_attributes({"count": 4, "flag": 1})
    assert (base.count, base.flag, base.limit) == (4, True, 5)
    merged = _Probe.from_attributes({"limit": None}, base)
    assert (merged.count, merged.flag, merged.limit) == (4, True, None)
    assert merged.attributes() == {"flag": True, "count": 4, "ratio": 1.0, "label": "",
                                   "limit": None}
    with pytest.raises(ToxicAttributeError, match=r"^probe\.attributes\.nope: unknown attribute "
                       r"\(known: count, flag, label, limit, ratio\)$"):
        _Probe.from_attributes({"nope": 1})
    with pytest.raises(ToxicAttributeError) as e:
        _Probe.from_attributes([1])  # type: ignore[arg-type]
    assert (str(e.value), e.value.key, e.value.toxic_type) == (
        "probe.attributes.*: attributes must be a JSON object", "*", "probe")
    with pytest.raises(ToxicAttributeError) as e:
        _Bare.from_attributes({"x": 1})
    assert str(e.value) == "bare.attributes.x: unknown attribute (known: none)"
    assert _Bare.from_attributes({}).attributes() == {}


@dataclass
class _Bare(Toxic):
    """A toxic without attributes."""

    type_name = "bare"


@virtual_time
async def test_a_jitter_of_1_ms_still_draws() -> None:
    from lab.proxy import rng

    async with VirtualLab(seed=5) as lab:
        proxy = await lab.proxy("jit1", await lab.echo())
        reader, writer = await lab.connect(proxy)
        await lab.add(proxy, {"type": "latency", "attributes": {"latency": 100, "jitter": 1}})
        took = []
        for _ in range(12):
            t0 = lab.now()
            writer.write(b"j")
            await asyncio.wait_for(reader.readexactly(1), 5)
            took.append(ms(lab.now() - t0))
    gen = rng.generator(proxy.link_seed(1, "down"), "latency_downstream")
    gen.random()  # the toxicity draw
    assert took == [100 + gen.randrange(-1, 1) for _ in range(12)] and 99 in took


@virtual_time
async def test_a_rate_of_1_kb_per_s_is_a_limit() -> None:
    # rate <= 0 is unlimited; 1 is the smallest limit: 1,000 bytes a second, 100-byte slices
    got = await _through([{"type": "bandwidth", "name": "bw1", "attributes": {"rate": 1}}],
                         payload=b"r" * 250)
    assert got == [(100, 100), (200, 200), (250, 250)]

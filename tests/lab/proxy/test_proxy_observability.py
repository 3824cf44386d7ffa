"""Live metrics (they move while a connection is open) and the event log."""

from __future__ import annotations

import asyncio
import re

from proxy_helpers import open_through
from timing import wait_until

from lab.proxy.client import ToxiproxyClient


def _value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_byte_counters_move_while_connection_is_open(tp: ToxiproxyClient,
                                                            echo_server: str) -> None:
    proxy = await tp.create_proxy("metrics", upstream=echo_server)
    reader, writer = await open_through(proxy.listen)
    writer.write(b"m" * 1000)
    await asyncio.wait_for(reader.readexactly(1000), 2)
    text = await tp.metrics()
    labels = {"proxy": "metrics", "listener": proxy.listen, "upstream": echo_server}
    # Toxiproxy only counts when the connection closes; here the socket is still open.
    assert _value(text, "toxiproxy_proxy_received_bytes_total", direction="upstream",
                  **labels) == 1000
    assert _value(text, "toxiproxy_proxy_sent_bytes_total", direction="downstream",
                  **labels) == 1000
    assert _value(text, "dubhe_proxy_open_connections", proxy="metrics") == 1
    writer.close()

    async def closed() -> bool:
        return _value(await tp.metrics(), "dubhe_proxy_open_connections", proxy="metrics") == 0

    await wait_until(closed, what="the open-connections gauge back to 0")
    text = await tp.metrics()
    assert _value(text, "dubhe_proxy_connections_total", proxy="metrics") == 1


async def test_toxic_activations_are_counted(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("acts", upstream=echo_server)
    await proxy.add_toxic("latency", name="lat", attributes={"latency": 1})
    writers = []
    for _ in range(3):
        r, w = await open_through(proxy.listen)
        w.write(b"x")  # an echo proves the links are up
        await asyncio.wait_for(r.readexactly(1), 5)
        writers.append(w)
    text = await tp.metrics()
    assert _value(text, "dubhe_proxy_toxic_activations_total", proxy="acts", toxic="lat") == 3
    for w in writers:
        w.close()


async def test_event_log_records_toxic_lifecycle(tp: ToxiproxyClient, echo_server: str) -> None:
    before = await tp.events()
    since = before[-1]["seq"] if before else 0
    proxy = await tp.create_proxy("ev", upstream=echo_server)
    reader, writer = await open_through(proxy.listen)
    writer.write(b"x")  # an echo proves the links are up
    await asyncio.wait_for(reader.readexactly(1), 5)
    await proxy.add_toxic("latency", attributes={"latency": 5})
    await proxy.update_toxic("latency_downstream", attributes={"latency": 6})
    await proxy.remove_toxic("latency_downstream")
    events = [e for e in await tp.events(since) if e.get("proxy") == "ev"]
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["proxy_enabled", "proxy_created"]
    for k in ("toxic_added", "toxic_fired", "toxic_updated", "toxic_removed"):
        assert k in kinds
    assert kinds.index("toxic_added") < kinds.index("toxic_fired") < kinds.index("toxic_removed")
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and all(isinstance(e["time"], float) for e in events)
    fired = next(e for e in events if e["event"] == "toxic_fired")
    assert fired["conn"] == 1 and fired["stream"] == "downstream"
    writer.close()


async def test_metrics_exposition_format(tp: ToxiproxyClient) -> None:
    text = await tp.metrics()
    assert re.search(r"^# TYPE toxiproxy_proxy_received_bytes_total counter$", text, re.M)
    assert re.search(r"^# TYPE toxiproxy_proxy_sent_bytes_total counter$", text, re.M)


async def test_metrics_can_be_switched_off() -> None:
    from lab.proxy.client import NotFound
    from lab.proxy.server import ProxyServer

    async with ProxyServer("127.0.0.1", 0, metrics=False) as server, ToxiproxyClient(
        server.base_url
    ) as tp:
        try:
            await tp.metrics()
        except NotFound as exc:
            assert exc.message == "404 page not found"
        else:
            raise AssertionError(
                "expected 404 with metrics off, as Toxiproxy without -proxy-metrics"
            )

"""Container-level faults and what a peer sees of each (the notes' table, asserted).

kill, stop/start and pause/resume run in ``test_docker_lab`` (the local lab's own test, with the
same effects). Here: a partition (``disconnect``/``reconnect``: an open stream stalls without
closing and resumes with nothing lost; a new connection gets no answer) and the cuts in the
component's network namespace (``reset``: open connections end at once, new ones are refused;
``drop``: everything hangs), each undone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson
import pytest
import pytest_asyncio
import websockets
from lab_helpers import get_status, rpc, wait_for_status
from timing import scaled
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from lab.orchestrate import Lab, LabSpec
from lab.orchestrate.docker import DockerBackend
from lab.pytest_plugin import _runs_root

pytestmark = [pytest.mark.docker, pytest.mark.lab, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lab(lab_image: str, pytestconfig: pytest.Config) -> AsyncIterator[Lab]:
    # Fast blocks: a stream of heads through client-edge -> nginx -> nginx-node-ws -> node.
    spec = LabSpec(l1=(), block_time_ms=100)  # type: ignore[arg-type]
    running = await Lab.start(spec, backend=DockerBackend(image=lab_image),
                              runs_root=_runs_root(pytestconfig))
    try:
        yield running
    finally:
        await running.down()


async def _subscribe(lab: Lab) -> ClientConnection:
    ws = await websockets.connect(lab.endpoints["ws"], open_timeout=10, ping_interval=None)
    await ws.send(orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                "params": ["newHeads"]}))
    await asyncio.wait_for(ws.recv(), 10)
    return ws


async def _head(ws: ClientConnection, timeout_s: float) -> int:
    note = orjson.loads(await asyncio.wait_for(ws.recv(), timeout_s))
    return int(note["params"]["result"]["number"], 16)


async def test_partition_stalls_open_streams_and_reconnect_resumes_them(lab: Lab) -> None:
    ws = await _subscribe(lab)
    try:
        last = await _head(ws, 10)
        await lab.disconnect("node")
        # Heads already in flight may still arrive; then nothing, and no close either.
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                last = await _head(ws, 0.3)
            except TimeoutError:
                pass
        with pytest.raises(TimeoutError):
            await _head(ws, 1.5)
        assert ws.close_code is None  # hanging, not closed
        # A new connection to the node gets no answer either.
        with pytest.raises((TimeoutError, OSError, RuntimeError)):
            await rpc(lab.endpoints["node_rpc"], "eth_blockNumber", timeout_s=1.0)
        await lab.reconnect("node")
        # The stalled stream resumes on the same connection, and nothing was lost: TCP
        # delivers what the node sent meanwhile.
        nxt = await _head(ws, scaled(20))
        assert nxt == last + 1
        assert ws.close_code is None
        assert int(await rpc(lab.endpoints["node_rpc"], "eth_blockNumber"), 16) > nxt
    finally:
        await ws.close()


async def test_reset_cut_ends_open_connections_and_refuses_new_ones(lab: Lab) -> None:
    ws = await _subscribe(lab)
    try:
        await _head(ws, 10)
        t0 = time.monotonic()
        await lab.cut("node")
        with pytest.raises(ConnectionClosed):
            while True:  # the next head's ACK from the proxy is answered with a reset
                await _head(ws, 5)
        assert time.monotonic() - t0 < scaled(3)
        assert ws.close_code == 1006  # nginx closed the client side without a close frame
        # New connections through the edge: nginx's upstream is refused, 502 at once.
        t1 = time.monotonic()
        assert await get_status(lab.endpoints["health"], timeout_s=5) == 502
        assert time.monotonic() - t1 < scaled(2)
    finally:
        await lab.uncut("node")
        await ws.close()
    await wait_for_status(lab.endpoints["health"], 200, timeout_s=scaled(15))


async def test_drop_cut_hangs_and_uncut_restores(lab: Lab) -> None:
    await lab.cut("node", mode="drop")
    try:
        assert await get_status(lab.endpoints["node_health"], timeout_s=1.0) == 0
    finally:
        await lab.uncut("node")
    await wait_for_status(lab.endpoints["health"], 200, timeout_s=scaled(15))
    assert lab.state_of("node") == "running"


async def test_actions_by_name(lab: Lab) -> None:
    await lab.act("pause", "node")
    assert lab.state_of("node") == "paused"
    assert await get_status(lab.endpoints["node_health"], timeout_s=0.5) == 0
    await lab.act("unpause", "node")
    await wait_for_status(lab.endpoints["node_health"], 200)
    await lab.act("restart", "node")
    assert lab.state_of("node") == "running"
    await wait_for_status(lab.endpoints["health"], 200, timeout_s=scaled(15))

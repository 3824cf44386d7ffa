"""Admin control in-process: production pause/resume against a fake, the log level, and the
admin gate every dubhe_admin_ method sits behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from inproc import InProcess, RpcFault  # type: ignore[import-not-found]

from node.core.block import ZERO_HASH, BlockHeader
from node.server.methods.control import ControlMethods

HEAD = BlockHeader(7, ZERO_HASH, 1_000, ZERO_HASH, ZERO_HASH, ZERO_HASH, 0, 0)


class FakeProduction:
    """Pausing waits for ``block_done`` (a block in progress), as the real loop does, then
    answers with the last committed block."""

    def __init__(self) -> None:
        self.paused = False
        self.block_done = asyncio.Event()
        self.queued: list[dict[str, Any]] = []

    async def pause(self) -> BlockHeader | None:
        self.paused = True
        await self.block_done.wait()
        return HEAD

    def resume(self) -> None:
        self.paused = False

    def queued_deploys(self) -> list[dict[str, Any]]:
        return self.queued


async def test_pause_answers_after_the_block_in_progress_and_resume() -> None:
    prod = FakeProduction()
    rpc = InProcess(ControlMethods(prod, set_level=lambda lv: None))
    reply = asyncio.create_task(rpc.call("dubhe_admin_pauseProduction", admin=True))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert prod.paused and not reply.done()
    prod.queued.append({"address": "0x01"})
    prod.block_done.set()
    assert await reply == {"paused": True, "lastBlock": "0x7",
                           "lastBlockHash": "0x" + HEAD.hash.hex(),
                           "queuedDeploys": [{"address": "0x01"}]}
    assert await rpc.call("dubhe_admin_resumeProduction", admin=True) is True
    assert not prod.paused


async def test_pause_is_bounded_by_the_request_timeout() -> None:
    rpc = InProcess(ControlMethods(FakeProduction(), set_level=lambda lv: None), timeout_s=0.01)
    with pytest.raises(RpcFault) as e:
        await rpc.call("dubhe_admin_pauseProduction", admin=True)
    assert e.value.code == -32005 and "timed out" in e.value.message


async def test_log_level() -> None:
    levels: list[str] = []
    rpc = InProcess(ControlMethods(FakeProduction(), set_level=levels.append))
    assert await rpc.call("dubhe_admin_setLogLevel", "DEBUG", admin=True) == "DEBUG"
    assert levels == ["DEBUG"]
    with pytest.raises(RpcFault) as e:
        await rpc.call("dubhe_admin_setLogLevel", "LOUD", admin=True)
    assert e.value.code == -32602 and "(level)" in e.value.message and levels == ["DEBUG"]


@pytest.mark.parametrize("method", ["dubhe_admin_pauseProduction", "dubhe_admin_resumeProduction",
                                    "dubhe_admin_setLogLevel"])
async def test_every_control_method_needs_the_admin_token(method: str) -> None:
    prod = FakeProduction()
    rpc = InProcess(ControlMethods(prod, set_level=lambda lv: None))
    with pytest.raises(RpcFault) as e:
        await rpc.call(method, "INFO")
    assert e.value.code == -32010
    assert not prod.paused and rpc.metrics.unauthorized._value.get() == 1

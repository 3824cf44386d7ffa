"""dubhe_status and dubhe_getL1Head in-process, against fakes of their sources."""

from __future__ import annotations

from typing import Any

import pytest
from inproc import InProcess, RpcFault  # type: ignore[import-not-found]

from node.server.methods.l1 import L1Methods
from node.server.methods.node_info import NodeInfoMethods


class FakeStatus:
    def __init__(self) -> None:
        self.calls = 0

    def status(self) -> dict[str, Any]:
        self.calls += 1
        return {"height": 7, "paused": False, "l1": None}


class FakeL1:
    def __init__(self, heads: dict[str, Any]) -> None:
        self._heads = heads

    @property
    def chains(self) -> tuple[str, ...]:
        return tuple(self._heads)

    def heads(self) -> dict[str, Any]:
        return self._heads


async def test_status_is_the_sources_document() -> None:
    src = FakeStatus()
    rpc = InProcess(NodeInfoMethods(src))
    assert await rpc.call("dubhe_status") == {"height": 7, "paused": False, "l1": None}
    with pytest.raises(RpcFault) as e:
        await rpc.call("dubhe_status", "verbose")
    assert e.value.code == -32602 and src.calls == 1


async def test_l1_heads_of_all_or_one_followed_chain() -> None:
    head = {"number": 12, "hash": "0x" + "ab" * 32, "timestampMs": 5}
    rpc = InProcess(L1Methods(FakeL1({"ethereum": head, "sui": None})))
    assert await rpc.call("dubhe_getL1Head") == {"ethereum": head, "sui": None}
    assert await rpc.call("dubhe_getL1Head", "ethereum") == head
    assert await rpc.call("dubhe_getL1Head", "sui") is None
    with pytest.raises(RpcFault) as e:
        await rpc.call("dubhe_getL1Head", "bitcoin")
    assert e.value.code == -32602
    assert "(chain): not a followed chain; followed: ['ethereum', 'sui']" in e.value.message


async def test_l1_heads_when_nothing_is_followed() -> None:
    rpc = InProcess(L1Methods(FakeL1({})))
    assert await rpc.call("dubhe_getL1Head") == {}
    with pytest.raises(RpcFault) as e:
        await rpc.call("dubhe_getL1Head", "ethereum")
    assert "followed: none" in e.value.message

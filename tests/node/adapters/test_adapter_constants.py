"""The adapters and the mock chains agree on Dubhe's conventions (each side defines them once)."""

from __future__ import annotations

import pytest

from lab.l1 import eth_rpc, sui_rpc
from node.adapters import (
    TOPIC_CODE_DEPLOYED,
    TOPIC_CODE_UPGRADED,
    AdapterStopped,
    Endpoint,
    EthereumAdapter,
)
from node.adapters import sui as sui_adapter
from node.core.hexutil import data


def test_code_event_conventions_match() -> None:
    assert data(eth_rpc.TOPIC_CODE_DEPLOYED) == TOPIC_CODE_DEPLOYED
    assert data(eth_rpc.TOPIC_CODE_UPGRADED) == TOPIC_CODE_UPGRADED
    assert sui_rpc.REGISTRY == sui_adapter.REGISTRY
    assert sui_rpc.EVENT_MODULE == sui_adapter.EVENT_MODULE


async def test_stopped_adapter_refuses_calls_and_can_restart() -> None:
    a = EthereumAdapter([Endpoint("http://127.0.0.1:9/")], rng_seed=1)
    await a.stop()
    with pytest.raises(AdapterStopped):
        await a.get_code("0x" + "00" * 20)
    await a.start()
    assert a.rpc.session is not None
    await a.stop()

"""The lab image in a user's own testcontainers test (lab.container.tc)."""

from __future__ import annotations

import os

import pytest
from lab_helpers import rpc

pytestmark = pytest.mark.docker


async def test_a_mock_chain_from_the_lab_image(lab_image: str) -> None:
    from lab.container.tc import jsonrpc_ready, lab_container

    # Importing lab.container.tc set what this host needs (unless already set).
    assert os.environ["TESTCONTAINERS_RYUK_DISABLED"] == "true"
    assert os.environ["TESTCONTAINERS_CONNECTION_MODE"] == "docker_host"
    container = lab_container("python", "-P", "-m", "lab.l1", "eth", "--host", "0.0.0.0",
                              "--port", "8545", "--chain-id", "4242", ports=[8545],
                              image=lab_image).waiting_for(jsonrpc_ready(8545, "eth_chainId"))
    with container as l1:
        bindings = l1.get_wrapped_container().attrs["HostConfig"]["PortBindings"]
        assert bindings["8545/tcp"][0]["HostIp"] == "127.0.0.1"  # loopback only
        url = f"http://127.0.0.1:{l1.get_exposed_port(8545)}/"
        assert int(await rpc(url, "eth_chainId"), 16) == 4242

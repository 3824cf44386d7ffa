"""The lab image for your own testcontainers tests: one component in a container, ready to use.

::

    from lab.container.tc import lab_container, jsonrpc_ready

    with lab_container("python", "-P", "-m", "lab.l1", "eth", "--host", "0.0.0.0",
                       "--port", "8545", ports=[8545]).waiting_for(
            jsonrpc_ready(8545, "eth_chainId")) as l1:
        url = f"http://127.0.0.1:{l1.get_exposed_port(8545)}/"

The container runs the lab image (``make images``; :func:`lab_container` builds it if needed)
with the project source mounted read-only and on ``PYTHONPATH``, its ports published on
127.0.0.1 only (testcontainers' own ``with_bind_ports`` would publish on every interface), and
the ``dubhe.lab`` label, so ``docker ps --filter label=dubhe.lab`` finds it.

Importing this module sets the two variables testcontainers needs on a machine like ours unless
they are already set (see docs/containers.md): ``TESTCONTAINERS_RYUK_DISABLED=true`` (no reaper
image can be pulled: containers are removed when the ``with`` block ends, or by label) and
``TESTCONTAINERS_CONNECTION_MODE=docker_host`` (this host has ``/.dockerenv``, which makes
testcontainers reach ports through a gateway where nothing is published).
"""

from __future__ import annotations

import json
import os
from typing import Any

from lab.container.engine import LAB_LABEL, TESTCONTAINERS_ENV
from lab.container.recipe import PROJECT_ROOT
from lab.orchestrate.docker import PYCACHE

for _key, _value in TESTCONTAINERS_ENV.items():
    os.environ.setdefault(_key, _value)

from testcontainers.core.container import DockerContainer  # noqa: E402 - after the variables
from testcontainers.core.wait_strategies import HttpWaitStrategy  # noqa: E402


def lab_container(*argv: str, ports: list[int] | tuple[int, ...] = (), image: str | None = None,
                  **env: str) -> DockerContainer:
    """A (not yet started) testcontainers container running ``argv`` from the lab image."""
    if image is None:
        from lab.container.images import ensure_images

        image = ensure_images().lab
    source = str(PROJECT_ROOT)
    PYCACHE.mkdir(parents=True, exist_ok=True)
    container = (DockerContainer(image, init=True, labels={LAB_LABEL: "1", "dubhe.tc": "1"})
                 .with_command(list(argv))
                 .with_volume_mapping(source, source, "ro")
                 .with_volume_mapping(str(PYCACHE), str(PYCACHE), "rw")
                 .with_env("PYTHONPATH", source)
                 .with_env("PYTHONPYCACHEPREFIX", str(PYCACHE))
                 .with_env("PYTHONUNBUFFERED", "1"))
    for key, value in env.items():
        container.with_env(key, value)
    for port in ports:
        # ("127.0.0.1", None): published on loopback, on a port the engine picks.
        ports_map: dict[str, Any] = container.ports
        ports_map[f"{port}/tcp"] = ("127.0.0.1", None)
    return container


def jsonrpc_ready(port: int, method: str, timeout_s: float = 30.0) -> HttpWaitStrategy:
    """Wait until ``method`` answers on ``port`` (POST /): the lab's readiness check for a
    mock chain, as a testcontainers wait strategy."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []})
    return (HttpWaitStrategy(port, "/").with_method("POST").with_body(body)
            .with_header("Content-Type", "application/json").for_status_code(200)
            .with_poll_interval(0.05).with_startup_timeout(int(timeout_s)))

"""The swarm's user classes and mixes by name, and its accounts (no Locust import: the
orchestrating process must not be monkey-patched by gevent)."""

from __future__ import annotations

from node.core.tx import Signer

#: What each user class does (the classes live in :mod:`lab.swarm.users`).
USER_CLASSES: dict[str, str] = {
    "HeadSubscriber": "holds a newHeads subscription",
    "LogSubscriber": "holds a logs subscription (native-token transfers)",
    "RpcReader": "eth_blockNumber, eth_getBlockByNumber, eth_getBalance",
    "TxSender": "signed transfers and counter increments, nonces tracked per user",
}

#: The named mixes ``dubhe-lab swarm --mix`` accepts (class weights: heads 6, logs 1,
#: readers 2, senders 1).
MIXES: dict[str, tuple[str, ...]] = {
    "heads": ("HeadSubscriber",),
    "logs": ("LogSubscriber",),
    "readers": ("RpcReader",),
    "senders": ("TxSender",),
    "mixed": ("HeadSubscriber", "LogSubscriber", "RpcReader", "TxSender"),
}


def swarm_signer(seed: int, index: int) -> Signer:
    """The account of swarm user ``index`` for ``seed`` (a lab can fund them at genesis)."""
    return Signer.from_seed(f"swarm-{seed}-{index}".encode())

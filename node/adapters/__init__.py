"""Chain adapters: follow L1 chains (Ethereum, Sui) over flaky links and fetch contract code.

Wiring (the node's server owns the adapters; nothing here reads config)::

    from node.adapters import BackoffPolicy, EthereumAdapter, SuiAdapter, endpoint_list

    c = config.adapters.ethereum    # [adapters.ethereum]
    eth = EthereumAdapter(
        endpoint_list(c.rpc_url, c.ws_url, c.endpoints),   # primary first, then fallbacks
        chain_id=c.chain_id,
        backoff=BackoffPolicy.from_ms(c.backoff.initial_ms, c.backoff.max_ms, c.backoff.factor),
        request_timeout_s=c.backoff.request_timeout_ms / 1000,
        rng_seed=seed,              # None: random, logged and kept in ``eth.rng_seed``
        start_from=None,            # or a persisted head number: backfill from there on start
    )
    await eth.start()               # returns at once
    await eth.wait_ready(timeout_s) # optional: until the first head
    events = eth.listen()           # async iterator of NewHead | Reorg | L1Event | CodeUpgrade
    eth.head                        # Header(number, hash, parent_hash, timestamp_ms) or None
    await eth.get_code(address)     # RISC-V ELF bytes (b"" if none); works before start() too
    eth.health()                    # per endpoint: state, score, latency, counters (for /metrics)
    eth.status()                    # head, ws state, counters, health (for dubhe_status)
    await eth.stop()

``SuiAdapter(endpoint_list(...), network_type=s.network_type, package_ids=s.package_ids,
protocol=s.protocol, ...)`` (``protocol``: ``jsonrpc`` or ``graphql``) has the same shape, with
``get_package_modules(package_id) -> dict[str, bytes]`` (raises ``CodeNotFound``); its heads are
checkpoints and its ``CodeUpgrade.location`` is the new package id.

Errors: every failure of a call is an :class:`AdapterError` (peer's fault: ``AllEndpointsFailed``
after all retries, ``RpcFailure`` for a JSON-RPC error answer, ``CodeNotFound``...);
``AdapterStopped`` (our fault) after :meth:`stop`. Followers never raise: they log and retry.

Event order guarantees: ``NewHead`` numbers are consecutive and parent-linked between ``Reorg``
events; a block's ``L1Event``/``CodeUpgrade`` events follow its ``NewHead``; after a ``Reorg`` the
next ``NewHead`` is ``fork_point.number + 1`` (or a fresh start if ``fork_point`` is None).

Modules: :mod:`~node.adapters.follow` (pure following state machine), :mod:`~node.adapters.backoff`,
:mod:`~node.adapters.health`, :mod:`~node.adapters.transport` (HTTP JSON-RPC with failover),
:mod:`~node.adapters.base` (asyncio shell), :mod:`~node.adapters.ethereum`,
:mod:`~node.adapters.sui`.
"""

from node.adapters.backoff import BackoffPolicy
from node.adapters.base import ChainAdapter, EventStream
from node.adapters.errors import (
    AdapterError,
    AdapterStopped,
    AllEndpointsFailed,
    BudgetExceeded,
    EndpointUnavailable,
    MalformedResponse,
    RateLimited,
    RpcFailure,
    ServerBusy,
)
from node.adapters.ethereum import (
    TOPIC_CODE_DEPLOYED,
    TOPIC_CODE_UPGRADED,
    ChainMismatch,
    EthereumAdapter,
)
from node.adapters.events import (
    AdapterEvent,
    CodeUpgrade,
    Endpoint,
    Header,
    L1Event,
    NewHead,
    Reorg,
    endpoint_list,
)
from node.adapters.sui import CodeNotFound, SuiAdapter

__all__ = [
    "TOPIC_CODE_DEPLOYED",
    "TOPIC_CODE_UPGRADED",
    "AdapterError",
    "AdapterEvent",
    "AdapterStopped",
    "AllEndpointsFailed",
    "BackoffPolicy",
    "BudgetExceeded",
    "ChainAdapter",
    "ChainMismatch",
    "CodeNotFound",
    "CodeUpgrade",
    "Endpoint",
    "EndpointUnavailable",
    "EthereumAdapter",
    "EventStream",
    "Header",
    "L1Event",
    "MalformedResponse",
    "NewHead",
    "RateLimited",
    "Reorg",
    "RpcFailure",
    "ServerBusy",
    "SuiAdapter",
    "endpoint_list",
]

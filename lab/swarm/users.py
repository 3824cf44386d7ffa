"""Locust users speaking JSON-RPC over WebSocket to the lab (or any Dubhe/Ethereum endpoint).

What each user reports to Locust (``request_type`` / ``name``):

* every call: ``<method>`` / ``<method>`` (``dubhe_sendTransaction`` is named by what it sends:
  ``dubhe_sendTransaction:transfer``), latency from send to the response with the same id;
* every subscription notification: ``notify`` / ``<kind>`` (``newHeads``, ``logs``), latency =
  receive time - the emit time the node put in the payload (``emittedMs``, else the block's
  ``timestampMs``);
* the connection: ``WS`` / ``open`` (handshake time; a failed handshake is a failure with its
  exception), ``WS`` / ``close <code>`` (a close the user did not ask for — 1006 and any other
  abnormal code — is a failure carrying the exception), ``WS`` / ``reconnect`` (time from the
  close to being subscribed again).

After an abnormal close a user reconnects with exponential backoff and full jitter (0.1 s doubling
to 5 s), seeded from ``--lab-seed`` and the user's index, and resubscribes.
"""

from __future__ import annotations

import itertools
import random
import ssl
import time
from typing import Any, ClassVar

from locust import User, between, constant, task
from websockets.exceptions import InvalidHandshake

from lab.swarm.catalog import USER_CLASSES, swarm_signer
from lab.swarm.wsrpc import NORMAL_CLOSES, ConnectionLost, RpcError, WsRpc, emit_ms
from node.core import keys
from node.core.codec import pack_u64
from node.core.hexutil import data, parse_qty
from node.core.tx import sign_tx

_INDEX = itertools.count()
BACKOFF_BASE_S, BACKOFF_CAP_S = 0.1, 5.0


class AbnormalClose(ConnectionError):
    """The server side ended the WebSocket without the user asking (the close code says how)."""

    def __init__(self, code: int, reason: str, cause: BaseException | None) -> None:
        detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        super().__init__(f"closed {code}{f' ({reason})' if reason else ''}{detail}")
        self.code = code


def _options(user: User) -> Any:
    return user.environment.parsed_options


class JsonRpcWsUser(User):
    """Base: one WebSocket per user, JSON-RPC calls and subscriptions, reconnect on close."""

    abstract = True
    #: (kind, params) subscribed after every (re)connect.
    subscriptions: ClassVar[tuple[tuple[str, tuple[Any, ...]], ...]] = ()

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        opts = environment.parsed_options
        worker = getattr(environment.runner, "worker_index", 0) or 0
        self.index = next(_INDEX) + 100_000 * worker
        seed = getattr(opts, "lab_seed", 0) if opts is not None else 0
        self.rng = random.Random(f"{seed}/{self.index}")
        self.url = str(self.host)
        ca = getattr(opts, "lab_ca", "") if opts is not None else ""
        self.ssl_ctx = ssl.create_default_context(cafile=ca) if ca else (
            ssl.create_default_context() if self.url.startswith("wss:") else None)
        self.rpc: WsRpc | None = None
        self.stopping = False
        self.closed_at: float | None = None
        self.attempt = 0

    # -- reporting -------------------------------------------------------------------------
    def report(self, request_type: str, name: str, ms: float, length: int = 0,
               exc: BaseException | None = None) -> None:
        self.environment.events.request.fire(
            request_type=request_type, name=name, response_time=ms, response_length=length,
            exception=exc, context={"user": self.index})

    # -- connection ------------------------------------------------------------------------
    def connect(self) -> bool:
        """Open and subscribe; on failure report it and back off. Returns whether it worked."""
        t0 = time.perf_counter()
        try:
            self.rpc = WsRpc.open(self.url, ssl=self.ssl_ctx, on_notification=self.on_notification,
                                  on_close=self.on_close)
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            self.report("WS", "open", (time.perf_counter() - t0) * 1000, exc=exc)
            self.backoff()
            return False
        self.report("WS", "open", (time.perf_counter() - t0) * 1000)
        try:
            for kind, params in self.subscriptions:
                self.call("eth_subscribe", kind, *params)
        except (ConnectionLost, RpcError, TimeoutError):
            self.backoff()
            return False
        if self.closed_at is not None:
            self.report("WS", "reconnect", (time.time() - self.closed_at) * 1000)
            self.closed_at = None
        self.attempt = 0
        return True

    def backoff(self) -> None:
        self.attempt += 1
        self.wait_s(self.rng.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** self.attempt)))

    def wait_s(self, seconds: float) -> None:
        import gevent

        gevent.sleep(seconds)

    def ensure_connected(self) -> bool:
        if self.rpc is not None and self.rpc.close_code is None:
            return True
        return self.connect()

    def on_close(self, code: int, reason: str, exc: BaseException | None) -> None:
        # Every close is reported once, with its code: the user's own at the end (1000), and
        # any other — a fault may also cut a connection in the middle of that closing handshake,
        # which then ends as 1006 and counts as the failure it is.
        if not self.stopping:
            self.closed_at = time.time()
        self.report("WS", f"close {code}", 0,
                    exc=None if code in NORMAL_CLOSES else AbnormalClose(code, reason, exc))

    def on_notification(self, kind: str, message: dict[str, Any], received: float,
                        size: int = 0) -> None:
        emitted = emit_ms(message)
        latency = received * 1000 - emitted if emitted is not None else 0.0
        self.report("notify", kind, max(0.0, latency), size)

    def call(self, method: str, *params: Any, name: str | None = None) -> Any:
        """A timed call reported as ``method``; raises what :meth:`WsRpc.call` raises."""
        assert self.rpc is not None
        t0 = time.perf_counter()
        try:
            result = self.rpc.call(method, *params)
        except (RpcError, ConnectionLost, TimeoutError) as exc:
            self.report(method, name or method, (time.perf_counter() - t0) * 1000, exc=exc)
            raise
        self.report(method, name or method, (time.perf_counter() - t0) * 1000)
        return result

    def on_start(self) -> None:
        self.connect()

    def on_stop(self) -> None:
        # close() waits for the reader, which reports the close (on_close) before Locust's
        # final stats are written.
        self.stopping = True
        if self.rpc is not None and self.rpc.close_code is None:
            self.rpc.close()


class HeadSubscriber(JsonRpcWsUser):
    """Holds a newHeads subscription; the notifications are the measurement."""

    weight = 6
    wait_time = constant(0.5)
    subscriptions = (("newHeads", ()),)

    @task
    def hold(self) -> None:
        self.ensure_connected()


class LogSubscriber(JsonRpcWsUser):
    """Holds a logs subscription (every native-token Transfer event)."""

    weight = 1
    wait_time = constant(0.5)
    subscriptions = (("logs", ({"address": data(keys.NATIVE_TOKEN)},)),)

    @task
    def hold(self) -> None:
        self.ensure_connected()


class RpcReader(JsonRpcWsUser):
    """Reads: block number, latest block, balances, status."""

    weight = 2
    wait_time = between(0.2, 1.0)

    def _read(self, method: str, *params: Any) -> None:
        if self.ensure_connected():
            try:
                self.call(method, *params)
            except (RpcError, ConnectionLost, TimeoutError):
                pass  # reported

    @task(4)
    def block_number(self) -> None:
        self._read("eth_blockNumber")

    @task(2)
    def latest_block(self) -> None:
        self._read("eth_getBlockByNumber", "latest", False)

    @task(1)
    def balance(self) -> None:
        self._read("eth_getBalance", data(keys.NATIVE_TOKEN), "latest")


class TxSender(JsonRpcWsUser):
    """Signs and sends transfers and counter increments from its own account, nonces tracked
    locally (resynchronised from the node when it refuses one)."""

    weight = 1
    wait_time = between(0.5, 1.5)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        seed = getattr(environment.parsed_options, "lab_seed", 0)
        self.signer = swarm_signer(seed, self.index)
        self.chain_id: int | None = None
        self.nonce: int | None = None

    def _sync(self) -> None:
        self.chain_id = parse_qty(self.call("eth_chainId"))
        self.nonce = parse_qty(self.call("eth_getTransactionCount", data(self.signer.address),
                                         "pending"))

    def _send(self, method: str, to: bytes, args: bytes, write_set: tuple[bytes, ...]) -> None:
        if not self.ensure_connected():
            return
        try:
            if self.nonce is None or self.chain_id is None:
                self._sync()
            assert self.nonce is not None and self.chain_id is not None
            tx = sign_tx(self.signer, chain_id=self.chain_id, nonce=self.nonce, to=to,
                         method=method, args=args, write_set=write_set)
            self.call("dubhe_sendTransaction", data(tx.raw),
                      name=f"dubhe_sendTransaction:{method}")
            self.nonce += 1
        except RpcError as exc:
            if exc.code == -32003:  # rejected (nonce too low / gap after a reconnect): resync
                self.nonce = None
        except (ConnectionLost, TimeoutError):
            self.nonce = None

    @task(3)
    def transfer(self) -> None:
        to = self.rng.randbytes(20)
        amount = self.rng.randrange(0, 2)  # funded senders (genesis) move 0 or 1 unit
        self._send("transfer", keys.NATIVE_TOKEN, to + pack_u64(amount),
                   (keys.balance_key(self.signer.address), keys.balance_key(to)))

    @task(1)
    def increment(self) -> None:
        slot = f"swarm{self.index}".encode()
        self._send("increment", keys.COUNTER_DEMO, slot + pack_u64(1),
                   (keys.storage_key(keys.COUNTER_DEMO, slot),))


USERS: dict[str, type[JsonRpcWsUser]] = {
    c.__name__: c for c in (HeadSubscriber, LogSubscriber, RpcReader, TxSender)}
assert set(USERS) == set(USER_CLASSES)

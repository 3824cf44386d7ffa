"""In-process JSON-RPC: method groups behind a real Dispatcher (parameters, results and errors are
encoded exactly as on the wire), no sockets, no node process. Plus a small in-memory chain.

Imported by module name (its directory is on sys.path, like server_helpers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from node.chain.mempool import Mempool
from node.chain.producer import BlockProducer, ProducedBlock
from node.core import keys
from node.core.codec import pack_u64
from node.core.tx import Signer, Transaction, sign_tx
from node.scheduler.serial import Serial
from node.server.dispatch import Call, Dispatcher
from node.server.methods.table import MethodTable
from node.server.metrics import Metrics
from node.server.pubsub import Subscriber
from node.server.security import AuditLog, TokenBucket
from node.state.chain_store import ChainStore
from node.state.kv import MemoryKV
from node.vm.reference import MINT_AUTHORITY_SEED, ReferenceExecutor

CHAIN_ID = 0x44554248
AUTHORITY = Signer.from_seed(MINT_AUTHORITY_SEED)


class RpcFault(Exception):
    """An error response: its wire code, message and data."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data


class InProcess:
    """``await rpc.call("eth_chainId")`` against the given method groups."""

    def __init__(self, *groups: object, timeout_s: float = 5.0) -> None:
        self.table = MethodTable()
        for g in groups:
            self.table.add_group(g)
        self.metrics = Metrics()
        self.dispatcher = Dispatcher(self.table, metrics=self.metrics, audit=AuditLog(None),
                                     timeout_s=timeout_s, max_batch=10)

    async def call(self, method: str, *params: Any, admin: bool = False, transport: str = "http",
                   conn: Subscriber | None = None, tx_bucket: TokenBucket | None = None) -> Any:
        body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        out = await self.dispatcher.handle(
            body, Call(transport, ("127.0.0.1", 1), admin, None, conn=conn, tx_bucket=tx_bucket)
        )
        assert out is not None
        resp = orjson.loads(out)
        if "error" in resp:
            e = resp["error"]
            assert "Traceback" not in e["message"]
            raise RpcFault(e["code"], e["message"], e.get("data"))
        return resp["result"]


@dataclass
class MemoryChain:
    """A chain in memory with the reference executor: a real ChainStore, Mempool and producer."""

    store: ChainStore
    mempool: Mempool
    producer: BlockProducer
    nonces: dict[bytes, int]

    @classmethod
    def new(cls) -> MemoryChain:
        store = ChainStore(MemoryKV())
        producer = BlockProducer(
            store, Serial(ReferenceExecutor(AUTHORITY.address)), chain_id=CHAIN_ID
        )
        producer.genesis({}, 1_000)
        return cls(store, Mempool(store, chain_id=CHAIN_ID, max_txs=100), producer, {})

    def sign(
        self, s: Signer, to: bytes, method: str, args: bytes, write_set: tuple[bytes, ...]
    ) -> Transaction:
        nonce = self.nonces.get(s.address, 0)
        self.nonces[s.address] = nonce + 1
        return sign_tx(
            s, chain_id=CHAIN_ID, nonce=nonce, to=to, method=method, args=args, write_set=write_set
        )

    def mint(self, to: bytes, amount: int) -> Transaction:
        return self.sign(
            AUTHORITY, keys.NATIVE_TOKEN, "mint", to + pack_u64(amount), (keys.balance_key(to),)
        )

    def transfer(self, s: Signer, to: bytes, amount: int) -> Transaction:
        return self.sign(s, keys.NATIVE_TOKEN, "transfer", to + pack_u64(amount),
                         (keys.balance_key(s.address), keys.balance_key(to)))

    def block(self, *txs: Transaction, now_ms: int = 2_000) -> ProducedBlock:
        """Admit ``txs`` and commit them as the next block."""
        for tx in txs:
            self.mempool.submit_tx(tx)
        entries = self.mempool.pending(len(txs))
        b = self.producer.build(entries, now_ms)
        self.mempool.remove(entries)
        return b

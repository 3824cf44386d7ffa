"""dubhe_sendTransaction in-process, against a fake mempool."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from inproc import CHAIN_ID, InProcess, RpcFault  # type: ignore[import-not-found]

from node.core import keys
from node.core.errors import InvalidTransaction, LimitExceeded
from node.core.hexutil import data
from node.core.tx import Signer, Transaction, sign_tx
from node.server.methods.admission import AdmissionMethods
from node.server.metrics import Metrics

S = Signer.from_seed(b"admission")


@dataclass
class FakeMempool:
    refuse: Exception | None = None
    got: list[Transaction] = field(default_factory=list)

    def submit_tx(self, tx: Transaction) -> bytes:
        if self.refuse is not None:
            raise self.refuse
        self.got.append(tx)
        return tx.hash

    def __len__(self) -> int:
        return len(self.got)


def tx(nonce: int = 0) -> Transaction:
    return sign_tx(S, chain_id=CHAIN_ID, nonce=nonce, to=keys.COUNTER_DEMO, method="get", args=b"k",
                   read_set=(keys.storage_key(keys.COUNTER_DEMO, b"k"),))


def as_object(t: Transaction) -> dict[str, object]:
    return {
        "chainId": hex(t.chain_id),
        "nonce": hex(t.nonce),
        "to": data(t.to),
        "method": t.method,
        "args": data(t.args),
        "readSet": [data(k) for k in t.read_set],
        "writeSet": [],
        "gasLimit": hex(t.gas_limit),
        "publicKey": data(t.public_key),
        "signature": data(t.signature),
    }


def setup(pool: FakeMempool) -> tuple[InProcess, Metrics]:
    metrics = Metrics()
    return InProcess(AdmissionMethods(pool, metrics)), metrics


async def test_raw_and_object_forms_admit_the_same_transaction() -> None:
    pool = FakeMempool()
    rpc, metrics = setup(pool)
    t0, t1 = tx(0), tx(1)
    assert await rpc.call("dubhe_sendTransaction", data(t0.raw)) == data(t0.hash)
    assert await rpc.call("dubhe_sendTransaction", as_object(t1)) == data(t1.hash)
    assert pool.got == [t0, t1]
    assert metrics.mempool._value.get() == 2


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda o: o.update(bogus=1), "unknown field(s) ['bogus']"),
    (lambda o: o.pop("nonce"), "missing field nonce"),
    (lambda o: o.update(to="0x12"), "field to: expected 20 bytes"),
    (lambda o: o.update(args="0x" + "00" * (64 * 1024 + 1)), "field args:"),
    (lambda o: o.update(readSet="0x00"), "field readSet: expected an array of hex keys"),
])
async def test_object_field_errors_name_the_field(mutate: object, message: str) -> None:
    rpc, _ = setup(FakeMempool())
    o = as_object(tx())
    mutate(o)  # type: ignore[operator]
    with pytest.raises(RpcFault) as e:
        await rpc.call("dubhe_sendTransaction", o)
    assert e.value.code == -32602 and "invalid parameter 0 (transaction)" in e.value.message
    assert message in e.value.message


async def test_refusals_keep_their_codes_and_causes() -> None:
    pool = FakeMempool(refuse=InvalidTransaction("nonce_gap", "nonce 5 leaves a gap (next is 0)"))
    rpc, metrics = setup(pool)
    with pytest.raises(RpcFault) as e:
        await rpc.call("dubhe_sendTransaction", data(tx().raw))
    assert e.value.code == -32003 and e.value.data == {"cause": "nonce_gap"}
    assert metrics.tx_rejected.labels("nonce_gap")._value.get() == 1
    pool.refuse = LimitExceeded("mempool full (1 transactions)")
    with pytest.raises(RpcFault) as e:
        await rpc.call("dubhe_sendTransaction", data(tx().raw))
    assert e.value.code == -32005 and "mempool full" in e.value.message
    with pytest.raises(RpcFault) as e:  # not hex at all: a parameter error
        await rpc.call("dubhe_sendTransaction", "0xzz")
    assert e.value.code == -32602
    with pytest.raises(RpcFault) as e:  # hex, but not a transaction: admission's "malformed"
        await rpc.call("dubhe_sendTransaction", data(tx().raw)[:-10])
    assert e.value.code == -32003 and e.value.data == {"cause": "malformed"}
    with pytest.raises(RpcFault) as e:
        await rpc.call("dubhe_sendTransaction", 42)
    assert (
        e.value.code == -32602
        and "expected raw transaction hex or a transaction object" in e.value.message
    )

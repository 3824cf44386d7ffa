"""dubhe_sendTransaction and dubhe_sendTransactions in-process, against a fake mempool."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from inproc import CHAIN_ID, InProcess, RpcFault  # type: ignore[import-not-found]

from node.core import keys
from node.core.errors import InvalidTransaction, LimitExceeded, NodeError
from node.core.hexutil import data
from node.core.tx import Signer, Transaction, sign_tx
from node.server.methods.admission import VERIFY_OFF_LOOP_FROM, AdmissionMethods
from node.server.metrics import Metrics
from node.server.security import TokenBucket

S = Signer.from_seed(b"admission")


@dataclass
class FakeMempool:
    refuse: Exception | None = None
    got: list[Transaction] = field(default_factory=list)
    lists: list[list[Transaction | NodeError]] = field(default_factory=list)
    checked: list[bool] = field(default_factory=list)

    async def asubmit_tx(self, tx: Transaction) -> bytes:
        if self.refuse is not None:
            raise self.refuse
        self.got.append(tx)
        return tx.hash

    async def asubmit_many(self, txs: Sequence[Transaction | NodeError], *,
                           signatures_checked: bool = False) -> list[bytes | NodeError]:
        self.lists.append(list(txs))
        self.checked.append(signatures_checked)
        out: list[bytes | NodeError] = []
        for t in txs:
            if isinstance(t, Transaction):
                self.got.append(t)
                out.append(t.hash)
            else:
                out.append(t)
        return out

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


def setup(pool: FakeMempool, max_submit_txs: int = 5000) -> tuple[InProcess, Metrics]:
    metrics = Metrics()
    return InProcess(AdmissionMethods(pool, metrics, max_submit_txs=max_submit_txs)), metrics


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


@pytest.mark.parametrize("n_good", [3, VERIFY_OFF_LOOP_FROM + 4])  # inline and off-loop checks
async def test_a_list_answers_per_item_in_order(n_good: int) -> None:
    pool = FakeMempool()
    rpc, metrics = setup(pool)
    good = [tx(n) for n in range(n_good)]
    forged = dataclasses.replace(tx(99), signature=tx(98).signature)  # another tx's: no match
    bad_field = as_object(tx(100))
    bad_field["to"] = "0x12"
    items = [data(good[0].raw), as_object(good[1]), data(forged.raw), data(good[2].raw)[:-10],
             bad_field, 42, *[data(t.raw) for t in good[2:]]]
    out = await rpc.call("dubhe_sendTransactions", items)
    assert len(out) == len(items)
    assert out[:2] == [data(good[0].hash), data(good[1].hash)]
    assert out[2] == {"error": {"code": -32003, "message": "bad_signature: signature does not "
                                "verify", "data": {"cause": "bad_signature"}}}
    assert out[3]["error"]["code"] == -32003 and out[3]["error"]["data"] == {"cause": "malformed"}
    assert out[4]["error"]["code"] == -32602 and "data" not in out[4]["error"]
    assert "(transactions[4]): field to: expected 20 bytes" in out[4]["error"]["message"]
    assert out[5]["error"]["code"] == -32602 and "transactions[5]" in out[5]["error"]["message"]
    assert out[6:] == [data(t.hash) for t in good[2:]]
    # the mempool got the whole list in order (errors in place), signatures already checked
    assert pool.got == good and pool.checked == [True] and len(pool.lists[0]) == len(items)
    assert metrics.tx_accepted.labels("dubhe_sendTransactions")._value.get() == n_good
    assert metrics.tx_rejected.labels("bad_signature")._value.get() == 1
    assert metrics.tx_rejected.labels("malformed")._value.get() == 1


async def test_list_limits_and_parameter_errors() -> None:
    pool = FakeMempool()
    rpc, _ = setup(pool, max_submit_txs=3)
    with pytest.raises(RpcFault) as e:
        await rpc.call("dubhe_sendTransactions", [data(tx(n).raw) for n in range(4)])
    assert e.value.code == -32005
    assert "4 transactions in one call; the limit is 3" in e.value.message
    assert pool.lists == []  # refused whole
    for bad in (data(tx().raw), {"0": 1}):
        with pytest.raises(RpcFault) as e:
            await rpc.call("dubhe_sendTransactions", bad)
        assert e.value.code == -32602 and "(transactions): expected an array" in e.value.message
    assert await rpc.call("dubhe_sendTransactions", []) == []


async def test_every_transaction_takes_a_token_of_the_connections_tx_bucket() -> None:
    pool = FakeMempool()
    rpc, metrics = setup(pool)
    bucket = TokenBucket(0.001, 5)  # five tokens, practically no refill
    out = await rpc.call("dubhe_sendTransactions", [data(tx(n).raw) for n in range(4)],
                         tx_bucket=bucket)
    assert out == [data(tx(n).hash) for n in range(4)]
    # one token left: the list is admitted up to it, every later item refused on its own
    out = await rpc.call("dubhe_sendTransactions", [data(tx(n).raw) for n in range(4, 7)],
                         tx_bucket=bucket)
    assert out[0] == data(tx(4).hash)
    assert [o["error"]["code"] for o in out[1:]] == [-32005, -32005]
    assert "transaction rate limit" in out[1]["error"]["message"]
    with pytest.raises(RpcFault) as e:  # a single submission draws on the same bucket
        await rpc.call("dubhe_sendTransaction", data(tx(7).raw), tx_bucket=bucket)
    assert e.value.code == -32005 and "transaction rate limit" in e.value.message
    assert len(pool.got) == 5 and metrics.rate_limited.labels("http")._value.get() == 2
    fresh = TokenBucket(0.001, 1)
    assert await rpc.call("dubhe_sendTransaction", data(tx(8).raw), tx_bucket=fresh) == data(
        tx(8).hash)

"""Run by tests/lab/l1/test_l1_sdk_pysui.py with pysui 0.99's venv (never imported by the
project): drives pysui's JSON-RPC ``SuiClient`` - unmodified - against the mock Sui L1 and prints
what it read as one JSON object.

usage: python pysui_jsonrpc_probe.py RPC_URL OWNER PACKAGE_ID TX_DIGEST
"""

import json
import sys
import warnings

warnings.simplefilter("ignore")  # pysui marks its JSON-RPC client deprecated

from pysui.sui.sui_builders.get_builders import (  # noqa: E402
    GetAllCoinBalances,
    GetCheckpointBySequence,
    GetCoins,
    GetCoinTypeBalance,
    GetCommittee,
    GetEvents,
    GetLatestCheckpointSequence,
    GetLatestSuiSystemState,
    GetModule,
    GetObject,
    GetObjectsOwnedByAddress,
    GetTotalTxCount,
    GetTx,
    QueryEvents,
)
from pysui.sui.sui_clients.sync_client import SuiClient  # noqa: E402
from pysui.sui.sui_config import SuiConfig  # noqa: E402
from pysui.sui.sui_types.address import SuiAddress  # noqa: E402
from pysui.sui.sui_types.event_filter import (  # noqa: E402
    AndFilter,
    AnyFilter,
    MoveEventFieldQuery,
    MoveEventModuleQuery,
    MoveEventTypeQuery,
    OrFilter,
    SenderEventQuery,
)
from pysui.sui.sui_types.scalars import ObjectID, SuiString  # noqa: E402


def main(url: str, owner: str, package: str, digest: str) -> dict:
    out: dict = {}
    client = SuiClient(SuiConfig.user_config(rpc_url=url))
    out["rpc_version"] = client.rpc_version
    out["gas_price"] = client.current_gas_price
    out["protocol_version"] = client.protocol.protocol_version
    out["max_tx_gas"] = client.protocol.transaction_constraints.max_tx_gas

    def ok(builder):
        res = client.execute(builder)
        if not res.is_ok():
            raise SystemExit(f"{builder.method}: {res.result_string}")
        return res.result_data

    addr = SuiAddress(owner)
    out["balance"] = int(ok(GetCoinTypeBalance(owner=addr)).total_balance)
    coins = ok(GetCoins(owner=addr)).data
    out["coins"] = [(c.coin_object_id, int(c.balance)) for c in coins]
    out["all_balances"] = [int(b.total_balance) for b in ok(GetAllCoinBalances(owner=addr)).items]
    coin = ok(GetObject(object_id=ObjectID(coins[0].coin_object_id)))  # every option on
    out["coin_object"] = {"type": coin.object_type, "balance": int(coin.balance),
                          "has_bcs": coin.bcs is not None,
                          "display": None if coin.display is None else vars(coin.display)}
    owned = ok(GetObjectsOwnedByAddress(addr)).data
    out["owned"] = [o.object_id for o in owned]
    module = ok(GetModule(package=ObjectID(package), module_name=SuiString("dubhe")))
    out["module"] = module.name
    out["latest_checkpoint"] = int(ok(GetLatestCheckpointSequence()))
    cp = ok(GetCheckpointBySequence(cp_seq=out["latest_checkpoint"]))
    out["checkpoint_digest"] = cp.digest
    out["total_txs"] = int(ok(GetTotalTxCount()))
    tx = ok(GetTx(digest=SuiString(digest)))
    out["tx"] = {"digest": tx.digest, "status": tx.effects.status.status,
                 "sender": tx.transaction.data.sender, "events": len(tx.events),
                 "checkpoint": tx.checkpoint}
    got = ok(GetEvents(transaction_digest=SuiString(digest)))
    out["tx_events"] = [e.event_type for e in got.events]
    registry = "0x" + "00" * 31 + "db"
    published = f"{registry}::registry::CodePublished"
    upgraded = f"{registry}::registry::CodeUpgraded"
    filters = {
        "module": MoveEventModuleQuery(module="registry", package_id=registry),
        "any": AnyFilter(filters=[MoveEventTypeQuery(struct=published),
                                  MoveEventTypeQuery(struct=upgraded)]),
        "and": AndFilter(lhs_filter=MoveEventTypeQuery(struct=published),
                         rhs_filter=SenderEventQuery(sender=addr)),
        "or": OrFilter(lhs_filter=MoveEventTypeQuery(struct=published),
                       rhs_filter=MoveEventTypeQuery(struct=upgraded)),
        "field": MoveEventFieldQuery({"path": "/original_id", "value": package}),
    }
    out["events"] = {name: [(e.event_type.rsplit("::", 1)[1], e.parsed_json["original_id"])
                            for e in ok(QueryEvents(query=f)).data]
                     for name, f in filters.items()}
    state = ok(GetLatestSuiSystemState())
    out["system"] = {"epoch": state.epoch, "validators": len(state.active_validators),
                     "gas_price": state.reference_gas_price}
    out["committee"] = len(ok(GetCommittee()).validators)
    return out


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:5])))

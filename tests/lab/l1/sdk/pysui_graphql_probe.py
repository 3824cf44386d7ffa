"""Run by tests/lab/l1/test_l1_sdk_pysui.py with pysui 1.5's venv (never imported by the
project): drives pysui's GraphQL client - unmodified, configured in a throwaway PysuiConfig.json -
against the mock Sui L1's GraphQL endpoint and prints what it read as one JSON object.

usage: python pysui_graphql_probe.py GRAPHQL_URL COIN_ID PACKAGE_ID TX_DIGEST CONFIG_DIR
"""

import asyncio
import json
import sys
import warnings
from pathlib import Path

warnings.simplefilter("ignore")

import pysui.sui.sui_common.sui_commands as cmd  # noqa: E402
from gql import GraphQLRequest  # noqa: E402
from pysui import PysuiConfiguration  # noqa: E402
from pysui.sui.sui_common.config.confgroup import GroupProtocol, NetworkType  # noqa: E402
from pysui.sui.sui_common.factory import client_factory  # noqa: E402

EVENTS = """query ($after: String) {
  events(first: 1, after: $after, filter: {module: "0xdb::registry"}) {
    pageInfo { hasNextPage endCursor }
    nodes { sequenceNumber contents { type { repr } json } transaction { digest } }
  }
}"""


async def main(url: str, coin: str, package: str, digest: str, cfg_dir: str) -> dict:
    cfg = PysuiConfiguration.initialize_config(
        in_folder=Path(cfg_dir), init_groups=[{"name": "dubhe-mock", "make_active": True}])
    cfg.new_profile(profile_name="local", url=url, network_type=NetworkType.LOCAL,
                    make_active=True)
    client = client_factory(cfg, group_name="dubhe-mock", protocol=GroupProtocol.GRAPHQL)
    out: dict = {"chain_id": client.chain_id(), "gas_price": client.current_gas_price,
                 "schema_version": client.schema_version(),
                 "protocol_version": client.protocol().protocolVersion}

    async def ok(command):
        res = await client.execute(command=command)
        if not res.is_ok():
            raise SystemExit(f"{type(command).__name__}: {res.result_string}")
        return res.result_data

    latest = await ok(cmd.GetLatestCheckpoint())
    out["latest"] = {"sequence": latest.checkpoint.sequence_number,
                     "digest": latest.checkpoint.digest}
    first = await ok(cmd.GetCheckpointBySequence(sequence_number=1))
    out["checkpoint1"] = {"sequence": first.checkpoint.sequence_number,
                          "digest": first.checkpoint.digest}
    coin_obj = await ok(cmd.GetObject(object_id=coin))
    out["coin"] = {"id": coin_obj.object_id, "type": coin_obj.object_type,
                   "balance": coin_obj.balance, "version": coin_obj.version}
    pkg = await ok(cmd.GetObject(object_id=package))
    out["package"] = {"id": pkg.object_id, "version": pkg.version}
    # events, paged by cursor one at a time (pysui has no events command: its document API
    # takes any query the schema allows)
    events, after = [], None
    while True:
        res = await client.execute_document_node(
            with_node=GraphQLRequest(EVENTS, variable_values={"after": after}))
        if not res.is_ok():
            raise SystemExit(f"events: {res.result_string}")
        page = res.result_data["events"]
        events += [(n["contents"]["type"]["repr"].rsplit("::", 1)[1],
                    n["contents"]["json"]["version"], n["transaction"]["digest"])
                   for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    out["events"] = events
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:6])), default=str))

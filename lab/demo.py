"""``make run``: the reference node on the embedded default config plus a small demo workload.

Starts ``dubhe-node`` (RocksDB under ./data, RPC 127.0.0.1:8545, WS 127.0.0.1:8546), submits
signed transactions (mints by the dev mint authority, transfers, counter increments), waits for
their receipts, prints the endpoints, block height and receipts, and keeps the node serving until
Ctrl-C. Re-running continues the existing chain in ./data. ``--seed`` picks the demo accounts and
amounts (printed, so a run can be replayed).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import struct
import sys
import time
from pathlib import Path

from lab.clients.rpc import HttpRpc, RpcError, WsRpc
from lab.orchestrate.node_proc import NodeProcess, NodeStartError
from node.core import keys
from node.core.hexutil import data, parse_qty
from node.core.tx import Signer, Transaction, sign_tx

MINT_AUTHORITY_SEED = b"mint-authority"  # the node's well-known dev authority (config default)
_U64 = struct.Struct(">Q")


def _print(msg: str) -> None:
    print(msg, flush=True)


async def workload(rpc: HttpRpc, chain_id: int, seed: int, n_accounts: int = 4) -> list[Transaction]:
    rng = random.Random(seed)
    authority = Signer.from_seed(MINT_AUTHORITY_SEED)
    accounts = [Signer.from_seed(f"demo-{seed}-{i}".encode()) for i in range(n_accounts)]
    nonces: dict[bytes, int] = {}

    async def nonce(s: Signer) -> int:
        if s.address not in nonces:
            nonces[s.address] = parse_qty(await rpc.call("eth_getTransactionCount", data(s.address), "pending"))
        n = nonces[s.address]
        nonces[s.address] = n + 1
        return n

    txs: list[Transaction] = []
    for acc in accounts:
        amount = rng.randrange(1_000, 10_000)
        args = acc.address + _U64.pack(amount)
        to_key = keys.balance_key(acc.address)
        txs.append(sign_tx(authority, chain_id=chain_id, nonce=await nonce(authority), to=keys.NATIVE_TOKEN,
                           method="mint", args=args, write_set=(to_key,)))
    for _ in range(n_accounts * 2):
        a, b = rng.sample(accounts, 2)
        amount = rng.randrange(1, 500)
        txs.append(sign_tx(a, chain_id=chain_id, nonce=await nonce(a), to=keys.NATIVE_TOKEN, method="transfer",
                           args=b.address + _U64.pack(amount),
                           write_set=(keys.balance_key(a.address), keys.balance_key(b.address))))
    slot = b"demo"
    for acc in accounts[:2]:
        txs.append(sign_tx(acc, chain_id=chain_id, nonce=await nonce(acc), to=keys.COUNTER_DEMO, method="increment",
                           args=slot + _U64.pack(1), write_set=(keys.storage_key(keys.COUNTER_DEMO, slot),)))
    for tx in txs:
        await rpc.call("dubhe_sendTransaction", data(tx.raw))
    return txs


async def run(args: argparse.Namespace, data_dir: Path) -> int:
    workdir = data_dir  # the generated config lives beside the state, inside ./data
    cfg = {
        "api": {"rpc_bind": args.rpc_bind, "ws_bind": args.ws_bind},
        "state": {"backend": "rocksdb", "path": str(data_dir)},
        "security": {"audit_log": str(data_dir / "audit.jsonl")},
    }
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    _print(f"== Dubhe Channel demo (seed {seed}; replay with: make run ARGS='--seed {seed}')")
    node = NodeProcess(workdir, cfg, config_name="demo-config.toml")
    _print(f"== starting dubhe-node (state in {args.data})")
    try:
        await node.astart()
    except NodeStartError as e:
        print(f"error: the node did not start:\n{e.output}", file=sys.stderr)
        return 1
    _print(f"   JSON-RPC  {node.rpc_url}\n   WebSocket {node.ws_url}\n   health    {node.rpc_url}/health"
           f"\n   metrics   {node.rpc_url}/metrics")
    try:
        async with HttpRpc(node.rpc_url) as rpc, await WsRpc.connect(node.ws_url) as ws:
            chain_id = parse_qty(await rpc.call("eth_chainId"))
            heads = await ws.subscribe("newHeads")
            txs = await workload(rpc, chain_id, seed)
            _print(f"== submitted {len(txs)} signed transactions; waiting for receipts")
            deadline = time.monotonic() + 30
            receipts: dict[bytes, dict[str, object]] = {}
            while len(receipts) < len(txs) and time.monotonic() < deadline:
                head = await ws.next_notification(heads, timeout_s=10)
                _print(f"   block {parse_qty(head['number'])} {head['hash'][:18]}…")
                for tx in txs:
                    if tx.hash not in receipts:
                        rc = await rpc.call("dubhe_getReceipt", data(tx.hash))
                        if rc is not None:
                            receipts[tx.hash] = rc
            for tx in txs:
                rc = receipts.get(tx.hash)
                status = rc["status"] if rc else "pending"
                extra = f" ({rc['reason']})" if rc and rc["reason"] else ""
                _print(f"   {tx.method:<9} from {tx.sender.hex()[:10]}… block {rc['blockNumber'] if rc else '-'}"
                       f" status {status}{extra} gas {rc['gasUsed'] if rc else '-'}")
            height = parse_qty(await rpc.call("eth_blockNumber"))
            status_obj = await rpc.call("dubhe_status")
            _print(f"== height {height}, state root {status_obj['stateRoot'][:18]}…, "
                   f"{len(receipts)}/{len(txs)} receipts")
    except (RpcError, OSError, TimeoutError) as e:
        print(f"error: demo workload failed: {e}", file=sys.stderr)
        await node.astop()
        return 1
    if args.once:
        return 0 if await node.astop() == 0 else 1
    _print("== node keeps serving; press Ctrl-C to stop")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(asyncio.to_thread(node.wait))
    await asyncio.wait([waiter, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    rc = await node.astop()
    _print(f"== node stopped (exit {rc})")
    return 0 if rc in (0, -signal.SIGINT) else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.demo", description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data", default="./data", help="state directory (default ./data)")
    ap.add_argument("--rpc-bind", default="127.0.0.1:8545")
    ap.add_argument("--ws-bind", default="127.0.0.1:8546")
    ap.add_argument("--seed", type=int, help="demo workload seed (printed; pass it back to replay)")
    ap.add_argument("--once", action="store_true", help="stop the node after the workload (for tests)")
    args = ap.parse_args(argv)
    return asyncio.run(run(args, Path(args.data).resolve()))


if __name__ == "__main__":
    raise SystemExit(main())

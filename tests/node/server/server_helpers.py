"""Helpers shared by the server tests (imported by module name; pytest puts rootdir-relative
test directories on sys.path)."""

from __future__ import annotations

from lab.clients.rpc import HttpRpc
from node.core import keys
from node.core.codec import pack_u64
from node.core.hexutil import data, parse_qty
from node.core.tx import Signer, sign_tx

AUTHORITY = Signer.from_seed(b"mint-authority")


async def next_nonce(rpc: HttpRpc, s: Signer) -> int:
    return parse_qty(await rpc.call("eth_getTransactionCount", data(s.address), "pending"))


async def funded_transfer(rpc: HttpRpc, *, seed: bytes, amount: int) -> tuple[str, bytes, bytes]:
    """Mint 10x ``amount`` to a fresh account, then send ``amount`` from it to another fresh
    account. Returns (transfer tx hash, sender, recipient)."""
    chain_id = parse_qty(await rpc.call("eth_chainId"))
    a, b = Signer.from_seed(seed + b"-a"), Signer.from_seed(seed + b"-b")
    mint = sign_tx(
        AUTHORITY,
        chain_id=chain_id,
        nonce=await next_nonce(rpc, AUTHORITY),
        to=keys.NATIVE_TOKEN,
        method="mint",
        args=a.address + pack_u64(amount * 10),
        write_set=(keys.balance_key(a.address),),
    )
    await rpc.call("dubhe_sendTransaction", data(mint.raw))
    tr = sign_tx(a, chain_id=chain_id, nonce=0, to=keys.NATIVE_TOKEN, method="transfer",
                 args=b.address + pack_u64(amount),
                 write_set=(keys.balance_key(a.address), keys.balance_key(b.address)))
    h: str = await rpc.call("dubhe_sendTransaction", data(tr.raw))
    return h, a.address, b.address

"""``make run``: the whole lab on this machine, a workload through nginx, and a fault to watch.

1. Brings the lab up (mock Ethereum and Sui, fault proxy, node, nginx; every hop through a link).
2. Sends signed demo transactions (mints by the dev mint authority, transfers, counter
   increments) over https:// through client-edge-tls and nginx, and waits for their receipts
   while a wss:// subscriber prints the new heads.
3. Applies a fault profile (default ``fault-profiles/ws-upstream-cuts.toml``: nginx->node
   WebSockets cut mid-frame) for a few seconds while a subscriber — the reference client,
   ``lab.clients.ReconnectingClient`` — watches newHeads, printing what it sees (close codes,
   reconnects, heads missed while away and fetched by number), then clears it.
4. Prints the endpoints and the run directory and stays up until Ctrl-C (``--once``: stops).

Every run starts from a fresh state in its own run directory. ``--seed`` picks the lab's seed
(components, demo accounts and amounts, the subscriber's backoff jitter); it is printed so a run
can be replayed with ``make run ARGS='--seed N'``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from websockets.exceptions import ConnectionClosed

from lab.clients import (
    BackoffPolicy,
    ClientOptions,
    History,
    ReconnectingClient,
    websockets_connector,
)
from lab.clients.rpc import HttpRpc, RpcError, WsRpc
from lab.orchestrate import Lab, LabError, LabSpec
from lab.orchestrate.errors import ComponentError
from lab.proxy.profiles import ProfileError
from node.core import keys
from node.core.codec import pack_u64
from node.core.hexutil import data, parse_qty
from node.core.tx import Signer, Transaction, sign_tx

MINT_AUTHORITY_SEED = b"mint-authority"  # the node's well-known dev authority (config default)
DEFAULT_PROFILE = Path(__file__).resolve().parents[1] / "fault-profiles" / "ws-upstream-cuts.toml"


def _print(msg: str) -> None:
    print(msg, flush=True)


async def workload(
    rpc: HttpRpc, chain_id: int, seed: int, n_accounts: int = 4
) -> list[Transaction]:
    rng = random.Random(seed)
    authority = Signer.from_seed(MINT_AUTHORITY_SEED)
    accounts = [Signer.from_seed(f"demo-{seed}-{i}".encode()) for i in range(n_accounts)]
    nonces: dict[bytes, int] = {}

    async def nonce(s: Signer) -> int:
        if s.address not in nonces:
            nonces[s.address] = parse_qty(
                await rpc.call("eth_getTransactionCount", data(s.address), "pending")
            )
        n = nonces[s.address]
        nonces[s.address] = n + 1
        return n

    txs: list[Transaction] = []
    for acc in accounts:
        amount = rng.randrange(1_000, 10_000)
        args = acc.address + pack_u64(amount)
        to_key = keys.balance_key(acc.address)
        txs.append(
            sign_tx(
                authority,
                chain_id=chain_id,
                nonce=await nonce(authority),
                to=keys.NATIVE_TOKEN,
                method="mint",
                args=args,
                write_set=(to_key,),
            )
        )
    for _ in range(n_accounts * 2):
        a, b = rng.sample(accounts, 2)
        amount = rng.randrange(1, 500)
        txs.append(
            sign_tx(
                a,
                chain_id=chain_id,
                nonce=await nonce(a),
                to=keys.NATIVE_TOKEN,
                method="transfer",
                args=b.address + pack_u64(amount),
                write_set=(keys.balance_key(a.address), keys.balance_key(b.address)),
            )
        )
    slot = b"demo"
    for acc in accounts[:2]:
        txs.append(
            sign_tx(
                acc,
                chain_id=chain_id,
                nonce=await nonce(acc),
                to=keys.COUNTER_DEMO,
                method="increment",
                args=slot + pack_u64(1),
                write_set=(keys.storage_key(keys.COUNTER_DEMO, slot),),
            )
        )
    for tx in txs:
        await rpc.call("dubhe_sendTransaction", data(tx.raw))
    return txs


async def run_workload(lab: Lab, seed: int) -> bool:
    """The demo transactions over https, receipts awaited while wss heads arrive."""
    ctx = lab.ssl_context()
    async with (
        HttpRpc(lab.endpoints["https"], ssl=ctx) as rpc,
        await WsRpc.connect(lab.endpoints["wss"], ssl=ctx) as ws,
    ):
        chain_id = parse_qty(await rpc.call("eth_chainId"))
        heads = await ws.subscribe("newHeads")
        txs = await workload(rpc, chain_id, seed)
        _print(
            f"== submitted {len(txs)} signed transactions over {lab.endpoints['https']}; "
            "waiting for receipts (heads over wss)"
        )
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
            block = rc["blockNumber"] if rc else "-"
            _print(f"   {tx.method:<9} from {tx.sender.hex()[:10]}… block {block}"
                   f" status {status}{extra} gas {rc['gasUsed'] if rc else '-'}")
        height = parse_qty(await rpc.call("eth_blockNumber"))
        status_obj = await rpc.call("dubhe_status")
        _print(
            f"== height {height}, state root {status_obj['stateRoot'][:18]}…, "
            f"{len(receipts)}/{len(txs)} receipts"
        )
        return len(receipts) == len(txs)


@dataclass
class Watch:
    """What a newHeads subscriber saw during the fault window."""

    heads: list[int] = field(default_factory=list)
    closes: list[int] = field(default_factory=list)
    connects: int = 0
    #: Heads that did not arrive as notifications (made while the client was reconnecting) and
    #: were fetched by number instead.
    missed: int = 0


async def watch_heads(url: str, ctx: ssl.SSLContext | None, stop: asyncio.Event, watch: Watch,
                      seed: int, say: Callable[[str], None]) -> None:
    """Follow newHeads with the reference client (lab.clients.ReconnectingClient: seeded
    full-jitter backoff, keepalive, resubscription, backfill by number); report each close code,
    reconnect and the heads fetched because they were missed meanwhile."""
    t0 = time.monotonic()

    def on_event(e: dict[str, object]) -> None:
        at = f"   {time.monotonic() - t0:5.2f} s "
        if e["ev"] == "close" and not e.get("stop"):
            code = int(e["code"])  # type: ignore[call-overload]
            watch.closes.append(code)
            why = ("no close frame: abnormal closure" if code == 1006 and e["by"] == "none"
                   else str(e["reason"]) or f"closed by the {e['by']}")
            say(f"{at} closed {code} ({why}) after head {watch.heads[-1] if watch.heads else '-'}")
        elif e["ev"] == "handshake" and not e["ok"]:
            say(f"{at} connect failed: {e['error']}")
        elif e["ev"] == "reconnected":
            say(f"{at} reconnected (connection {e['conn']}), resubscribed {e['down_s']} s after "
                "the close")
        elif e["ev"] == "deliver" and e["src"] == "backfill":
            watch.missed += 1
            say(f"{at} head {e['n']} fetched by number (missed while reconnecting)")

    client = ReconnectingClient(
        url, connector=websockets_connector(ssl_context=ctx), name="demo-watcher",
        history=History("demo-watcher", listener=on_event),
        options=ClientOptions(seed=seed, ping_interval_s=5.0, ping_timeout_s=3.0,
                              backoff=BackoffPolicy(base_s=0.1, cap_s=2.0)))

    async def consume() -> None:
        async for head in client.heads():
            watch.heads.append(parse_qty(head["number"]))

    async with client:
        client.follow_heads()
        consumer = asyncio.create_task(consume())
        await stop.wait()
    await consumer
    watch.connects = client.stats["opens"]


async def fault_demo(lab: Lab, profile_path: Path, seconds: float, seed: int) -> Watch:
    profile = lab.load_profile(profile_path)
    stop = asyncio.Event()
    watch = Watch()
    _print(
        f"== fault: {profile.name} ({profile.description}) for {seconds:g} s, "
        f"while a subscriber watches newHeads over {lab.endpoints['wss']}"
    )
    events_before = len(await lab.fault_events())
    watcher = asyncio.create_task(watch_heads(lab.endpoints["wss"], lab.ssl_context(), stop, watch,
                                              seed, _print))
    await asyncio.sleep(0.5)
    await lab.apply_profile(profile)
    await asyncio.sleep(seconds)
    cleared = await lab.clear_faults()
    _print(f"   fault cleared on {', '.join(cleared)}")
    await asyncio.sleep(1.0)
    stop.set()
    await watcher
    fired = [
        e for e in (await lab.fault_events())[events_before:] if e.get("event") == "toxic_fired"
    ]
    codes = ", ".join(f"{c} x{watch.closes.count(c)}" for c in sorted(set(watch.closes))) or "none"
    in_order = watch.heads == list(range(watch.heads[0], watch.heads[0] + len(watch.heads))) \
        if watch.heads else True
    _print(f"== the client saw: {len(watch.heads)} heads, closes {codes}, "
           f"{max(0, watch.connects - 1)} reconnects, {watch.missed} heads missed while "
           f"reconnecting and fetched by number (eth_getBlockByNumber): every head "
           f"{'once and in order' if in_order else 'NOT in order'}; the proxy logged "
           f"{len(fired)} toxic firings")
    return watch


async def _demo(
    args: argparse.Namespace, seed: int, serving: asyncio.Event, stop: asyncio.Event
) -> int:
    spec = LabSpec(name="demo", seed=seed)
    try:
        lab = await Lab.start(spec, runs_root=args.runs_root, progress=_print)
    except ComponentError as exc:
        print(f"error: {exc.details()}", file=sys.stderr)
        return 1
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        ok = await run_workload(lab, seed)
        watch = await fault_demo(lab, args.profile, args.fault_seconds, seed)
        from lab.cli import print_endpoints

        print_endpoints(lab)
        _print(
            f"== run directory {lab.run_dir} (logs/, nginx/access.log, nginx/error.log, lab.json)"
        )
        if not ok or not watch.heads:
            print("error: the demo did not complete (see the logs above)", file=sys.stderr)
            return 1
        if args.once:
            return 0
        _print(
            "== the lab keeps running; in another shell: dubhe-lab status | fault apply FILE "
            "| logs COMPONENT; Ctrl-C stops it"
        )
        if stop.is_set():  # a signal came while the demo ran (and its cancel was absorbed)
            raise asyncio.CancelledError
        serving.set()
        await stop.wait()
        return 0
    except (RpcError, OSError, TimeoutError, ConnectionClosed) as exc:
        print(f"error: demo workload failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except (ProfileError, LabError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await asyncio.shield(lab.down())


async def run(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    _print(f"== Dubhe Channel lab demo (seed {seed}; replay with: make run ARGS='--seed {seed}'); "
           "a fresh chain in a new run directory, nothing carried over from earlier runs")
    serving, stop = asyncio.Event(), asyncio.Event()
    demo = asyncio.create_task(_demo(args, seed, serving, stop))

    def on_signal() -> None:
        # While the lab just serves, Ctrl-C ends the wait; before that it interrupts whatever
        # the demo is doing (starting, the workload, the fault). Either way the lab goes down.
        # ``stop`` is set first: a cancellation absorbed by a library (asyncio.wait_for can
        # swallow one that races its timeout) still ends the demo before it starts serving.
        interrupted = not serving.is_set()
        stop.set()
        if interrupted:
            demo.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        return await demo
    except asyncio.CancelledError:
        print("error: interrupted; the lab was torn down", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lab.demo", description=__doc__.splitlines()[0] if __doc__ else None
    )
    ap.add_argument("--seed", type=int, help="lab seed (printed; pass it back to replay)")
    ap.add_argument(
        "--once", action="store_true", help="tear the lab down after the demo (for tests)"
    )
    ap.add_argument(
        "--profile",
        type=Path,
        default=DEFAULT_PROFILE,
        help="fault profile shown during the demo (default: ws-upstream-cuts.toml)",
    )
    ap.add_argument(
        "--fault-seconds", type=float, default=4.0, help="how long the fault stays on (default 4)"
    )
    ap.add_argument(
        "--runs-root",
        type=Path,
        default=Path("reports") / "runs",
        help="where the run directory goes (default reports/runs)",
    )
    args = ap.parse_args(argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

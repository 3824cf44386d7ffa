"""``dubhe-l1 eth|sui --port N --seed S --block-time-ms T``: run one mock chain.

The same as ``python -m lab.l1``.

Prints one line ``lab.l1 <kind> seed=S http=URL ws=URL admin=URL`` per endpoint once listening
(``--port 0`` picks a free port; ``--port`` given several times serves one endpoint on each),
then serves until interrupted (SIGINT or SIGTERM: exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sys

from lab.l1.server import MockL1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="dubhe-l1",
        description="Run a mock L1 chain (Ethereum or Sui JSON-RPC, WebSocket at /ws, admin "
        "API at /admin; lab/l1/README.md). Prints one ready line per endpoint; SIGINT or "
        "SIGTERM stops it (exit 0).")
    ap.add_argument("kind", choices=["eth", "sui"], help="which chain to mock")
    ap.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
    ap.add_argument("--port", type=int, action="append",
                    help="listen port, 0 picks a free one (repeat for several endpoints; "
                    "default: 0)")
    ap.add_argument("--seed", type=int, default=None,
                    help="seed of the chain's random choices (default: random, printed)")
    ap.add_argument("--block-time-ms", type=int, default=1000, metavar="MS",
                    help="block period in ms; 0 produces only on admin request (default: 1000)")
    ap.add_argument("--chain-id", type=int, default=1337,
                    help="Ethereum chain id, what eth_chainId answers (default: 1337)")
    ap.add_argument("--finality-depth", type=int, default=64,
                    help="blocks behind the head that count as finalized (default: 64)")
    ap.add_argument("--endpoints", type=int, default=1,
                    help="listeners serving the same chain when --port is given once or not "
                    "(default: 1)")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)

    async def run() -> None:
        stop = asyncio.Event()  # handlers first: a signal while starting still stops cleanly
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        l1 = MockL1(
            args.kind, seed=seed, block_time_ms=args.block_time_ms, chain_id=args.chain_id,
            finality_depth=args.finality_depth,
        )
        ports = args.port or [0]
        if len(ports) == 1:
            ports += [0] * (args.endpoints - 1)
        await l1.start(host=args.host, ports=ports)
        for ep in l1.endpoints:
            print(
                f"lab.l1 {args.kind} seed={seed} http={ep.http_url} ws={ep.ws_url} "
                f"admin={ep.admin_url}",
                flush=True,
            )
        try:
            await stop.wait()
        finally:
            await l1.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())

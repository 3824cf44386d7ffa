"""``python -m lab.l1 eth|sui --port N --seed S --block-time-ms T``: run one mock chain.

Prints one line ``lab.l1 <kind> seed=S http=URL ws=URL admin=URL`` once listening (``--port 0``
picks a free port), then serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys

from lab.l1.server import MockL1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.l1", description="Run a mock L1 chain.")
    ap.add_argument("kind", choices=["eth", "sui"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    ap.add_argument("--block-time-ms", type=int, default=1000, help="0: produce only on admin request")
    ap.add_argument("--chain-id", type=int, default=1337, help="Ethereum chain id")
    ap.add_argument("--finality-depth", type=int, default=64)
    ap.add_argument("--endpoints", type=int, default=1, help="listeners serving the same chain")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)

    async def run() -> None:
        l1 = MockL1(
            args.kind, seed=seed, block_time_ms=args.block_time_ms, chain_id=args.chain_id,
            finality_depth=args.finality_depth,
        )
        await l1.start(args.endpoints, host=args.host, port=args.port)
        for ep in l1.endpoints:
            print(
                f"lab.l1 {args.kind} seed={seed} http={ep.http_url} ws={ep.ws_url} admin={ep.admin_url}",
                flush=True,
            )
        try:
            await asyncio.Event().wait()
        finally:
            await l1.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())

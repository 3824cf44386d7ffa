"""``dubhe-proxy [--host H] [--port P] [--config profile.toml] [--seed N]``.

The same as ``python -m lab.proxy``. Prints the seed it uses (random unless given) so a run
can be replayed with ``--seed``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from lab.proxy.profiles import ProfileError, check
from lab.proxy.server import ProxyServer

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "error": logging.ERROR, "fatal": logging.CRITICAL}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="dubhe-proxy",
                                description="Toxiproxy-compatible fault proxy (lab edition)")
    p.add_argument("--host", default="127.0.0.1", help="API bind host (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8474, help="API port (default 8474; 0 = any)")
    p.add_argument("--config", type=Path, help="fault profile (TOML) to load at start")
    p.add_argument("--seed", type=int, help="seed for every random draw (default: random)")
    p.add_argument("--no-metrics", action="store_true", help="serve 404 at /metrics")
    p.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto",
                   help="event loop (auto: uvloop when installed)")
    p.add_argument("--check", nargs="+", metavar="PROFILE",
                   help="validate fault profiles and exit (1 if any is invalid)")
    return p.parse_args(argv)


async def _serve(args: argparse.Namespace) -> int:
    server = ProxyServer(args.host, args.port, seed=args.seed, config=args.config,
                         metrics=not args.no_metrics)
    try:
        await server.start()
    except ProfileError as exc:
        print(f"lab.proxy: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"lab.proxy: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    print(f"lab.proxy: API on {server.base_url} seed={server.seed} "
          f"(replay with --seed {server.seed})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.check:
        return check(args.check)
    # LOG_LEVEL as Toxiproxy reads it (debug, info, warn, error, fatal)
    level = _LEVELS.get(os.getenv("LOG_LEVEL", "warn").lower(), logging.WARNING)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if args.loop == "uvloop":
                print("lab.proxy: uvloop is not installed", file=sys.stderr)
                return 2
        else:
            return uvloop.run(_serve(args))
    return asyncio.run(_serve(args))


if __name__ == "__main__":
    raise SystemExit(main())

"""``dubhe-proxy [--host H] [--port P] [--profile FILE] [--seed N]``: the fault proxy.

The same as ``python -m lab.proxy``. Prints the seed it uses (random unless given) so a run
can be replayed with ``--seed``, and each proxy the profile created. Toxiproxy's own flags work
too (``-host``, ``-port``, ``-config FILE``, ``-seed``), and ``-config``/``--profile`` also
read Toxiproxy's JSON proxy list. Exit codes (docs/cli.md): 0 stopped by SIGINT/SIGTERM, 1 the
API cannot listen or a profile proxy cannot be created, 2 a bad option or profile.
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

from lab.proxy.profiles import Profile, ProfileError, check, load_profile
from lab.proxy.server import ProxyServer

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "error": logging.ERROR, "fatal": logging.CRITICAL}
EXIT_FAILED, EXIT_USAGE = 1, 2


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="dubhe-proxy",
        description="Toxiproxy-compatible fault proxy (lab edition): the Toxiproxy 2.12 HTTP API "
        "plus WebSocket-aware toxics, schedules and a seed. LOG_LEVEL=debug|info|warn|error "
        "sets the log level, as for Toxiproxy (default warn).",
        epilog="Toxiproxy's flags are accepted as aliases: -host, -port, -config FILE (a fault "
        "profile, or Toxiproxy's JSON proxy list), -seed.",
    )
    p.add_argument("--host", default="127.0.0.1", help="API bind host (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8474,
                   help="API port; 0 picks a free one, printed (default: 8474)")
    p.add_argument("--profile", type=Path, metavar="FILE",
                   help="fault profile to load at start: TOML (fault-profiles/README.md), or "
                   "Toxiproxy's JSON proxy list (each entry a proxy without toxics)")
    p.add_argument("--seed", type=int, help="seed for every random draw (default: random, "
                   "printed)")
    p.add_argument("--no-metrics", action="store_true", help="serve 404 at /metrics")
    p.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto",
                   help="event loop (default: auto, uvloop when installed)")
    p.add_argument("--check", nargs="+", metavar="FILE",
                   help="validate fault profiles and exit: every problem of every file, exit 1 "
                   "if any is invalid")
    # old and Toxiproxy spellings (docs/cli.md): hidden, same destinations
    hide = argparse.SUPPRESS
    p.add_argument("--config", "-config", dest="profile", type=Path, help=hide, default=hide)
    p.add_argument("-host", dest="host", help=hide, default=hide)
    p.add_argument("-port", dest="port", type=int, help=hide, default=hide)
    p.add_argument("-seed", dest="seed", type=int, help=hide, default=hide)
    return p.parse_args(argv)


def describe(profile: Profile) -> list[str]:
    """One line per proxy a profile creates: listen -> upstream, its toxics and schedules."""
    out = []
    for spec in profile.proxies:
        toxics = []
        for t in spec.toxics:
            attrs = ",".join(f"{k}={v}" for k, v in t.get("attributes", {}).items())
            sched = t.get("schedule")
            when = ""
            if isinstance(sched, dict):
                when = " " + ",".join(f"{k}={v}" for k, v in sched.items())
            pct = "" if t.get("toxicity", 1.0) == 1.0 else f" {t['toxicity']:.0%}"
            toxics.append(f"{t['name']}[{t['type']} {t['stream']}{' ' + attrs if attrs else ''}"
                          f"{pct}{when}]")
        state = "" if spec.enabled else " (disabled)"
        out.append(f"   proxy {spec.name}: {spec.listen} -> {spec.upstream}{state}; toxics: "
                   f"{', '.join(toxics) or 'none'}")
    return out


async def _serve(args: argparse.Namespace) -> int:
    # Handlers first: a signal that arrives while starting still means "stop cleanly".
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    server = ProxyServer(args.host, args.port, seed=args.seed, config=args.profile,
                         metrics=not args.no_metrics)
    try:
        await server.start()
    except ProfileError as exc:
        for line in exc.lines:
            print(f"dubhe-proxy: {line}", file=sys.stderr)
        # a proxy the host refused (port in use) is the machine's problem, not the file's
        return EXIT_FAILED if exc.key.startswith("proxies[") and "listen" in str(exc) \
            else EXIT_USAGE
    except OSError as exc:
        print(f"dubhe-proxy: cannot listen on {args.host}:{args.port}: {exc.strerror or exc} "
              f"(another process may hold the port: ss -ltnp 'sport = :{args.port}'; or pass "
              "--port 0)", file=sys.stderr)
        return EXIT_FAILED
    print(f"lab.proxy: API on {server.base_url} seed={server.seed} "
          f"(replay with --seed {server.seed})", flush=True)
    if args.profile is not None:
        profile = load_profile(args.profile)
        print(f"== profile {profile.name} ({args.profile}): {len(profile.proxies)} proxies",
              flush=True)
        for line in describe(profile):
            print(line, flush=True)
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
                print("dubhe-proxy: --loop uvloop: uvloop is not installed (pip install "
                      "uvloop, or the project's 'fast' extra)", file=sys.stderr)
                return EXIT_USAGE
        else:
            with contextlib.suppress(KeyboardInterrupt):
                return uvloop.run(_serve(args))
            return 130
    try:
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:  # a signal before the handlers were installed
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

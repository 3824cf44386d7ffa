"""``dubhe-node --config FILE`` (also ``python -m node``): run the node until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from node.config import Config, load
from node.core.errors import ConfigError, StorageDamage, StorageError
from node.server import logs
from node.server.descriptors import plan, raise_soft_limit
from node.vm.unicorn_backend import SelfTestFailed

log = logging.getLogger("node")


async def serve(cfg: Config, *, ready_line: bool = True) -> int:
    from node.server.node import Node

    # Handlers first: a signal that arrives while starting still means "stop cleanly".
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    before, soft, hard = raise_soft_limit()
    cfg, budget = plan(cfg, soft, hard=hard, before=before)  # ConfigError: cannot be served
    log.info("descriptors: limit %d (started with %d), %d reserved, connections http %d + ws %d",
             budget.limit, budget.before, budget.reserved, budget.http, budget.ws)
    node = Node(cfg, descriptors=budget)
    await node.start()
    if ready_line:
        # One machine-readable line for supervisors and tests (ports may be OS-chosen).
        print(f"dubhe-node ready rpc=http://{cfg.api.rpc_bind.rsplit(':', 1)[0]}:{node.rpc_port} "
              f"ws=ws://{cfg.api.ws_bind.rsplit(':', 1)[0]}:{node.ws_port}", flush=True)
    await stop.wait()
    log.info("shutting down")
    await node.stop()
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="dubhe-node", description="Dubhe Channel reference node")
    ap.add_argument("--config", help="config.toml (default: the embedded defaults)")
    ap.add_argument("--log-format", choices=["text", "json"], help="override [logging] format")
    ap.add_argument(
        "--accept-tail-loss", action="store_true",
        help="start even though RocksDB cannot replay the end of its write-ahead log: recover to "
        "the last consistent write and log every dropped block and transaction "
        "([state] accept_tail_loss for this start only)",
    )
    args = ap.parse_args(argv)
    try:
        cfg = load(args.config)
    except ConfigError as e:
        for key, msg in e.errors:
            print(f"dubhe-node: {e.source}: {key}: {msg}", file=sys.stderr)
        return 1
    if args.accept_tail_loss:
        cfg = cfg.model_copy(
            update={"state": cfg.state.model_copy(update={"accept_tail_loss": True})}
        )
    logs.setup(cfg.logging.level, args.log_format or cfg.logging.format)
    try:
        import uvloop

        use_uvloop = True
    except ImportError:  # uvloop is optional (extra "fast")
        use_uvloop = False
    try:
        if use_uvloop:
            return uvloop.run(serve(cfg))
        return asyncio.run(serve(cfg))
    except ConfigError as e:
        for key, msg in e.errors:
            print(f"dubhe-node: {e.source}: {key}: {msg}", file=sys.stderr)
        return 1
    except SelfTestFailed as e:
        print(
            f"dubhe-node: the RISC-V VM self-test failed, refusing to start: {e}", file=sys.stderr
        )
        return 1
    except StorageDamage as e:
        print(f"dubhe-node: refusing to start: {e.message}", file=sys.stderr)
        return 1
    except StorageError as e:
        print(f"dubhe-node: storage error: {e.message}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"dubhe-node: cannot start: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

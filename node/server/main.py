"""``dubhe-node --config FILE`` (also ``python -m node``): run the node until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import re
import signal
import sys

from node.config import Config, check_paths, load, split_bind
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


def _config_errors(e: ConfigError, code: int) -> int:
    for key, msg in e.errors:
        print(f"dubhe-node: {e.source}: {key}: {msg}", file=sys.stderr)
    return code


def _bind_error(cfg: Config, e: OSError) -> str:
    """An OSError from binding, told as the key to change and how to find who holds the port."""
    m = re.search(r"\('?([^',)]*)'?, (\d+)\)", str(e))
    port = int(m.group(2)) if m else None
    keys = [k for k, v in (("api.rpc_bind", cfg.api.rpc_bind), ("api.ws_bind", cfg.api.ws_bind))
            if port is not None and split_bind(v)[1] == port]
    where = f"{keys[0]} = \"{getattr(cfg.api, keys[0].split('.')[1])}\"" if keys else "a bind"
    if e.errno == errno.EADDRINUSE:
        who = f"ss -ltnp 'sport = :{port}'" if port else "ss -ltnp"
        return (f"{where}: the address is already in use by another process (find it with: "
                f"{who}); stop it, or change {keys[0] if keys else 'api.rpc_bind/ws_bind'} "
                "(port 0 picks a free port)")
    return f"{where}: cannot listen: {e.strerror or e}"


def _storage_error(cfg: Config, e: StorageError) -> str:
    msg = e.message
    if "lock" in msg.lower():
        lock = f"{cfg.state.path.rstrip('/')}/LOCK"
        return (f"state.path = \"{cfg.state.path}\": the RocksDB directory is in use by another "
                f"process (find it with: fuser -v {lock}, or lsof {lock}); stop it, or give "
                "this node its own state.path")
    return f"storage error (state.path = \"{cfg.state.path}\"): {msg}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="dubhe-node",
        description="Dubhe Channel reference node: JSON-RPC over HTTP and WebSocket on the "
        "config's api.rpc_bind and api.ws_bind until SIGTERM or SIGINT (exit 0). Exit 2: the "
        "config file is invalid (every problem is printed); 1: the node cannot run it here "
        "(a path not writable, a port in use, storage locked or damaged, too few descriptors).",
    )
    ap.add_argument("--config", metavar="FILE",
                    help="node config, TOML (CONFIG.md; default: the embedded defaults, which "
                    "are the shipped config.toml)")
    ap.add_argument("--log-format", choices=["text", "json"],
                    help="override [logging] format (default: the config's)")
    ap.add_argument(
        "--accept-tail-loss", action="store_true",
        help="start even though RocksDB cannot replay the end of its write-ahead log: recover to "
        "the last consistent write and log every dropped block and transaction "
        "([state] accept_tail_loss for this start only)",
    )
    args = ap.parse_args(argv)
    try:
        cfg = load(args.config)
    except ConfigError as e:  # the file itself is invalid: bad input
        return _config_errors(e, 2)
    try:
        check_paths(cfg, args.config or "defaults")
    except ConfigError as e:  # a valid config this machine cannot run (docs/cli.md): exit 1
        return _config_errors(e, 1)
    if args.accept_tail_loss:
        cfg = cfg.model_copy(
            update={"state": cfg.state.model_copy(update={"accept_tail_loss": True})}
        )
    logs.setup(cfg.logging.level, args.log_format or cfg.logging.format,
               secrets=[cfg.security.admin_token])
    try:
        import uvloop

        use_uvloop = True
    except ImportError:  # uvloop is optional (extra "fast")
        use_uvloop = False
    try:
        if use_uvloop:
            return uvloop.run(serve(cfg))
        return asyncio.run(serve(cfg))
    except ConfigError as e:  # valid, but not here (descriptor limits, the chain's VM)
        return _config_errors(e, 1)
    except SelfTestFailed as e:
        print(
            f"dubhe-node: the RISC-V VM self-test failed, refusing to start: {e}", file=sys.stderr
        )
        return 1
    except StorageDamage as e:
        print(f"dubhe-node: refusing to start: {e.message}", file=sys.stderr)
        return 1
    except StorageError as e:
        print(f"dubhe-node: {_storage_error(cfg, e)}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"dubhe-node: {_bind_error(cfg, e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a signal before the handlers were installed
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

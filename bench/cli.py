"""``dubhe-bench SUBCOMMAND [options]``: runs ``bench/<subcommand>.py``'s ``main(argv)``.

Each benchmark module prints what it measured, the baseline it measured in the same run, and the
ratio. Subcommand names use dashes (``ws-fanout`` -> ``bench/ws_fanout.py``).

Ctrl-C (SIGINT to the process group, or to this process alone) stops a benchmark at any point:
its servers are stopped, its worker processes terminated, one line says so, and the exit status
is 130; no traceback, no warnings about unclosed sessions (docs/cli.md).
"""

from __future__ import annotations

import _thread
import asyncio
import importlib
import logging
import multiprocessing
import os
import pkgutil
import signal
import sys
import threading
import warnings
from asyncio import events as asyncio_events
from types import FrameType

import bench

_MAIN_PID = os.getpid()


_interrupts = 0
_redelivering = False
#: Python functions the RISC-V VM's unicorn engine calls from C (ctypes callbacks): an exception
#: raised in them is printed and dropped by ctypes ("Exception ignored on calling ctypes callback
#: function"), so an interrupt arriving there is delivered again a moment later instead.
_C_CALLBACKS = {("unicorn_backend.py", "_on_intr"), ("unicorn_backend.py", "probe_intr"),
                ("gasmeter.py", "hook")}


def _in_c_callback(frame: FrameType | None) -> bool:
    while frame is not None:
        code = frame.f_code
        if (os.path.basename(code.co_filename), code.co_name) in _C_CALLBACKS:
            return True
        frame = frame.f_back
    return False


def _redeliver() -> None:
    global _redelivering
    _redelivering = True
    threading.Timer(0.02, _thread.interrupt_main, (signal.SIGINT,)).start()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C in the benchmark's own process: with an event loop running, cancel its tasks (as
    ``asyncio.run`` does) so that their cleanups run (a lab being started is torn down);
    otherwise, or at the second Ctrl-C, KeyboardInterrupt. Forked worker processes inherit this
    handler and ignore the signal (the parent terminates them)."""
    global _interrupts, _redelivering
    if os.getpid() != _MAIN_PID:
        return
    if _in_c_callback(frame):
        if not _redelivering:
            _interrupts += 1
        _redeliver()
        return
    if not _redelivering:
        _interrupts += 1
    _redelivering = False
    loop = asyncio_events._get_running_loop()
    if loop is not None and _interrupts == 1:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.call_soon_threadsafe(lambda: None)  # wake the selector
        return
    raise KeyboardInterrupt


def _stop_everything() -> None:
    """After an interrupt: stop what the benchmark started, and silence the warnings that
    half-closed clients would print at exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt cleanup
    from bench.common import NodeServer

    NodeServer.stop_all()
    for child in multiprocessing.active_children():
        child.terminate()
    for child in multiprocessing.active_children():
        child.join(5)
    warnings.simplefilter("ignore")
    logging.getLogger("asyncio").disabled = True  # "Unclosed client session/connector"


def _available() -> list[str]:
    return sorted(
        m.name.replace("_", "-")
        for m in pkgutil.iter_modules(bench.__path__)
        if m.name not in {"cli", "common"} and not m.name.startswith("_")
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    names = _available()
    if not args or args[0] in {"-h", "--help"}:
        print("usage: dubhe-bench {" + ",".join(names) + "} [options]")
        print("       dubhe-bench SUBCOMMAND --help for its options")
        return 0 if args else 2
    name = args[0]
    if name not in names:
        print(
            f"dubhe-bench: unknown benchmark {name!r}; choose one of {', '.join(names)}",
            file=sys.stderr,
        )
        return 2
    global _MAIN_PID
    _MAIN_PID = os.getpid()
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        mod = importlib.import_module(f"bench.{name.replace('-', '_')}")
        rc: int = mod.main(args[1:])
    except (KeyboardInterrupt, asyncio.CancelledError):
        _stop_everything()
        print(f"dubhe-bench {name}: interrupted; nothing was judged", file=sys.stderr, flush=True)
        return 130
    if _interrupts:  # the benchmark absorbed the cancellation and finished: not a clean run
        _stop_everything()
        print(f"dubhe-bench {name}: interrupted; its figures are not a complete run",
              file=sys.stderr, flush=True)
        return 130
    return rc


if __name__ == "__main__":
    raise SystemExit(main())

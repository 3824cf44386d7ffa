"""The locustfile ``dubhe-lab swarm`` runs (``locust -f lab/swarm/locustfile.py``).

It defines the users of :mod:`lab.swarm.users`, one load shape driven by ``--lab-shape``, and a
request log: every request, notification and connection event as one JSON line in
``--lab-requests-dir`` (one file per process, so distributed workers never share one).

Extra options (besides Locust's own): ``--lab-shape``, ``--lab-users``, ``--lab-spawn-rate``,
``--lab-duration``, ``--lab-steps``, ``--lab-seed``, ``--lab-ca`` (CA file for wss://),
``--lab-requests-dir``. Pass the same on a master and on its workers.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import IO, Any

import orjson
from locust import LoadTestShape, events

from lab.swarm.shapes import SHAPES, make_shape
from lab.swarm.users import HeadSubscriber, LogSubscriber, RpcReader, TxSender

__all__ = ["HeadSubscriber", "LabShape", "LogSubscriber", "RpcReader", "TxSender"]


def _options(parser: Any) -> None:
    parser.add_argument("--lab-shape", choices=SHAPES, default="constant", include_in_web_ui=False)
    parser.add_argument("--lab-users", type=int, default=10, include_in_web_ui=False)
    parser.add_argument("--lab-spawn-rate", type=float, default=10.0, include_in_web_ui=False)
    parser.add_argument("--lab-duration", type=float, default=10.0, include_in_web_ui=False)
    parser.add_argument("--lab-steps", type=int, default=5, include_in_web_ui=False)
    parser.add_argument("--lab-seed", type=int, default=0, include_in_web_ui=False)
    parser.add_argument("--lab-ca", default="", include_in_web_ui=False)
    parser.add_argument("--lab-requests-dir", default="", include_in_web_ui=False)


class LabShape(LoadTestShape):
    """The shape named by ``--lab-shape`` (see :mod:`lab.swarm.shapes`)."""

    def tick(self) -> tuple[int, float] | None:
        opts = self.runner.environment.parsed_options if self.runner is not None else None
        if opts is None:
            return None
        shape = getattr(self, "_shape", None)
        if shape is None:
            shape = self._shape = make_shape(opts.lab_shape, opts.lab_users, opts.lab_spawn_rate,
                                             opts.lab_duration, opts.lab_steps)
        elapsed: float = self.get_run_time()  # type: ignore[no-untyped-call]
        return shape(elapsed)


_log: dict[str, IO[bytes]] = {}


def _open_log(environment: Any, **_: Any) -> None:
    opts = environment.parsed_options
    directory = getattr(opts, "lab_requests_dir", "") if opts is not None else ""
    # The master of a distributed run only aggregates: its workers log their own requests.
    if directory and type(environment.runner).__name__ != "MasterRunner":
        Path(directory).mkdir(parents=True, exist_ok=True)
        _log["f"] = open(Path(directory) / f"requests-{os.getpid()}.jsonl", "ab")


def _log_request(request_type: str, name: str, response_time: float, response_length: int,
                 exception: BaseException | None = None, context: Any = None, **_: Any) -> None:
    f = _log.get("f")
    if f is None:
        return
    entry: dict[str, Any] = {"t": round(time.time(), 4), "type": request_type, "name": name,
                             "ms": round(response_time, 3), "len": response_length,
                             "ok": exception is None}
    if exception is not None:
        entry["error"] = f"{type(exception).__name__}: {exception}"
    if isinstance(context, dict) and "user" in context:
        entry["user"] = context["user"]
    f.write(orjson.dumps(entry) + b"\n")


def _close_log(**_: Any) -> None:
    f = _log.pop("f", None)
    if f is not None:
        with contextlib.suppress(OSError):
            f.close()


events.init_command_line_parser.add_listener(_options)  # type: ignore[no-untyped-call]
events.init.add_listener(_open_log)  # type: ignore[no-untyped-call]
events.request.add_listener(_log_request)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_close_log)  # type: ignore[no-untyped-call]

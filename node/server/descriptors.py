"""The file-descriptor budget: every connection the listeners admit is a descriptor, and so is
each of the node's own files, sockets and pipes. If connections could take them all, the node
could no longer accept (asyncio pauses accepting on EMFILE: everyone is locked out), open a
RocksDB table file or reach its L1s.

At start-up (:func:`plan`, called by ``dubhe-node`` before it builds anything):

1. the soft ``RLIMIT_NOFILE`` is raised to the hard limit (as Go's runtime and geth do);
2. the node's own need is estimated (:func:`reserved_for`);
3. ``api.max_http_connections + api.max_connections + reserved`` must fit the soft limit. When
   the operator set either connection limit, a config that does not fit is refused with an
   error naming every number; when both are defaults, they are lowered to fit (in proportion)
   and the new values are logged.

The budget is in ``dubhe_status`` (``descriptors``) and ``/metrics``
(``dubhe_descriptor_budget{part}``).
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

from node.config import Config
from node.core.errors import ConfigError

log = logging.getLogger("node")

#: Descriptors the node keeps for itself whatever its config: 64 for standard streams, the log
#: and audit files, the event loop (epoll, self-pipe, signal fd), thread-pool wake-ups and the
#: listening sockets; 128 for connections beyond the caps (node.server.conn_guard: up to 64
#: newcomers on probation, up to 64 refused ones being half-closed).
BASE_RESERVE = 192
#: RocksDB keeps its table files open (``max_open_files`` -1); a lab-sized database has tens.
ROCKSDB_RESERVE = 256
#: Per scheduler worker (pipes of a worker process, or a thread's wake-up fd).
PER_WORKER = 4
#: Per configured L1 endpoint (HTTP pool connections, the WebSocket, hedged requests).
PER_L1_ENDPOINT = 16
#: Where the soft limit goes when the hard limit is unlimited (Linux's default fs.nr_open).
UNLIMITED_TARGET = 1 << 20


class BudgetError(ConfigError):
    """The config is valid but this machine's open-file limit cannot serve it (``dubhe-node``
    exits 1, as for other start-up failures; 2 is for invalid config files)."""


@dataclass(frozen=True, slots=True)
class DescriptorBudget:
    limit: int  # the soft RLIMIT_NOFILE in force
    hard: int  # the hard limit (-1: unlimited)
    before: int  # the soft limit the process started with
    reserved: int  # what the node keeps for itself
    http: int  # api.max_http_connections in force
    ws: int  # api.max_connections in force
    derived: bool  # the connection limits were lowered to fit

    def as_dict(self) -> dict[str, int | bool]:
        return {"limit": self.limit, "hard": self.hard, "startedWith": self.before,
                "reserved": self.reserved, "httpConnections": self.http,
                "wsConnections": self.ws, "lowered": self.derived}


def raise_soft_limit() -> tuple[int, int, int]:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; returns ``(before, now, hard)``
    (``hard`` -1 when unlimited). A refusal by the OS leaves the limit as it was."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    now = soft
    if soft != resource.RLIM_INFINITY and target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            now = target
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit from %d to %d", soft, target)
    return soft, now, -1 if hard == resource.RLIM_INFINITY else hard


def reserved_for(cfg: Config) -> int:
    """Descriptors the node needs besides client connections (an estimate, generous)."""
    n = BASE_RESERVE + PER_WORKER * cfg.scheduler.worker_threads
    if cfg.state.backend == "rocksdb":
        n += ROCKSDB_RESERVE
    for chain in (cfg.adapters.ethereum, cfg.adapters.sui):
        if chain is not None:
            n += PER_L1_ENDPOINT * (1 + len(chain.endpoints))
    return n


_KEYS = ("max_http_connections", "max_connections")


def plan(cfg: Config, limit: int, *, hard: int = -1, before: int | None = None,
         ) -> tuple[Config, DescriptorBudget]:
    """Fit the connection limits of ``cfg`` into ``limit`` descriptors; returns the config to
    run (with lowered limits when they were defaults) and the budget. Raises
    :class:`BudgetError` naming the numbers when explicitly set limits do not fit."""
    reserved = reserved_for(cfg)
    api = cfg.api
    wanted = {k: int(getattr(api, k)) for k in _KEYS}
    explicit = {k for k in _KEYS if k in api.model_fields_set}
    available = limit - reserved
    total = sum(wanted.values())
    where = (f"the open-file limit of {limit} (RLIMIT_NOFILE"
             + (f", raised from {before}" if before is not None and before != limit else "")
             + (f", hard limit {hard}" if hard >= 0 else ", no hard limit") + ")")
    if total <= available:
        return cfg, DescriptorBudget(limit, hard, before if before is not None else limit,
                                     reserved, wanted["max_http_connections"],
                                     wanted["max_connections"], False)
    fixed = sum(wanted[k] for k in explicit)
    if (explicit and fixed + (len(_KEYS) - len(explicit)) > available) or available < len(_KEYS):
        parts = " + ".join(f"api.{k} ({wanted[k]})" for k in _KEYS)
        raise BudgetError(
            [(", ".join(f"api.{k}" for k in sorted(explicit)) or "api.max_connections",
              f"{parts} + {reserved} descriptors the node reserves for itself = "
              f"{total + reserved} exceed {where}: lower the connection limits to "
              f"{max(available, 0)} in total, or raise the limit (ulimit -n; LimitNOFILE= "
              "in a systemd unit)")],
            "descriptor budget",
        )
    # Lower the defaulted limits, in proportion, into what the explicit ones leave.
    free = [k for k in _KEYS if k not in explicit]
    left = available - fixed
    share = sum(wanted[k] for k in free)
    new = dict(wanted)
    for i, k in enumerate(free):
        if i == len(free) - 1:
            new[k] = max(1, min(wanted[k], left - sum(new[j] for j in free[:i])))
        else:
            new[k] = max(1, min(wanted[k], left * wanted[k] // share))
    log.warning(
        "%s leaves %d descriptors for connections after %d reserved: "
        "api.max_http_connections %d -> %d, api.max_connections %d -> %d "
        "(set them, or raise the limit, to choose)",
        where, available, reserved, wanted["max_http_connections"],
        new["max_http_connections"], wanted["max_connections"], new["max_connections"],
    )
    fitted = cfg.model_copy(update={"api": api.model_copy(update=new)})
    return fitted, DescriptorBudget(limit, hard, before if before is not None else limit,
                                    reserved, new["max_http_connections"],
                                    new["max_connections"], True)

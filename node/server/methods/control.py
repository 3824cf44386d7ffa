"""Admin control (the ``dubhe_admin_`` namespace: bearer token required, every call audited):
pausing and resuming block production, and the log level."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from node.core.hexutil import data, qty
from node.rpc.jsonrpc import Params
from node.server.methods.ports import ProductionControl
from node.server.methods.table import Call, rpc

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _level(v: object) -> str:
    if v not in LOG_LEVELS:
        raise ValueError('expected "DEBUG", "INFO", "WARNING" or "ERROR"')
    return str(v)


class ControlMethods:
    """``set_level`` applies a level to the process's loggers (the root logger by default)."""

    def __init__(self, production: ProductionControl,
                 set_level: Callable[[str], None] = logging.getLogger().setLevel) -> None:
        self.production = production
        self.set_level = set_level

    @rpc("dubhe_admin_pauseProduction")
    async def pause(self, p: Params, c: Call) -> dict[str, Any]:
        """Answers once no block is being built: no block appears after the reply until resume.
        ``{"paused": true, "lastBlock", "lastBlockHash", "queuedDeploys"}``: the last committed
        block (the one any later block will follow) and the deploys waiting for the next one."""
        p.max_count(0)
        head = await self.production.pause()
        return {
            "paused": True,
            "lastBlock": qty(head.number) if head else None,
            "lastBlockHash": data(head.hash) if head else None,
            "queuedDeploys": self.production.queued_deploys(),
        }

    @rpc("dubhe_admin_resumeProduction")
    def resume(self, p: Params, c: Call) -> bool:
        p.max_count(0)
        self.production.resume()
        return True

    @rpc("dubhe_admin_setLogLevel")
    def set_log_level(self, p: Params, c: Call) -> str:
        p.max_count(1)
        lv = p.get(0, "level", _level)
        self.set_level(lv)
        return lv


__all__ = ["LOG_LEVELS", "ControlMethods"]

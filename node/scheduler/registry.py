"""Strategy names (``[scheduler] strategy``) to constructors."""

from __future__ import annotations

from collections.abc import Callable

from node.core.execution import BlockExecutor, TxExecutor
from node.scheduler.serial import Serial

Factory = Callable[[TxExecutor, int], BlockExecutor]

STRATEGIES: dict[str, Factory] = {
    "Serial": Serial,
}


def create(name: str, executor: TxExecutor, workers: int) -> BlockExecutor:
    """Build the named strategy with ``workers`` workers; raises ``KeyError`` naming the choices."""
    try:
        factory = STRATEGIES[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}; choose one of {sorted(STRATEGIES)}") from None
    return factory(executor, workers)

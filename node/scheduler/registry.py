"""Strategy names (``[scheduler] strategy``) to constructors.

``create(name, executor, workers)`` is what the node calls. Strategies that can run on worker
processes also need an *executor factory*: a picklable zero-argument callable that builds the
TxExecutor inside each worker process (a module-level function or a small dataclass with
``__call__``). Pass it, with ``substrate="processes"``, as
``create(name, executor, workers, executor_factory=..., substrate="processes")``.
"""

from __future__ import annotations

from collections.abc import Callable

from node.core.execution import BlockExecutor, TxExecutor
from node.scheduler.adaptive import Adaptive, ParallelGate
from node.scheduler.blockstm import AptosBlockSTM
from node.scheduler.objectdag import SuiObjectDAG
from node.scheduler.sealevel import SolanaParallel
from node.scheduler.serial import Serial
from node.scheduler.substrate import SUBSTRATES, ExecutorFactory, SubstrateKind

Factory = Callable[[TxExecutor, int], BlockExecutor]

STRATEGIES: dict[str, Factory] = {
    "Serial": Serial,
    "SolanaParallel": SolanaParallel,
    "AptosBlockSTM": AptosBlockSTM,
    "SuiObjectDAG": SuiObjectDAG,
}

#: Strategies whose workers may be processes (the others ignore ``substrate``).
PROCESS_CAPABLE = frozenset({"SolanaParallel", "SuiObjectDAG"})


def create(
    name: str,
    executor: TxExecutor,
    workers: int,
    *,
    executor_factory: ExecutorFactory | None = None,
    substrate: SubstrateKind = "threads",
    mp_context: str = "forkserver",
    adaptive: bool = False,
    gate: ParallelGate | None = None,
    contention_fallback: bool = True,
) -> BlockExecutor:
    """Build the named strategy with ``workers`` workers; raises ``KeyError`` naming the choices.

    ``substrate`` is ``"threads"`` (default; scales when the executor releases the GIL) or
    ``"processes"`` (needs ``executor_factory``; Sealevel and the object DAG only, the others
    run as they always do). ``mp_context`` is the multiprocessing start method for processes.
    ``adaptive=True`` wraps a parallel strategy in :class:`~node.scheduler.adaptive.Adaptive`
    (parallel only where it measurably pays; ``gate`` to tune or pin it); Serial is never wrapped.
    ``contention_fallback`` lets Block-STM abandon a heavily contended block and run it in order
    (independent of ``adaptive``; the other strategies have no such fallback).
    Call ``close()`` on the result to stop its workers.
    """
    try:
        factory = STRATEGIES[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}; choose one of {sorted(STRATEGIES)}") from None
    if substrate not in SUBSTRATES:
        raise ValueError(f"unknown substrate {substrate!r}; choose one of {', '.join(SUBSTRATES)}")
    strategy: BlockExecutor
    if name in PROCESS_CAPABLE:
        cls: Callable[..., BlockExecutor] = factory
        strategy = cls(
            executor, workers, executor_factory=executor_factory, substrate=substrate,
            mp_context=mp_context,
        )
    elif name == "AptosBlockSTM":
        strategy = AptosBlockSTM(executor, workers, contention_fallback=contention_fallback)
    else:
        strategy = factory(executor, workers)
    if (adaptive or gate is not None) and name != "Serial":
        return Adaptive(strategy, executor, gate)
    return strategy

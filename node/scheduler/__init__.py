"""Block execution strategies (one module each) behind :class:`node.core.execution.BlockExecutor`.

Use :func:`node.scheduler.registry.create` to build the strategy named in ``[scheduler] strategy``.
"""

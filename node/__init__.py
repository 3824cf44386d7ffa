"""Dubhe Channel reference node.

Layers (enforced by import-linter, see pyproject.toml)::

    node.core  <-  node.{rpc, scheduler, vm, state}  <-  node.{loader, adapters, chain}  <-
    node.server

``node.core`` holds the types every layer shares (transactions, blocks, receipts, the executor
and state-reader protocols, the error tree); it depends on the standard library and
``cryptography`` only.
"""

__version__ = "0.1.0"

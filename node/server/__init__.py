"""The node's asyncio shell: ``node.py`` wires the parts; ``methods/`` answers JSON-RPC (one group
per module, over narrow ports), ``dispatch.py`` admits requests, ``http.py``/``ws.py`` are the
listeners, ``production.py`` builds blocks, ``status.py`` reports (see docs/architecture.md)."""

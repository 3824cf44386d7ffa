"""Dubhe Channel Lab: the node behind real nginx, with mock L1 chains and a Toxiproxy-compatible
fault proxy on every hop.

* :mod:`lab.orchestrate` — ``Lab.up(spec)``, backends, run directories (``dubhe-lab``:
  :mod:`lab.cli`; pytest fixtures: :mod:`lab.pytest_plugin`);
* :mod:`lab.links` — the lab's links, one list; :mod:`lab.nginx` — config rendering, TLS;
* :mod:`lab.proxy` — the fault proxy; :mod:`lab.l1` — mock Ethereum and Sui chains;
* :mod:`lab.clients` — JSON-RPC clients; :mod:`lab.demo` — ``make run``.

``lab`` may import ``node.core`` and ``node.rpc`` only (import-linter enforces it).
"""

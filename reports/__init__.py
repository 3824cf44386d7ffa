"""Nightly resilience reports: a run directory in, a static HTML report with plots out.

The package reads result files only — scenario records (docs/results.md), swarm output
(docs/swarm.md), ``dubhe-bench --json`` files, JUnit XML, the nightly's ``parts.json`` — never
the live lab, and imports neither :mod:`lab` nor :mod:`node` (an import-linter contract).

* :func:`reports.render.render_run` — one run directory to ``<run>/report/index.html`` (plots
  beside it), ``<run>/metrics.json`` and ``<run>/trends.json``; the index of all runs beside the
  run directories (``<root>/index.html``).
* :mod:`reports.trends` — metrics compared with the previous runs (noise-aware regressions).

``reports/nightly/``, ``reports/runs/`` and ``reports/scenarios/`` are run output (gitignored),
not code. The layout of a run directory and the report are in docs/reports.md.
"""

from __future__ import annotations

"""Scenarios: production incidents reproduced in the lab, as data plus small Python.

* ``model.py`` — scenario files (``scenarios/data/*.toml``): variants, lab overlays, fault
  timelines, workloads, expectations by phase, "sometimes" signals; validated with errors naming
  file and key;
* ``workloads/`` — the registered workloads (subscribers, saturation, TLS, ...);
* ``nemesis.py`` — plays a fault timeline on a running lab; ``fleet.py`` — subscriber groups and
  transaction senders; ``figures.py`` — figures from histories, nginx logs and proxy events;
* ``runner.py`` — runs a case in a fresh lab and writes its result record and histories.

``pytest scenarios`` (scenarios/conftest.py) is the way to run them; docs/scenarios.md lists them.
"""

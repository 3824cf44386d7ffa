"""``python -m lab.mutation``: the command line of :mod:`lab.mutation`."""

from lab.mutation.cli import main

raise SystemExit(main())

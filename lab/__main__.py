"""``python -m lab``: the same as ``dubhe-lab``."""

from lab.cli import main

raise SystemExit(main())

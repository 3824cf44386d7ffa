"""``python -m bench``: the same as ``dubhe-bench``."""

from bench.cli import main

raise SystemExit(main())

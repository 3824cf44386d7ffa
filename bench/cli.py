"""``dubhe-bench SUBCOMMAND [options]``: runs ``bench/<subcommand>.py``'s ``main(argv)``.

Each benchmark module prints what it measured, the baseline it measured in the same run, and the
ratio. Subcommand names use dashes (``ws-fanout`` -> ``bench/ws_fanout.py``).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def _available() -> list[str]:
    return sorted(
        m.name.replace("_", "-")
        for m in pkgutil.iter_modules(bench.__path__)
        if m.name not in {"cli", "common"} and not m.name.startswith("_")
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    names = _available()
    if not args or args[0] in {"-h", "--help"}:
        print("usage: dubhe-bench {" + ",".join(names) + "} [options]")
        print("       dubhe-bench SUBCOMMAND --help for its options")
        return 0 if args else 2
    name = args[0]
    if name not in names:
        print(
            f"dubhe-bench: unknown benchmark {name!r}; choose one of {', '.join(names)}",
            file=sys.stderr,
        )
        return 2
    mod = importlib.import_module(f"bench.{name.replace('-', '_')}")
    rc: int = mod.main(args[1:])
    return rc


if __name__ == "__main__":
    raise SystemExit(main())

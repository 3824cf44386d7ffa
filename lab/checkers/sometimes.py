""""Sometimes" assertions (after Antithesis): fault signals a scenario declares must each be seen
at least once, so a green run cannot hide a fault that never fired.

::

    s = Sometimes()
    s.declare("toxic fired", "the proxy's /events shows ws_cut fired")
    s.observe("toxic fired", fired(events, toxic="cut"))
    s.expectations()     # one ``fault`` expectation per declared signal: observed >= 1

Helpers extract counts from the usual sources: the proxy's event log (:func:`fired`), client
histories (:func:`closes_with`), nginx error lines (``lab.checkers.nginx_logs.signature``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lab.checkers.expect import Expectation


class Sometimes:
    def __init__(self) -> None:
        self._declared: dict[str, str] = {}
        self._seen: dict[str, int] = {}

    def declare(self, name: str, description: str) -> None:
        if name in self._declared:
            raise ValueError(f"signal {name!r} declared twice")
        self._declared[name] = description
        self._seen[name] = 0

    def observe(self, name: str, count: int = 1) -> None:
        if name not in self._declared:
            raise ValueError(f"signal {name!r} was not declared (declared: "
                             f"{', '.join(self._declared) or 'none'})")
        self._seen[name] += count

    def missing(self) -> list[str]:
        """Declared signals never observed."""
        return [n for n in self._declared if self._seen[n] == 0]

    def expectations(self) -> list[Expectation]:
        return [Expectation(f"fault signal: {name}", ">= 1 (sometimes)", self._seen[name],
                            self._seen[name] >= 1, "fault",
                            desc if self._seen[name] else f"never fired: {desc}")
                for name, desc in self._declared.items()]


def fired(events: Iterable[dict[str, Any]], *, proxy: str | None = None,
          toxic: str | None = None, event: str = "toxic_fired") -> int:
    """Events of the proxy's log (``toxic_fired`` by default) on ``proxy`` from ``toxic``."""
    return sum(1 for e in events if e.get("event") == event
               and (proxy is None or e.get("proxy") == proxy)
               and (toxic is None or e.get("toxic") == toxic))


def closes_with(events: Iterable[dict[str, Any]], code: int, by: str | None = None) -> int:
    """Client closes with ``code`` (``by`` server/client/none) in histories."""
    return sum(1 for e in events if e.get("ev") == "close" and e.get("code") == code
               and (by is None or e.get("by") == by))


__all__ = ["Sometimes", "closes_with", "fired"]

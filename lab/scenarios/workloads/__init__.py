"""Workloads: the Python half of a scenario. Each is registered under a name (what scenario files
say in ``workload = "..."``) with a pydantic model of its parameters (``params = {...}``, unknown
keys are errors) and the figures it produces (names or ``fnmatch`` patterns, checked when a
scenario file is loaded)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel

from lab.scenarios.figures import GENERIC

WorkloadFn = Callable[[Any, Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class WorkloadEntry:
    name: str
    fn: WorkloadFn
    params: type[BaseModel]
    figures: Callable[[Any], list[str]]

    def describe_figures(self, params: Any) -> str:
        return "produces: " + ", ".join([*self.figures(params), *GENERIC])


REGISTRY: dict[str, WorkloadEntry] = {}


def workload(name: str, params: type[BaseModel], figures: Callable[[Any], list[str]]
             ) -> Callable[[WorkloadFn], WorkloadFn]:
    def deco(fn: WorkloadFn) -> WorkloadFn:
        if name in REGISTRY:
            raise ValueError(f"workload {name!r} registered twice")
        REGISTRY[name] = WorkloadEntry(name, fn, params, figures)
        return fn

    return deco


def known_figure(entry: WorkloadEntry, params: Any, figure: str) -> bool:
    return any(fnmatchcase(figure, p) for p in [*entry.figures(params), *GENERIC])


# Registration happens on import.
from lab.scenarios.workloads import (  # noqa: E402, F401
    determinism,
    l1_failover,
    rpc_flood,
    saturation,
    slow_consumer,
    subscribers,
    tls,
)

__all__ = ["REGISTRY", "WorkloadEntry", "known_figure", "workload"]

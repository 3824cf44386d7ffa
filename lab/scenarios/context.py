"""What a workload gets: the running lab, its case, seeds, histories, the nemesis."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from lab.clients.history import History
from lab.orchestrate.lab import Lab
from lab.orchestrate.spec import LabSpec, derive_seed
from lab.scenarios.model import Case
from lab.scenarios.nemesis import Nemesis


@dataclass
class RunContext:
    lab: Lab
    case: Case
    progress: Callable[[str], None]
    histories: list[History] = field(default_factory=list)
    #: Extra facts the workload wants in the record (besides its figures).
    details: dict[str, Any] = field(default_factory=dict)
    nemeses: list[Nemesis] = field(default_factory=list)
    #: Starts another lab for this case (torn down with the case's own); workloads that compare
    #: labs (scheduler determinism) use it.
    start_lab: Callable[[LabSpec], Awaitable[Lab]] | None = None
    #: Run directories of the extra labs (recorded in the result's details).
    extra_labs: list[str] = field(default_factory=list)

    async def another_lab(self, spec: LabSpec) -> Lab:
        if self.start_lab is None:
            raise RuntimeError("this run cannot start other labs")
        lab = await self.start_lab(spec)
        self.extra_labs.append(str(lab.run_dir))
        self.progress(f"   another lab {lab.run_id} (seed {lab.seed})")
        return lab

    @property
    def seed(self) -> int:
        """The lab's seed (printed by the lab, recorded in lab.json and the result record)."""
        return self.lab.seed

    def derived_seed(self, purpose: str) -> int:
        """A seed for one purpose (a client's backoff, a workload's choices), stable per run."""
        return derive_seed(self.seed, purpose)

    def rng(self, purpose: str) -> random.Random:
        return random.Random(self.derived_seed(purpose))

    def history(self, client: str) -> History:
        h = History(client)
        self.histories.append(h)
        return h

    def nemesis(self) -> Nemesis:
        """The case's fault timeline, to be entered when the workload's steady state begins."""
        n = Nemesis(self.lab, self.case.faults, progress=self.progress)
        self.nemeses.append(n)
        return n


__all__ = ["RunContext"]

"""Replaying an incident file (``dubhe-lab replay FILE [--fixed] [--seed N]``).

:func:`replay` builds the incident's case for the mode (:mod:`lab.scenarios.incident`), runs it
in a fresh lab with the scenario runner (:func:`lab.scenarios.runner.run_case`: result record,
histories, log offsets), writes ``replay.json`` (the incident, mode, seed, the timeline the seed
gave, the command that replays it) beside the record and renders the timeline view
(:func:`reports.timeline.render`: ``timeline.png``, ``timeline.html``).

A run directory of the command (``reports/replays/<stamp>-<name>-<mode>/``) is shaped like a
nightly run directory (``scenarios/`` and ``labs/``), so ``dubhe-lab report DIR`` renders it too::

    scenarios/listing.jsonl
    scenarios/incident-<name>--<mode>/result.json history.jsonl replay.json timeline.html .png
    labs/<lab run id>/          the lab's run directory: logs, nginx/error.log, access.log ...
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.orchestrate.lab import Lab
from lab.orchestrate.spec import LabSpec
from lab.scenarios.incident import Incident, Mode
from lab.scenarios.runner import Outcome, run_case

REPLAY_VERSION = 1


@dataclass(frozen=True)
class Replay:
    """A finished replay: the runner's outcome and the files written beside its record."""

    incident: Incident
    mode: Mode
    profile: str
    seed: int
    outcome: Outcome
    timeline_html: Path | None
    timeline_png: Path | None
    #: Why the timeline could not be rendered (the verdict does not depend on it).
    timeline_error: str | None = None

    @property
    def holds(self) -> bool:
        """The reproduction (``repro``) or the fix (``fixed``) holds."""
        return self.outcome.passed

    @property
    def command(self) -> str:
        """The command that replays this run."""
        return command(self.incident, self.mode, self.profile, self.seed)

    @property
    def case_dir(self) -> Path:
        return self.outcome.path.parent

    def verdict(self) -> str:
        """One line: whether it held, and why not (each failed expectation, observed value)."""
        what = {"repro": ("REPRODUCED", "NOT REPRODUCED"),
                "fixed": ("FIX HOLDS", "FIX DOES NOT HOLD")}[self.mode]
        head = f"{what[0] if self.holds else what[1]}: {self.incident.name} ({self.mode}, " \
               f"{self.profile}, seed {self.seed})"
        return head + f": {self.outcome.record['summary']}"


def command(incident: Incident, mode: Mode, profile: str, seed: int) -> str:
    """The command that replays this run (same incident, mode, profile and seed)."""
    argv = ["dubhe-lab", "replay", str(incident.path)]
    if mode == "fixed":
        argv.append("--fixed")
    if profile != "fast":
        argv += ["--profile", profile]
    return shlex.join([*argv, "--seed", str(seed)])


async def replay(incident: Incident, *, mode: Mode, profile: str = "fast",
                 seed: int | None = None, results_dir: Path,
                 start_lab: Callable[[LabSpec], Awaitable[Lab]],
                 progress: Callable[[str], None] | None = None,
                 render: bool = True) -> Replay:
    """Run the incident in ``mode`` in a fresh lab (``start_lab``; the caller tears it down)
    and write its record, histories, ``replay.json`` and timeline under ``results_dir``.
    ``seed`` replaces the file's. Raises :class:`~lab.scenarios.model.ScenarioError` for a
    profile the file cannot build; a lab that fails to start gives a failed replay."""
    say = progress or (lambda _: None)
    case = incident.case(mode, profile, seed)
    used_seed = int(case.spec.seed if case.spec.seed is not None else incident.data.seed)
    say(f"== replay {incident.name} ({mode}, {profile} profile): seed {used_seed} "
        f"(same seed, same fault timeline)")
    for f in case.faults:
        until = f" for {f.for_s:g} s" if f.for_s is not None else " until the end"
        say(f"   timeline: at {f.at_s:g} s {f.label()}"
            + (f" on {f.link}" if f.link else "") + until)
    if not case.faults:
        say("   timeline: no faults (the configuration alone)")
    outcome = await run_case(case, start_lab=start_lab, results_dir=results_dir, progress=say)
    case_dir = outcome.path.parent
    meta = {
        "version": REPLAY_VERSION, "incident": incident.name, "file": str(incident.path),
        "mode": mode, "profile": profile, "seed": used_seed,
        "description": case.variant.description,
        "timeline": [{**f.model_dump(exclude_defaults=True), "at_s": f.at_s,
                      "label": f.label()} for f in case.faults],
        "command": command(incident, mode, profile, used_seed),
        "holds": outcome.passed,
    }
    (case_dir / "replay.json").write_text(json.dumps(meta, indent=2) + "\n")
    html = png = None
    error = None
    if render:
        html, png, error = _render(case_dir, results_dir)
    return Replay(incident, mode, profile, used_seed, outcome, html, png, error)


def _render(case_dir: Path, results_dir: Path) -> tuple[Path | None, Path | None, str | None]:
    """The timeline view; a rendering failure is returned, never raised (the verdict stands)."""
    try:
        from reports.timeline import render

        t = render(case_dir, run_dir=results_dir.parent)
    except Exception as exc:
        return None, None, f"{type(exc).__name__}: {exc}"
    return t.html, t.png, "; ".join(t.problems) or None


def read_replay(case_dir: Path) -> dict[str, Any]:
    """The ``replay.json`` of a replayed case."""
    data = json.loads((case_dir / "replay.json").read_text())
    assert isinstance(data, dict)
    return data


__all__ = ["REPLAY_VERSION", "Replay", "command", "read_replay", "replay"]

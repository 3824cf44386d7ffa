"""The nemesis (after Jepsen): a variant's fault timeline played against a running lab.

``async with Nemesis(lab, faults) as nemesis:`` starts every fault at its offset from entering
(toxics on links through the proxy API, actions on components) and removes each toxic after
``for_s`` or once the proxy logged ``until_events`` of its events (at most ``for_s`` if both are
given). Leaving the block removes
whatever is still on and resumes paused components, so a failing workload never leaves the lab
faulted. :attr:`Nemesis.windows` records when each fault was on (Unix seconds), for the result
record and the reports' shaded fault windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from lab.orchestrate.lab import Lab
from lab.scenarios.model import Fault


class Nemesis:
    def __init__(self, lab: Lab, faults: Sequence[Fault], *,
                 progress: Callable[[str], None] | None = None) -> None:
        self.lab = lab
        self.faults = list(faults)
        self.progress = progress or (lambda _: None)
        self.windows: list[dict[str, Any]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._added: dict[tuple[str, str], dict[str, Any]] = {}
        self._paused: set[str] = set()
        self._stopped: set[str] = set()
        self.errors: list[str] = []
        self._t0 = 0.0

    async def __aenter__(self) -> Nemesis:
        self._t0 = asyncio.get_running_loop().time()
        self._tasks = [asyncio.create_task(self._play(i, f)) for i, f in enumerate(self.faults)]
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def done(self) -> None:
        """Wait until every timed fault has been applied and (where timed) removed."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for (link, name), window in list(self._added.items()):
            await self._remove(link, name, window, "at the end of the workload")
        for comp in sorted(self._paused):
            with contextlib.suppress(Exception):
                await self.lab.resume(comp)
        for comp in sorted(self._stopped):
            with contextlib.suppress(Exception):
                await self.lab.start_component(comp)

    def _at(self, offset: float) -> float:
        return self._t0 + offset

    async def _sleep_until(self, when: float) -> None:
        delay = when - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _play(self, index: int, f: Fault) -> None:
        await self._sleep_until(self._at(f.at_s))
        window: dict[str, Any] = {"fault": f.label(), "index": index, "on": time.time(),
                                  "off": None}
        self.windows.append(window)
        try:
            if f.component is not None:
                await self._act(f, window)
                return
            assert f.link is not None and f.toxic is not None
            name = f.name or f"nemesis-{index}-{f.toxic}"
            proxy = await self.lab.link(f.link)
            seq0 = await self._last_seq() if f.until_events else 0
            await proxy.add_toxic(f.toxic, name=name, stream=f.stream, toxicity=f.toxicity,
                                  attributes=f.attributes)
            window.update(link=f.link, toxic=f.toxic, name=name)
            self._added[(f.link, name)] = window
            self.progress(f"   nemesis: +{f.toxic} on {f.link} ({name})")
            if f.until_events is not None:
                # for_s, if given, caps the wait: the sometimes-signal then tells whether it fired
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._until_events(f, name, seq0),
                        None
                        if f.for_s is None
                        else self._at(f.at_s + f.for_s) - asyncio.get_running_loop().time(),
                    )
            elif f.for_s is not None:
                await self._sleep_until(self._at(f.at_s + f.for_s))
            else:
                return  # on until the end
            await self._remove(f.link, name, window, "as scheduled")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            msg = f"fault {f.label()}: {type(exc).__name__}: {exc}"
            self.errors.append(msg)
            window["error"] = msg

    async def _last_seq(self) -> int:
        events = await self.lab.fault_events()
        return int(events[-1]["seq"]) if events else 0

    async def _until_events(self, f: Fault, name: str, seq0: int) -> None:
        assert f.until_events is not None
        seen = 0
        seq = seq0
        while seen < f.until_events:
            await asyncio.sleep(0.1)
            for e in await self.lab.fault_events(since=seq):
                seq = max(seq, int(e["seq"]))
                if e.get("event") == f.event and e.get("toxic") == name:
                    seen += 1

    async def _remove(self, link: str, name: str, window: dict[str, Any], why: str) -> None:
        self._added.pop((link, name), None)
        with contextlib.suppress(Exception):
            proxy = await self.lab.link(link)
            await proxy.remove_toxic(name)
        window["off"] = time.time()
        self.progress(f"   nemesis: -{name} on {link} ({why})")

    async def _act(self, f: Fault, window: dict[str, Any]) -> None:
        comp, action = f.component, f.action
        assert comp is not None and action is not None
        window.update(component=comp, action=action)
        self.progress(f"   nemesis: {action} {comp}")
        if action == "kill":
            await self.lab.kill(comp)
            self._stopped.add(comp)
        elif action == "stop":
            await self.lab.stop(comp)
            self._stopped.add(comp)
        elif action == "start":
            window["ready_s"] = round(await self.lab.start_component(comp), 3)
            self._stopped.discard(comp)
        elif action in ("restart", "kill-restart"):
            window["ready_s"] = round(
                await self.lab.restart(comp, kill=action == "kill-restart"), 3
            )
        elif action == "pause":
            await self.lab.pause(comp)
            self._paused.add(comp)
            if f.for_s is not None:
                await self._sleep_until(self._at(f.at_s + f.for_s))
                await self.lab.resume(comp)
                self._paused.discard(comp)
        elif action == "resume":
            await self.lab.resume(comp)
            self._paused.discard(comp)
        window["off"] = time.time()


__all__ = ["Nemesis"]

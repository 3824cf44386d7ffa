"""``cut`` (lab extra): close live connections on a timer.

``after`` > 0: close each connection ``after`` ms after it was accepted (connections already older
are closed at once). ``at`` > 0: close every connection that was open ``at`` ms after the toxic
was added (or activated by its schedule); connections opened later are left alone. ``reset`` = true
sends RST instead of FIN.
Data passes unchanged until the cut. Clients of a WebSocket see 1006.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.proxy.stream import End
from lab.proxy.toxics.base import TimedOut, Toxic, ToxicStub, register


@register("cut")
@dataclass
class CutToxic(Toxic):
    moment = True
    after: int = 0  # ms after the connection opened
    at: int = 0  # ms after the toxic was added or activated
    reset: bool = False

    def deadline(self, stub: ToxicStub) -> float | None:
        """Loop time of the cut for this link, or ``None`` if it never comes."""
        times = []
        if self.after > 0:
            times.append(stub.info.opened_at + self.after / 1000.0)
        if self.at > 0:
            when = stub.toxic_started + self.at / 1000.0
            if stub.info.opened_at < when:
                times.append(when)
        return min(times) if times else None

    async def pipe(self, stub: ToxicStub) -> None:
        deadline = self.deadline(stub)
        while True:
            item = await stub.recv_before(deadline)
            if isinstance(item, TimedOut):
                stub.record("cut", reset=self.reset)
                stub.fired("cut", reset=self.reset)
                stub.close(End.RESET if self.reset else End.CLOSE)
                return
            if item is None:
                stub.close()
                return
            stub.send(item)

"""``flap`` (lab extra): take the whole proxy down and up on a period.

Starting with an ``up`` ms phase, then ``down`` ms with the listener closed (new connects get
ECONNREFUSED) and every live connection closed, then up again, until the toxic is removed or its
schedule stops it (the proxy is then left up). ``stream`` and ``toxicity`` do not apply: it acts
on the proxy, not on a link.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.proxy.toxics.base import ProxyControl, Toxic, ToxicStub, register


@register("flap")
@dataclass
class FlapToxic(Toxic):
    moment = True  # each time it takes the proxy down (reported by the proxy, not per link)
    up: int = 1000  # ms
    down: int = 1000  # ms

    async def pipe(self, stub: ToxicStub) -> None:
        while True:
            chunk = await stub.recv()
            if chunk is None:
                stub.close()
                return
            stub.send(chunk)

    async def run_proxy(self, control: ProxyControl) -> None:
        try:
            while True:
                await control.sleep(max(self.up, 1) / 1000.0)
                await control.set_down(True)
                await control.sleep(max(self.down, 1) / 1000.0)
                await control.set_down(False)
        finally:
            await control.set_down(False)

"""The followed L1 chains: ``dubhe_getL1Head``."""

from __future__ import annotations

from typing import Any

from node.rpc.jsonrpc import Params
from node.server.methods.ports import L1Heads
from node.server.methods.table import Call, rpc

#: One chain's head ``{number, hash, timestampMs}``, or None before the first.
L1Head = dict[str, object] | None


class L1Methods:
    def __init__(self, l1: L1Heads) -> None:
        self.l1 = l1

    def _chain(self, v: Any) -> str:
        if v not in self.l1.chains:
            raise ValueError(f"not a followed chain; followed: {sorted(self.l1.chains) or 'none'}")
        return str(v)

    @rpc("dubhe_getL1Head")
    def l1_head(self, p: Params, c: Call) -> L1Head | dict[str, L1Head]:
        """``[chain?]``: the head of one followed L1 (``ethereum``/``sui``), or of all of them
        (``{chain: head}``); a head is ``{number, hash, timestampMs}``, or null before the first."""
        p.max_count(1)
        name = p.opt(0, "chain", self._chain, "")
        heads = self.l1.heads()
        return heads[name] if name else heads

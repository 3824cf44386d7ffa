"""What the node reports about itself: ``dubhe_status``."""

from __future__ import annotations

from typing import Any

from node.rpc.jsonrpc import Params
from node.server.methods.ports import StatusSource
from node.server.methods.table import Call, rpc


class NodeInfoMethods:
    def __init__(self, status: StatusSource) -> None:
        self.source = status

    @rpc("dubhe_status")
    def status(self, p: Params, c: Call) -> dict[str, Any]:
        """The status document (fields listed in ``node.server.status.NodeStatus.status``)."""
        p.max_count(0)
        return self.source.status()

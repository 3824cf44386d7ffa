"""The method table: explicit registration, admission flags, and the node's table matching the
methods README.md documents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from node.config import Config
from node.rpc.jsonrpc import Params
from node.server.methods.table import Call, MethodTable, rpc
from node.server.node import Node

README = Path(__file__).resolve().parents[3] / "README.md"


class Group:
    @rpc("x_plain")
    def plain(self, p: Params, c: Call) -> int:
        return 1

    @rpc("x_stream", ws_only=True)
    async def stream(self, p: Params, c: Call) -> int:
        return 2

    @rpc("dubhe_admin_x")
    def admin(self, p: Params, c: Call) -> int:
        return 3

    def helper(self) -> None:
        """Not marked: not a method."""


def test_groups_register_their_marked_methods_with_their_rules() -> None:
    g = Group()
    t = MethodTable().add_group(g)
    assert t.names() == ["dubhe_admin_x", "x_plain", "x_stream"]
    assert t["x_plain"].handler == g.plain and not t["x_plain"].is_async and not t["x_plain"].admin
    assert t["x_stream"].ws_only and t["x_stream"].is_async
    assert t["dubhe_admin_x"].admin and not t["dubhe_admin_x"].ws_only


def test_a_name_registers_once_and_a_group_needs_methods() -> None:
    t = MethodTable().add_group(Group())
    with pytest.raises(ValueError, match=r"JSON-RPC method .* registered twice"):
        t.add_group(Group())
    with pytest.raises(ValueError, match="object has no @rpc methods"):
        MethodTable().add_group(object())


def _documented() -> set[str]:
    api = README.read_text().split("## The node's API", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"\b(?:web3|net|eth|dubhe)_[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*", api))


def test_the_node_serves_exactly_the_documented_methods() -> None:
    cfg = Config.model_validate({"state": {"backend": "memory"}, "vm": {"default_vm": "Reference"}})
    node = Node(cfg)
    try:
        assert set(node.methods.names()) == _documented()
    finally:
        node.block_executor.close()
        node.store.close()

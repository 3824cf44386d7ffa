"""Scripted faults for the next K requests of one endpoint, free of I/O.

A :class:`FaultRule` says *what* goes wrong (HTTP status with optional ``Retry-After``, a JSON-RPC
error, a stall, a malformed body) and for how many matching requests. :meth:`FaultPlan.take` is
called once per incoming HTTP request or WebSocket call and returns the fault to apply, if any;
:func:`mangle` rewrites a correct response body into the requested malformed one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import orjson

Malformed = Literal["bad_json", "truncated", "wrong_type", "missing_result", "wrong_id"]
MALFORMED_KINDS: tuple[Malformed, ...] = (
    "bad_json", "truncated", "wrong_type", "missing_result", "wrong_id",
)
Transport = Literal["http", "ws", "any"]


@dataclass(frozen=True, slots=True)
class Fault:
    #: Answer with this HTTP status instead of JSON-RPC (HTTP only), e.g. 429 or 503.
    http_status: int | None = None
    #: ``Retry-After`` header value (seconds) sent with ``http_status``.
    retry_after: str | None = None
    #: Replace each response with this JSON-RPC error (code, message).
    rpc_error: tuple[int, str] | None = None
    #: Wait this long before answering.
    stall_ms: int = 0
    malformed: Malformed | None = None


@dataclass(slots=True)
class FaultRule:
    fault: Fault
    remaining: int
    #: Only requests whose (first) method is in this set match; None matches all.
    methods: frozenset[str] | None = None
    transport: Transport = "http"


@dataclass(slots=True)
class FaultPlan:
    """Rules in the order they were added; the first matching rule with budget left applies."""

    rules: list[FaultRule] = field(default_factory=list)
    #: How many faults have been applied so far (for tests and the admin ``state``).
    applied: int = 0

    def add(self, rule: FaultRule) -> None:
        if rule.remaining < 1:
            raise ValueError("count must be >= 1")
        self.rules.append(rule)

    def clear(self) -> None:
        self.rules.clear()

    def pending(self) -> int:
        return sum(r.remaining for r in self.rules)

    def take(
        self, method: str | None, transport: Literal["http", "ws"], *, explicit: bool = False
    ) -> Fault | None:
        """The fault for the next request of ``method`` on ``transport``, consuming one use.

        ``explicit``: only rules naming ``method`` match (pushed notifications use this, so a
        rule meant for calls is not spent on them).
        """
        for rule in self.rules:
            if rule.transport not in (transport, "any"):
                continue
            if rule.methods is not None and method not in rule.methods:
                continue
            if explicit and rule.methods is None:
                continue
            rule.remaining -= 1
            if rule.remaining == 0:
                self.rules.remove(rule)
            self.applied += 1
            return rule.fault
        return None


def mangle(body: bytes, kind: Malformed) -> bytes:
    """Turn a well-formed response ``body`` into the ``kind`` of malformed one."""
    if kind == "bad_json":
        return b'{"jsonrpc":"2.0","id":' + b"\x00not json}"
    if kind == "truncated":
        return body[: max(1, len(body) // 2)]
    obj = orjson.loads(body)
    items = obj if isinstance(obj, list) else [obj]
    for it in items:
        if not isinstance(it, dict):
            continue
        if isinstance(it.get("params"), dict):
            # a pushed notification: its result and id live in params
            p = it["params"]
            if kind == "wrong_type":
                p["result"] = 12345 if isinstance(p.get("result"), dict) else {"unexpected": True}
            elif kind == "missing_result":
                p.pop("result", None)
            elif kind == "wrong_id":
                p["subscription"] = "not-your-id"
            continue
        if kind == "wrong_type":
            # a type no result of ours ever has in that place
            it["result"] = {"unexpected": True} if not isinstance(it.get("result"), dict) else 12345
            it.pop("error", None)
        elif kind == "missing_result":
            it.pop("result", None)
            it.pop("error", None)
        elif kind == "wrong_id":
            it["id"] = "not-your-id"
    return orjson.dumps(obj)

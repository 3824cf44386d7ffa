"""JSON-RPC 2.0 framing, free of I/O.

:func:`parse` turns a request body into :class:`Request` objects (or per-entry error responses);
:func:`result` / :func:`error` / :func:`batch` build response bytes. Nothing here touches a socket,
so the HTTP and WebSocket shells (and the lab's mock chains) share it.

Rules (https://www.jsonrpc.org/specification):

* invalid JSON -> one ``-32700`` response with ``id: null``;
* JSON nested deeper than ``max_depth`` levels (the top-level value is level 1) -> one
  ``-32600`` response naming the limit, whatever the transport: the one depth limit of every
  JSON input (without it, deep input reaches recursive code and fails as ``-32603``);
* an empty array, or a non-object entry -> ``-32600`` (per entry in a batch);
* a notification (no ``id`` member) gets no response, even when its method is unknown or empty
  (``"method": ""`` is a valid, unknown method name); an entry that is not a valid Request object
  (``method`` not a string, ``params`` neither array nor object, a bad ``id``) is answered
  ``-32600`` even without an ``id``, as in the specification's examples;
* a batch longer than ``max_batch`` -> one ``-32005`` response (the whole batch is refused).

Ids: a string, ``null``, or an integer in the int64 range ``[-2**63, 2**63 - 1]``, echoed
exactly. A number written with a fraction or exponent (``1.5``, ``1.0``, ``1e3``) or an integer
outside int64 is refused with ``-32600`` and ``id: null``: the specification says ids SHOULD NOT
have fractional parts, and JSON parsers disagree on such numbers (beyond 2**53 many clients
round them), so the node would not be able to echo them back as sent. A number too large even
for a double (``1e400``) makes the body invalid JSON (``-32700``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from node.core import errors

Id = str | int | None
T = TypeVar("T")

_INT64 = (-(2**63), 2**63 - 1)

#: Default nesting limit of JSON inputs (``[api] max_json_depth``).
MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    params: list[Any] | dict[str, Any]
    id: Id
    notification: bool


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed body: ``items`` in request order, each a :class:`Request` or ready error bytes.

    ``fatal`` is set when the whole body is rejected (parse error, empty or oversize batch); then
    ``items`` is empty and ``fatal`` is the complete response body.
    """

    items: list[Request | bytes]
    batch: bool
    fatal: bytes | None = None


def error_obj(code: int, message: str, data: object = None) -> dict[str, Any]:
    e: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        e["data"] = data
    return e


def error(id_: Id, code: int, message: str, data: object = None) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": id_, "error": error_obj(code, message, data)})


def result(id_: Id, value: object) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": id_, "result": value})


def result_raw(id_: Id, raw_json: bytes) -> bytes:
    """Response whose result is already-encoded JSON (avoids re-encoding cached values)."""
    return b'{"jsonrpc":"2.0","id":' + orjson.dumps(id_) + b',"result":' + raw_json + b"}"


def batch(parts: list[bytes]) -> bytes:
    return b"[" + b",".join(parts) + b"]"


def notification(method: str, params: object) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "method": method, "params": params})


def request(method: str, params: object, id_: Id) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params})


def _valid_id(id_: object) -> bool:
    if id_ is None or isinstance(id_, str):
        return True
    return type(id_) is int and _INT64[0] <= id_ <= _INT64[1]


def _one(obj: object) -> Request | bytes:
    if not isinstance(obj, dict):
        return error(None, errors.INVALID_REQUEST, "invalid request: expected a JSON object")
    id_ = obj.get("id")
    has_id = "id" in obj
    if has_id and not _valid_id(id_):
        return error(
            None,
            errors.INVALID_REQUEST,
            "invalid request: id must be a string, null or an integer in the int64 range "
            "(no fraction or exponent)",
        )
    if obj.get("jsonrpc") != "2.0":
        return error(id_, errors.INVALID_REQUEST, 'invalid request: "jsonrpc" must be "2.0"')
    method = obj.get("method")
    if not isinstance(method, str):
        return error(id_, errors.INVALID_REQUEST, 'invalid request: "method" must be a string')
    params = obj.get("params", [])
    if not isinstance(params, list | dict):
        return error(
            id_, errors.INVALID_REQUEST, 'invalid request: "params" must be an array or object'
        )
    return Request(method, params, id_, not has_id)


def too_deep(obj: object, limit: int) -> bool:
    """True when ``obj`` (parsed JSON) nests containers deeper than ``limit`` levels (the
    top-level value is level 1). Iterative: deep input cannot exhaust the Python stack."""
    stack: list[tuple[object, int]] = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, dict):
            children: Any = o.values()
        elif isinstance(o, list):
            children = o
        else:
            continue
        if d > limit:
            return True
        for c in children:
            if isinstance(c, dict | list):
                stack.append((c, d + 1))
    return False


def _depth_error(limit: int) -> bytes:
    return error(
        None, errors.INVALID_REQUEST, f"invalid request: JSON nested deeper than {limit} levels"
    )


def parse(body: bytes, *, max_batch: int = 100, max_depth: int = MAX_DEPTH) -> Parsed:
    """Parse a request body. Never raises: every problem becomes an error response."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        if "depth" in str(e):  # orjson's own limit (1024) is beyond ours
            return Parsed([], False, _depth_error(max_depth))
        return Parsed([], False, error(None, errors.PARSE_ERROR, "parse error: invalid JSON"))
    # A body cannot nest deeper than it has brackets: only then walk it.
    if body.count(b"[") + body.count(b"{") > max_depth and too_deep(obj, max_depth):
        return Parsed([], isinstance(obj, list), _depth_error(max_depth))
    if isinstance(obj, list):
        if not obj:
            return Parsed(
                [], True, error(None, errors.INVALID_REQUEST, "invalid request: empty batch")
            )
        if len(obj) > max_batch:
            return Parsed(
                [],
                True,
                error(
                    None,
                    errors.LIMIT_EXCEEDED,
                    f"batch of {len(obj)} requests exceeds the limit of {max_batch}",
                ),
            )
        return Parsed([_one(o) for o in obj], True)
    return Parsed([_one(obj)], False)


class Params:
    """Typed access to a request's params, positional or by name.

    ``p.get(0, "address", parse_fn)`` returns ``parse_fn(value)``; a missing required parameter or
    a ``ValueError``/``TypeError`` from ``parse_fn`` raises :class:`~node.core.errors.InvalidParams`
    whose message names the parameter.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: list[Any] | dict[str, Any]) -> None:
        self._raw = raw

    def _lookup(self, index: int, name: str) -> tuple[bool, Any]:
        if isinstance(self._raw, list):
            if index < len(self._raw):
                return True, self._raw[index]
            return False, None
        if name in self._raw:
            return True, self._raw[name]
        return False, None

    def get(self, index: int, name: str, parse: Callable[[Any], T]) -> T:
        present, v = self._lookup(index, name)
        if not present:
            raise errors.InvalidParams(f"missing parameter {index} ({name})")
        try:
            return parse(v)
        except (ValueError, TypeError) as e:
            raise errors.InvalidParams(f"invalid parameter {index} ({name}): {e}") from None

    def opt(self, index: int, name: str, parse: Callable[[Any], T], default: T) -> T:
        present, v = self._lookup(index, name)
        if not present or v is None:
            return default
        return self.get(index, name, parse)

    def max_count(self, n: int) -> None:
        if isinstance(self._raw, list) and len(self._raw) > n:
            raise errors.InvalidParams(
                f"too many parameters: expected at most {n}, got {len(self._raw)}"
            )

"""The JSON-RPC method table: which wire name runs which handler, under which admission rules.

A *method group* is a class whose handler methods are marked with :func:`rpc`::

    class ChainReads:
        @rpc("eth_blockNumber")
        def block_number(self, p: Params, c: Call) -> str: ...

:meth:`MethodTable.add_group` registers every marked method of an instance under its wire name.
The wire name is written next to its handler, so the table cannot drift from the definitions,
and registering a name twice is an error.

Admission rules a method carries (applied by :class:`~node.server.dispatch.Dispatcher`):

* ``admin`` — the ``dubhe_admin_`` namespace needs a valid bearer token and is audited;
* ``ws_only`` — subscriptions answer -32601 over HTTP;
* ``is_async`` — coroutine handlers run under the request timeout; plain functions run inline;
* ``offload`` — a plain handler whose result can be large (a block with its transactions, a
  block's receipts) runs, with the encoding of its result, on a worker thread when its
  ``offload`` predicate says so for the request's params (``True``: always), so building and
  serializing megabytes never stalls the event loop.
"""

from __future__ import annotations

import inspect
import itertools
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from node.rpc.jsonrpc import Params
from node.server.security import Bucket, is_admin_method

if TYPE_CHECKING:
    from node.server.pubsub import Subscriber

#: A peer's socket address as the transport reports it: ``(host, port, ...)``, or None.
PeerAddr = tuple[Any, ...] | None

#: A handler: ``(params, call) -> result`` (a JSON-able value), or a coroutine giving one. It
#: raises :class:`~node.core.errors.NodeError` subclasses for errors the caller should see.
Handler = Callable[[Params, "Call"], Any | Awaitable[Any]]

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__jsonrpc_method__"

_ids = itertools.count(1)
_PID = f"{os.getpid():x}"


def new_request_id() -> str:
    """A request id unique to this process (``pid-counter``, hex), for logs and the audit."""
    return f"{_PID}-{next(_ids):x}"


@dataclass(slots=True)
class Call:
    """Who is calling: transport (``http``/``ws``), peer address, admin flag, the connection's
    request rate bucket (one token per request, taken by the dispatcher) and transaction rate
    bucket (one token per submitted transaction, taken by the admission methods), and for
    WebSocket calls the connection (subscription methods attach to it).

    ``request_id`` (for logs and the audit trail) is made on first use: most requests never
    need one."""

    transport: str
    peer_addr: PeerAddr
    admin: bool
    bucket: Bucket | None
    conn: Subscriber | None = None
    tx_bucket: Bucket | None = None
    _rid: str = ""

    @property
    def peer(self) -> str:
        a = self.peer_addr
        return f"{a[0]}:{a[1]}" if a else "?"

    @property
    def request_id(self) -> str:
        if not self._rid:
            self._rid = new_request_id()
        return self._rid

    def new_request(self) -> None:
        """A new message on the same connection: the next request id will be a new one."""
        self._rid = ""


#: Whether a request's result may be large enough to build off the event loop.
Offload = Callable[[Params], bool]


@dataclass(frozen=True, slots=True)
class _Mark:
    name: str
    ws_only: bool
    offload: Offload | None


def rpc(name: str, *, ws_only: bool = False,
        offload: Offload | bool = False) -> Callable[[F], F]:
    """Mark a method of a method-group class as the handler of JSON-RPC method ``name``
    (``offload``: see the module docstring)."""
    pred: Offload | None = (lambda _p: True) if offload is True else offload or None

    def mark(fn: F) -> F:
        setattr(fn, _MARK, _Mark(name, ws_only, pred))
        return fn

    return mark


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """One entry of the table."""

    name: str
    handler: Handler
    ws_only: bool = False
    offload: Offload | None = None

    @property
    def admin(self) -> bool:
        return is_admin_method(self.name)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)


class MethodTable:
    """Wire name -> :class:`MethodSpec`. Built once at start-up; read-only afterwards."""

    def __init__(self) -> None:
        self._specs: dict[str, MethodSpec] = {}

    @classmethod
    def of(
        cls, handlers: Mapping[str, Handler], *, ws_only: frozenset[str] = frozenset()
    ) -> MethodTable:
        """A table from plain handlers (tests, small tools)."""
        table = cls()
        for name, handler in handlers.items():
            table.add(name, handler, ws_only=name in ws_only)
        return table

    def add(self, name: str, handler: Handler, *, ws_only: bool = False,
            offload: Offload | None = None) -> None:
        if name in self._specs:
            raise ValueError(f"JSON-RPC method {name} registered twice")
        self._specs[name] = MethodSpec(name, handler, ws_only, offload)

    def add_group(self, group: object) -> MethodTable:
        """Register every method of ``group`` marked with :func:`rpc`; returns the table."""
        found = False
        for attr, fn in inspect.getmembers(type(group), callable):
            mark = getattr(fn, _MARK, None)
            if isinstance(mark, _Mark):
                self.add(mark.name, getattr(group, attr), ws_only=mark.ws_only,
                         offload=mark.offload)
                found = True
        if not found:
            raise ValueError(f"{type(group).__name__} has no @rpc methods")
        return self

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __getitem__(self, name: str) -> MethodSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[MethodSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def names(self) -> list[str]:
        return sorted(self._specs)


__all__ = ["Call", "Handler", "MethodSpec", "MethodTable", "Offload", "PeerAddr", "new_request_id",
           "rpc"]

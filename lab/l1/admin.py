"""The admin command language of a mock chain, free of I/O.

``POST /admin`` takes one JSON object ``{"cmd": NAME, ...}``; :func:`parse` validates it into a
command dataclass (raising :class:`AdminError` naming the bad field; a key the command does not
take is an error, see :data:`KEYS`) and the server executes it.

==============  ==============================================================================
``produce``     ``{"count": 1}`` seal blocks now (pending transactions go into the first)
``pause``       stop timed block production (admin ``produce`` still works)
``resume``      restart timed block production
``deploy``      ``{"code": "0x..."}`` or ``{"modules": {"name": "0x..."}}``, optional ``address``,
                ``"produce": true`` (seal a block at once); emits CodeDeployed
``upgrade``     ``{"address": "0x...", "code"|"modules": ..., "produce": true}``; emits CodeUpgraded
``transfer``    ``{"to": "0x...", "amount": N, "produce": true}`` from the first genesis account
``reorg``       ``{"depth": N, "new_length": N+1, "keep_txs": true}`` replace the last N blocks
``faults``      ``{"count": K, "http_status": 429|503, "retry_after": "1", "rpc_error":
                {"code": -32000, "message": "..."}, "stall_ms": 0, "malformed": "bad_json|truncated|
                wrong_type|missing_result|wrong_id", "methods": [...], "transport": "http|ws|any"}``
                applies to the next K matching requests *of the endpoint that received it*;
                naming the notification method (``eth_subscription``, ``suix_subscribeEvent``) in
                ``methods`` with ``transport: ws`` mangles the next K pushed notifications instead
``clear_faults`` drop this endpoint's pending fault rules
``disconnect``  close every WebSocket connection of this endpoint (subscriptions die with them)
``ws_stall``    ``{"on": true}`` this endpoint's WebSockets go silent: no reads (so no pongs), no
                writes, until ``{"on": false}``
``outage``      ``{"ms": N}`` this endpoint stops listening for N ms, then comes back on its port
``state``       head, finalized, paused, seed, pending faults, WebSocket clients
==============  ==============================================================================
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from lab.l1.faults import MALFORMED_KINDS, Fault, FaultRule, Malformed, Transport


class AdminError(ValueError):
    """A malformed admin command; the message names the field."""


@dataclass(frozen=True, slots=True)
class Produce:
    count: int


@dataclass(frozen=True, slots=True)
class Pause:
    paused: bool


@dataclass(frozen=True, slots=True)
class DeployCode:
    modules: dict[str, bytes]
    address: bytes | None
    upgrade: bool
    produce: bool


@dataclass(frozen=True, slots=True)
class TransferFunds:
    to: bytes
    amount: int
    produce: bool


@dataclass(frozen=True, slots=True)
class Reorg:
    depth: int
    new_length: int | None
    keep_txs: bool


@dataclass(frozen=True, slots=True)
class AddFaults:
    rule: FaultRule


@dataclass(frozen=True, slots=True)
class ClearFaults:
    pass


@dataclass(frozen=True, slots=True)
class Disconnect:
    pass


@dataclass(frozen=True, slots=True)
class WsStall:
    on: bool


@dataclass(frozen=True, slots=True)
class Outage:
    ms: int


@dataclass(frozen=True, slots=True)
class GetState:
    pass


Command = (
    Produce | Pause | DeployCode | TransferFunds | Reorg | AddFaults | ClearFaults | Disconnect
    | WsStall | Outage | GetState
)


def _int(d: dict[str, Any], key: str, default: int | None = None, *, lo: int = 0) -> int:
    v = d.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        raise AdminError(f"{key}: expected an integer >= {lo}")
    return v


def _bool(d: dict[str, Any], key: str, default: bool) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise AdminError(f"{key}: expected a boolean")
    return v


def _hex(v: object, key: str) -> bytes:
    if not isinstance(v, str) or not v.startswith("0x"):
        raise AdminError(f"{key}: expected 0x-prefixed hex")
    try:
        return bytes.fromhex(v[2:])
    except ValueError:
        raise AdminError(f"{key}: expected 0x-prefixed hex") from None


def _address(v: object, key: str, length: int) -> bytes:
    # Sui-style short ids (0x2) are left-padded; Ethereum addresses must be exact
    b = _hex(v, key) if length == 20 else _hex("0x" + str(v)[2:].rjust(64, "0"), key)
    if len(b) != length:
        raise AdminError(f"{key}: expected {length} bytes")
    return b


def _modules(d: dict[str, Any], default_name: str) -> dict[str, bytes]:
    if "code" in d:
        return {default_name: _hex(d["code"], "code")}
    mods = d.get("modules")
    if not isinstance(mods, dict) or not mods:
        raise AdminError("code or modules: one is required")
    return {str(k): _hex(v, f"modules.{k}") for k, v in mods.items()}


#: Each command's keys besides ``cmd``: anything else is refused (a typo is never ignored).
KEYS: dict[str, tuple[str, ...]] = {
    "produce": ("count",),
    "pause": (),
    "resume": (),
    "deploy": ("code", "modules", "address", "produce"),
    "upgrade": ("address", "code", "modules", "produce"),
    "transfer": ("to", "amount", "produce"),
    "reorg": ("depth", "new_length", "keep_txs"),
    "faults": ("count", "http_status", "retry_after", "rpc_error", "stall_ms", "malformed",
               "methods", "transport"),
    "clear_faults": (),
    "disconnect": (),
    "ws_stall": ("on",),
    "outage": ("ms",),
    "state": (),
}


def _check_keys(cmd: str, body: dict[str, Any]) -> None:
    if cmd not in KEYS:
        close = difflib.get_close_matches(cmd, list(KEYS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise AdminError(f"cmd: unknown command {cmd!r}; {hint}commands: {', '.join(KEYS)}")
    known = KEYS[cmd]
    for key in body:
        if key != "cmd" and key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            takes = ", ".join(known) if known else "no other keys"
            raise AdminError(f"{key}: unknown key for {cmd}; {hint}{cmd} takes: {takes}")


def parse(body: object, *, address_len: int) -> Command:
    """Validate one admin command; raises :class:`AdminError` (an unknown command lists the
    valid ones, an unknown key the command's keys)."""
    if not isinstance(body, dict) or not isinstance(body.get("cmd"), str):
        raise AdminError('expected a JSON object with a string "cmd"')
    cmd = body["cmd"]
    _check_keys(cmd, body)
    mod_name = "code" if address_len == 20 else "dubhe"
    if cmd == "produce":
        return Produce(_int(body, "count", 1, lo=1))
    if cmd in ("pause", "resume"):
        return Pause(cmd == "pause")
    if cmd in ("deploy", "upgrade"):
        addr = body.get("address")
        if cmd == "upgrade" and addr is None:
            raise AdminError("address: required for upgrade")
        return DeployCode(
            _modules(body, mod_name),
            None if addr is None else _address(addr, "address", address_len),
            cmd == "upgrade",
            _bool(body, "produce", True),
        )
    if cmd == "transfer":
        return TransferFunds(
            _address(body.get("to"), "to", address_len), _int(body, "amount", lo=1),
            _bool(body, "produce", True),
        )
    if cmd == "reorg":
        nl = body.get("new_length")
        return Reorg(
            _int(body, "depth", lo=1),
            None if nl is None else _int(body, "new_length", lo=1),
            _bool(body, "keep_txs", True),
        )
    if cmd == "faults":
        return AddFaults(_fault_rule(body))
    if cmd == "clear_faults":
        return ClearFaults()
    if cmd == "disconnect":
        return Disconnect()
    if cmd == "ws_stall":
        return WsStall(_bool(body, "on", True))
    if cmd == "outage":
        return Outage(_int(body, "ms", lo=1))
    if cmd == "state":
        return GetState()
    raise AdminError(f"cmd: unknown command {cmd!r}")


def _fault_rule(body: dict[str, Any]) -> FaultRule:
    status = body.get("http_status")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise AdminError("http_status: expected an HTTP error status 400..599")
    retry_after = body.get("retry_after")
    if retry_after is not None:
        retry_after = str(retry_after)
    rpc_error = None
    if "rpc_error" in body:
        e = body["rpc_error"]
        if not isinstance(e, dict) or not isinstance(e.get("code"), int):
            raise AdminError("rpc_error: expected {code, message}")
        rpc_error = (int(e["code"]), str(e.get("message", "mock error")))
    malformed = body.get("malformed")
    if malformed is not None and malformed not in MALFORMED_KINDS:
        raise AdminError(f"malformed: expected one of {list(MALFORMED_KINDS)}")
    methods = body.get("methods")
    if methods is not None and (
        not isinstance(methods, list) or not all(isinstance(m, str) for m in methods)
    ):
        raise AdminError("methods: expected an array of method names")
    transport = body.get("transport", "http")
    if transport not in ("http", "ws", "any"):
        raise AdminError("transport: expected http, ws or any")
    fault = Fault(
        http_status=status,
        retry_after=retry_after,
        rpc_error=rpc_error,
        stall_ms=_int(body, "stall_ms", 0),
        malformed=_malformed(malformed),
    )
    if fault == Fault():
        raise AdminError("faults: give at least one of http_status, rpc_error, stall_ms, malformed")
    tr: Transport = transport
    return FaultRule(
        fault, _int(body, "count", 1, lo=1), None if methods is None else frozenset(methods), tr
    )


def _malformed(v: object) -> Malformed | None:
    for k in MALFORMED_KINDS:
        if v == k:
            return k
    return None

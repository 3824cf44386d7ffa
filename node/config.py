"""Node configuration: typed models with defaults, loaded from TOML.

Unknown keys and wrong types are errors naming the dotted key and the expected type; every error is
reported at once (:class:`~node.core.errors.ConfigError`). ``dubhe-config-validate FILE`` prints
them and exits 1, or prints ``ok`` and exits 0. Every key is documented in CONFIG.md.
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import os
import re
import sys
import tempfile
import tomllib
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from node.core.errors import ConfigError
from node.core.tx import MAX_TX_BYTES


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _check_bind(v: str) -> str:
    host, sep, port = v.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected HOST:PORT with a port in 0..65535")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if host != "localhost":
            raise ValueError("host must be an IP address or localhost") from None
    return v


def _check_address(v: str) -> str:
    if not (v.startswith("0x") and len(v) == 42):
        raise ValueError(f"{v!r} is not a 0x-prefixed 20-byte hex address")
    try:
        bytes.fromhex(v[2:])
    except ValueError:
        raise ValueError(f"{v!r} is not a 0x-prefixed 20-byte hex address") from None
    return v


def _url_check(*schemes: str) -> AfterValidator:
    def check(v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in schemes or not parts.hostname:
            want = " or ".join(f"{s}://" for s in schemes)
            raise ValueError(f"{v!r} is not a {want} URL (expected {schemes[0]}://HOST[:PORT]"
                             "[/PATH])")
        try:
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:
            raise ValueError(f"{v!r}: the port is not in 0..65535") from None
        return v

    return AfterValidator(check)


#: An L1 HTTP JSON-RPC endpoint and its WebSocket.
HttpUrl = Annotated[str, _url_check("http", "https")]
WsUrl = Annotated[str, _url_check("ws", "wss")]
#: ``0x`` + 40 hex digits.
Address = Annotated[str, AfterValidator(_check_address)]


def split_bind(v: str) -> tuple[str, int]:
    host, _, port = v.rpartition(":")
    return host.strip("[]"), int(port)


def _check_networks(v: list[str]) -> list[str]:
    for spec in v:
        try:
            ipaddress.ip_network(spec, strict=False)
        except ValueError:
            raise ValueError(f"{spec!r} is not an IP address or CIDR block") from None
    return v


class ApiConfig(_Section):
    rpc_bind: str = "127.0.0.1:8545"
    ws_bind: str = "127.0.0.1:8546"
    grpc_bind: str = "127.0.0.1:9090"
    #: Concurrent WebSocket connections (TCP connections to ``ws_bind``, handshakes included).
    max_connections: int = Field(1000, ge=1, le=1_000_000)
    #: Concurrent TCP connections to ``rpc_bind`` (keep-alive ones included).
    max_http_connections: int = Field(1000, ge=1, le=1_000_000)
    #: From a request's first byte until its head (request line and headers) is complete.
    header_timeout_s: float = Field(10.0, gt=0)
    #: Reading a request body, from the end of its head.
    body_timeout_s: float = Field(30.0, gt=0)
    #: A connection with no request in progress and no byte of a next one received.
    idle_timeout_s: float = Field(60.0, gt=0)
    #: Connections per client address across both listeners; 0 = no cap.
    max_connections_per_ip: int = Field(256, ge=0)
    #: Request and transaction token buckets per client address, shared by all its
    #: connections (each connection also has its own, ``rate_limit_*``); 0 = off.
    ip_rate_limit_per_s: float = Field(5000.0, ge=0)
    ip_rate_limit_burst: int = Field(10_000, ge=1)
    ip_tx_rate_limit_per_s: float = Field(40_000.0, ge=0)
    ip_tx_rate_limit_burst: int = Field(40_000, ge=1)
    #: Client addresses (or CIDR blocks) the per-address limits do not apply to: loopback,
    #: because every client of a node behind a local proxy (the lab's nginx) comes from it.
    per_ip_exempt: list[str] = ["127.0.0.1", "::1"]
    #: Subscriptions one WebSocket connection may hold (-32005 beyond).
    max_subscriptions_per_connection: int = Field(128, ge=1)
    #: Host names a request's ``Host`` header may carry (IP addresses always may; "*": any);
    #: geth's ``--http.vhosts``. Against DNS rebinding.
    vhosts: list[str] = ["localhost"]
    #: Origins browsers may call the HTTP API from (CORS; geth's ``--http.corsdomain``);
    #: a request with any other ``Origin`` is refused. Empty: none.
    cors_origins: list[str] = []
    #: Origins browsers may open WebSockets from (geth's ``--ws.origins``); loopback names.
    ws_origins: list[str] = ["localhost", "127.0.0.1", "[::1]"]
    request_timeout_ms: int = Field(30_000, ge=1)
    max_body_bytes: int = Field(1 << 20, ge=1024)
    max_batch: int = Field(100, ge=1)
    max_frame_bytes: int = Field(1 << 20, ge=1024)
    ws_queue_messages: int = Field(1024, ge=1)
    ws_ping_interval_s: float = Field(20.0, ge=0)
    rate_limit_per_s: float = Field(1000.0, gt=0)
    rate_limit_burst: int = Field(2000, ge=1)
    #: Transactions admitted per connection (a second bucket: every transaction submitted,
    #: singly or in a ``dubhe_sendTransactions`` list, takes one token of it; every request,
    #: a list submission included, takes one token of ``rate_limit_*``).
    tx_rate_limit_per_s: float = Field(20_000.0, gt=0)
    tx_rate_limit_burst: int = Field(20_000, ge=1)
    #: Most transactions in one ``dubhe_sendTransactions`` call (a longer list is refused whole).
    max_submit_txs: int = Field(5000, ge=1)
    ws_rate_violations_close: int = Field(50, ge=1)
    #: Largest JSON-RPC response, and largest total of a batch's responses (-32005 beyond).
    max_response_bytes: int = Field(32 << 20, ge=64 * 1024)
    #: Deepest JSON nesting accepted in a request (HTTP body or WebSocket message; the
    #: top-level value is level 1); deeper input answers -32600 naming the limit.
    max_json_depth: int = Field(64, ge=2, le=1000)

    _v_rpc = field_validator("rpc_bind", "ws_bind", "grpc_bind")(_check_bind)
    _v_nets = field_validator("per_ip_exempt")(_check_networks)


class EndpointConfig(_Section):
    rpc_url: HttpUrl
    ws_url: WsUrl | None = None


class BackoffConfig(_Section):
    initial_ms: int = Field(100, ge=1)
    max_ms: int = Field(10_000, ge=1)
    factor: float = Field(2.0, ge=1.0)
    request_timeout_ms: int = Field(5_000, ge=1)


class _AdapterCommon(_Section):
    #: Budget of one contract-code fetch, shared by the loader and the adapter (attempts, hedges
    #: and retries all within it).
    fetch_timeout_ms: int = Field(2_000, ge=1)
    #: Longest a block waits for code fetches (capped at half of [node] block_time_ms); a fetch
    #: still running then goes on in the background and its code applies from a later block.
    block_wait_ms: int = Field(250, ge=0)
    #: Hedged requests: ask the next endpoint too when one is late (its latency + 4 deviations,
    #: within [hedge_min_ms, hedge_max_ms]).
    hedge: bool = True
    hedge_min_ms: int = Field(50, ge=1)
    hedge_max_ms: int = Field(2_000, ge=1)


class EthereumAdapterConfig(_AdapterCommon):
    rpc_url: HttpUrl
    ws_url: WsUrl | None = None
    chain_id: int = Field(ge=1)
    endpoints: list[EndpointConfig] = []
    backoff: BackoffConfig = BackoffConfig()


class SuiAdapterConfig(_AdapterCommon):
    #: ``jsonrpc`` (``rpc_url`` is a JSON-RPC URL, ``ws_url`` its event subscription) or
    #: ``graphql`` (every URL is a Sui GraphQL endpoint; heads are polled, ``ws_url`` unused).
    protocol: Literal["jsonrpc", "graphql"] = "jsonrpc"
    rpc_url: HttpUrl
    ws_url: WsUrl | None = None
    network_type: Literal["Mainnet", "Testnet", "Devnet", "Localnet"] = "Localnet"
    package_ids: list[str] = []
    endpoints: list[EndpointConfig] = []
    backoff: BackoffConfig = BackoffConfig()

    @field_validator("package_ids")
    @classmethod
    def _v_packages(cls, v: list[str]) -> list[str]:
        for pid in v:
            if not re.fullmatch(r"0x[0-9a-fA-F]{1,64}", pid):
                raise ValueError(f"{pid!r} is not a Sui object id (0x + 1..64 hex digits)")
        return v


class AdaptersConfig(_Section):
    ethereum: EthereumAdapterConfig | None = None
    sui: SuiAdapterConfig | None = None


Strategy = Literal["Serial", "SolanaParallel", "AptosBlockSTM", "SuiObjectDAG"]


class SchedulerConfig(_Section):
    worker_threads: int = Field(2, ge=1, le=256)
    strategy: Strategy = "Serial"
    #: Where SolanaParallel and SuiObjectDAG run transactions: ``threads`` (scale when the VM
    #: releases the GIL: compute-heavy contracts) or ``processes`` (worker processes fed with the
    #: values of each transaction's declared keys; for Python-heavy short transactions).
    #: Serial and AptosBlockSTM ignore it.
    substrate: Literal["threads", "processes"] = "threads"
    #: The adaptive gate: parallel strategies hand a block to their algorithm only while that
    #: measurably beats block order (node.scheduler.adaptive); ``false`` hands every block to
    #: the algorithm. Results are identical either way.
    adaptive: bool = True
    #: AptosBlockSTM only: a block whose speculation aborts massively early (0.5% of the block,
    #: at least 32 aborts, frontier in its first quarter) is abandoned and run in block order.
    #: ``false`` always finishes the Block-STM run. Independent of ``adaptive``.
    contention_fallback: bool = True


class VmConfig(_Section):
    #: ``CkbVM``: RV64IM contracts on unicorn (the RISC-V runtime); ``Reference``: the pure-Python
    #: system contracts (no user contracts). PolkaVM (RV32) and Cartesi are not supported.
    default_vm: Literal["CkbVM", "Reference"] = "CkbVM"
    max_instances: int = Field(100, ge=1)


class StateConfig(_Section):
    backend: Literal["rocksdb", "memory"] = "rocksdb"
    path: str = "./data"
    #: fsync every acknowledgement before the reply (survives an OS crash or power loss), with
    #: group commit: concurrent submissions share one fsync. ``false`` (explicit opt-in, faster):
    #: an acknowledged write survives a process kill but not an OS crash.
    sync_writes: bool = True
    #: Start even though RocksDB cannot replay the end of its write-ahead log: recover to the last
    #: consistent write and log every dropped block and transaction. Prefer the one-off
    #: ``dubhe-node --accept-tail-loss``; left ``true``, every future loss is accepted (and logged).
    accept_tail_loss: bool = False
    #: Read every stored block at start-up, checking its checksum (a damaged table file refuses
    #: the start); ``false`` starts without it, and reads of damaged blocks answer -32020.
    verify_on_open: bool = True


class NodeSection(_Section):
    chain_id: int = Field(0x44554248, ge=1, le=2**63 - 1)  # "DUBH", as the seed's node answered
    block_time_ms: int = Field(1000, ge=10)
    max_block_txs: int = Field(10_000, ge=1)
    #: Most bytes of (raw, signed) transactions per block; at least one largest transaction.
    max_block_bytes: int = Field(8 << 20, ge=MAX_TX_BYTES)
    max_mempool_txs: int = Field(100_000, ge=1)
    #: Genesis balances: 0x-prefixed 20-byte address -> native-token amount (each entry checked).
    genesis_balances: dict[Address, Annotated[int, Field(ge=0, le=2**64 - 1)]] = {}
    #: Address allowed to mint the native token; empty = the well-known dev authority
    #: (``Signer.from_seed(b"mint-authority")``), for local labs only.
    mint_authority: str = ""

    @field_validator("mint_authority")
    @classmethod
    def _v_authority(cls, v: str) -> str:
        return _check_address(v) if v else v


class SecurityConfig(_Section):
    #: Bearer token required by ``dubhe_admin_*`` methods; empty disables admin methods entirely.
    admin_token: str = ""
    audit_log: str = "./data/audit.jsonl"


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: ``json``: one JSON object per line (structured logs); ``text``: human-readable.
    format: Literal["text", "json"] = "text"


class Config(_Section):
    api: ApiConfig = ApiConfig()
    adapters: AdaptersConfig = AdaptersConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    vm: VmConfig = VmConfig()
    state: StateConfig = StateConfig()
    node: NodeSection = NodeSection()
    security: SecurityConfig = SecurityConfig()
    logging: LoggingConfig = LoggingConfig()

    @model_validator(mode="after")
    def _distinct_binds(self) -> Config:
        if self.api.rpc_bind == self.api.ws_bind and not self.api.rpc_bind.endswith(":0"):
            raise ValueError("api.rpc_bind and api.ws_bind must differ")
        return self


#: What each key means, for error messages (``api.max_batch: 0 is out of range: the longest
#: JSON-RPC batch, an integer >= 1``); CONFIG.md says more. Keyed by section model and key.
MEANINGS: dict[type[BaseModel], dict[str, str]] = {
    ApiConfig: {
        "rpc_bind": "where JSON-RPC over HTTP listens",
        "ws_bind": "where the WebSocket listens",
        "grpc_bind": "the reserved gRPC address",
        "max_connections": "the most concurrent WebSocket connections",
        "max_http_connections": "the most concurrent HTTP connections",
        "header_timeout_s": "the time a request's head may take, in s",
        "body_timeout_s": "the time a request's body may take, in s",
        "idle_timeout_s": "how long an idle connection stays open, in s",
        "max_connections_per_ip": "the most connections per client address (0: no cap)",
        "ip_rate_limit_per_s": "the requests per second each client address may send (0: off)",
        "ip_rate_limit_burst": "the per-address request bucket size",
        "ip_tx_rate_limit_per_s": "the transactions per second each client address may submit "
        "(0: off)",
        "ip_tx_rate_limit_burst": "the per-address transaction bucket size",
        "per_ip_exempt": "the addresses the per-address limits skip",
        "max_subscriptions_per_connection": "the most subscriptions per WebSocket connection",
        "max_json_depth": "the deepest JSON nesting of a request",
        "max_response_bytes": "the largest JSON-RPC response (or batch of responses), in bytes",
        "vhosts": "the host names a request's Host header may carry",
        "cors_origins": "the browser origins allowed on HTTP",
        "ws_origins": "the browser origins allowed on WebSocket",
        "request_timeout_ms": "the time limit of one JSON-RPC request, in ms",
        "max_body_bytes": "the largest HTTP request body, in bytes",
        "max_batch": "the longest JSON-RPC batch",
        "max_frame_bytes": "the largest WebSocket message, in bytes",
        "ws_queue_messages": "the per-connection outgoing message queue",
        "ws_ping_interval_s": "the server's WebSocket ping period, in s (0: no pings)",
        "rate_limit_per_s": "the requests per second each connection may send",
        "rate_limit_burst": "the request bucket size",
        "tx_rate_limit_per_s": "the transactions per second each connection may submit",
        "tx_rate_limit_burst": "the transaction bucket size",
        "max_submit_txs": "the longest dubhe_sendTransactions list",
        "ws_rate_violations_close": "consecutive refused requests before a WebSocket is closed",
    },
    EndpointConfig: {
        "rpc_url": "a fallback endpoint's HTTP JSON-RPC URL",
        "ws_url": "a fallback endpoint's WebSocket URL",
    },
    BackoffConfig: {
        "initial_ms": "the first reconnect delay, in ms",
        "max_ms": "the longest reconnect delay, in ms",
        "factor": "the growth factor of the reconnect delay",
        "request_timeout_ms": "one L1 request attempt's time limit, in ms",
    },
    _AdapterCommon: {
        "rpc_url": "the L1's primary HTTP JSON-RPC URL",
        "ws_url": "the L1's primary WebSocket URL",
        "chain_id": "the L1's expected eth_chainId",
        "network_type": "the Sui network",
        "protocol": "the Sui RPC protocol",
        "package_ids": "the Sui packages the loader may fetch",
        "endpoints": "the fallback endpoints",
        "backoff": "the reconnect backoff",
        "fetch_timeout_ms": "the budget of one contract-code fetch, in ms",
        "block_wait_ms": "the longest a block waits for code fetches, in ms",
        "hedge": "whether a late request is also sent to the next endpoint",
        "hedge_min_ms": "the shortest hedge delay, in ms",
        "hedge_max_ms": "the longest hedge delay, in ms",
    },
    AdaptersConfig: {"ethereum": "the Ethereum adapter", "sui": "the Sui adapter"},
    SchedulerConfig: {
        "worker_threads": "the parallel strategies' workers",
        "strategy": "the block execution strategy",
        "substrate": "where parallel transactions run",
        "adaptive": "the adaptive gate",
        "contention_fallback": "AptosBlockSTM's fallback to block order",
    },
    VmConfig: {"default_vm": "the contract VM", "max_instances": "the warm VM instances kept"},
    StateConfig: {
        "backend": "the state store",
        "path": "the RocksDB directory",
        "sync_writes": "whether every write is fsynced",
        "accept_tail_loss": "whether a damaged write-ahead-log tail is dropped at start",
        "verify_on_open": "whether stored blocks are checksummed at start",
    },
    NodeSection: {
        "chain_id": "the chain id served and required in transactions",
        "block_time_ms": "the block period, in ms",
        "max_block_bytes": "the most bytes of transactions per block",
        "max_block_txs": "the most transactions per block",
        "max_mempool_txs": "the most pending transactions",
        "genesis_balances": "a genesis balance (native-token amount)",
        "mint_authority": "the address allowed to mint",
    },
    SecurityConfig: {"admin_token": "the admin bearer token", "audit_log": "the audit log file"},
    LoggingConfig: {"level": "the log level", "format": "the log format"},
    Config: {name: f"the [{name}] section" for name in
             ("api", "adapters", "scheduler", "vm", "state", "node", "security", "logging")},
}

_TYPE_NAMES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The section model inside ``annotation`` (``X``, ``X | None``, ``list[X]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType, list):
        for arg in get_args(annotation):
            m = _model_of(arg)
            if m is not None:
                return m
    return None


def _resolve(loc: tuple[str | int, ...]) -> tuple[type[BaseModel] | None, FieldInfo | None, str]:
    """The model holding the last key of ``loc``, its field (None if unknown) and the key."""
    model: type[BaseModel] | None = Config
    parent: type[BaseModel] | None = Config
    info: FieldInfo | None = None
    key = ""
    for part in loc:
        if isinstance(part, int):  # a list index: stay on the list's element model
            continue
        if model is None:  # inside a dict (genesis_balances): the dict's field describes it
            return parent, info, key
        parent, key = model, str(part)
        info = model.model_fields.get(key)
        if info is None:
            return parent, None, key
        model = _model_of(info.annotation)
    return parent, info, key


def _meaning(model: type[BaseModel] | None, key: str) -> str:
    for cls in (model.__mro__ if model is not None else ()):
        found = MEANINGS.get(cls, {}).get(key)
        if found:
            return found
    return f"'{key}'"


def _bounds(info: FieldInfo | None) -> str:
    """``an integer in 1..256``, ``a number > 0``, from the field's constraints."""
    if info is None:
        return ""
    meta = list(info.metadata)
    ann = info.annotation
    if get_origin(ann) is dict:  # genesis_balances: the value type's own constraints
        value = get_args(ann)[1]
        meta = [m for a in get_args(value)[1:] for m in getattr(a, "metadata", [a])]
        ann = get_args(value)[0]
    kind = "a number" if ann is float else "an integer"
    lo = next((m for m in meta if isinstance(m, annotated_types.Ge | annotated_types.Gt)), None)
    hi = next((m for m in meta if isinstance(m, annotated_types.Le | annotated_types.Lt)), None)
    if isinstance(lo, annotated_types.Ge) and isinstance(hi, annotated_types.Le):
        top = "2**64-1" if hi.le == 2**64 - 1 else "2**63-1" if hi.le == 2**63 - 1 else f"{hi.le:,}"
        return f"{kind} in {lo.ge}..{top}"
    parts = []
    if isinstance(lo, annotated_types.Ge):
        parts.append(f">= {lo.ge}")
    elif isinstance(lo, annotated_types.Gt):
        parts.append(f"> {lo.gt}")
    if isinstance(hi, annotated_types.Le):
        parts.append(f"<= {hi.le:,}")
    elif isinstance(hi, annotated_types.Lt):
        parts.append(f"< {hi.lt:,}")
    return f"{kind} {' and '.join(parts)}".strip()


def _unknown_key(model: type[BaseModel] | None, key: str) -> str:
    if model is None:
        return "unknown key"
    known = list(model.model_fields)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown key; {hint}known keys here: {', '.join(known)}"


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        p = str(part)
        if p.startswith("function-after") or p == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p):
            out += f".{p}" if out else p
        else:  # a table key that is data (a genesis address): quoted as TOML quotes it
            out += f'."{p}"' if out else f'"{p}"'
    return out or "(root)"


#: Keys whose values are secrets: a config error never echoes them (nor a log line, see
#: node.server.logs).
SECRET_KEY = re.compile(
    r"token|secret|passw|authori[sz]ation|cookie|api[_-]?key|sec[_-]websocket[_-]protocol",
    re.IGNORECASE,
)


def _secret_values(data: object, key: str = "") -> set[str]:
    """The values (as text) of every key of ``data`` whose name says secret."""
    out: set[str] = set()
    if isinstance(data, dict):
        for k, v in data.items():
            out |= _secret_values(v, str(k))
    elif isinstance(data, list):
        for v in data:
            out |= _secret_values(v, key)
    elif key and SECRET_KEY.search(key) and data not in (None, "", True, False):
        out.add(str(data))
    return out


def _format(e: ValidationError, data: object = None) -> list[tuple[str, str]]:
    """One (dotted key, message) per problem; secret values are never echoed (by key name and
    by value)."""
    secrets = sorted(_secret_values(data), key=len, reverse=True)
    out: list[tuple[str, str]] = []
    for err in e.errors():
        loc = tuple(p for p in err["loc"] if not str(p).startswith("function-after"))
        dotted = _dotted(loc)
        kind = err["type"]
        got = err.get("input")
        shown = "(value not shown: a secret)" if SECRET_KEY.search(dotted) else repr(got)
        if kind == "extra_forbidden":
            model, _, key = _resolve(loc)
            msg = _unknown_key(model, key)
        elif kind == "missing":
            model, _, key = _resolve(loc)
            msg = f"required key is missing ({_meaning(model, key)})"
        elif kind in _RANGE_ERRORS:
            model, info, key = _resolve(loc)
            msg = f"{shown} is out of range: {_meaning(model, key)}, {_bounds(info)}"
        elif kind in _TYPE_NAMES:
            msg = f"expected {_TYPE_NAMES[kind]}, got {type(got).__name__} {shown}"
        else:
            msg = err["msg"].removeprefix("Value error, ")
        for secret in secrets:
            msg = msg.replace(secret, "[redacted]")
        out.append((dotted, msg))
    return out


def from_dict(data: dict[str, Any], source: str = "config") -> Config:
    """Build a :class:`Config`; raises :class:`ConfigError` listing every problem."""
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format(e, data), source) from None


def load(path: str | Path | None) -> Config:
    """Load a TOML file, or the embedded defaults when ``path`` is None.

    Raises :class:`ConfigError` for every problem of the file: unreadable (missing, a
    directory, no permission, not UTF-8), bad TOML, or invalid keys and values (all at once).
    Paths inside the file (``state.path``, ``security.audit_log``) are relative to the working
    directory the node runs in, not to the file: :func:`check_paths` checks them."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([("(file)", "no such file")], str(p)) from None
    except IsADirectoryError:
        raise ConfigError([("(file)", "is a directory, not a TOML file")], str(p)) from None
    except OSError as e:
        raise ConfigError([("(file)", f"cannot read: {e.strerror or e}")], str(p)) from None
    except UnicodeDecodeError as e:
        raise ConfigError([("(file)", f"not UTF-8 text (byte {e.start}: "
                                      f"{e.object[e.start:e.start + 1]!r}); TOML files are "
                                      "UTF-8")], str(p)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([("(syntax)", str(e))], str(p)) from None
    return from_dict(data, str(p))


def _writable_dir(d: Path) -> str | None:
    """Why the node could not create files in directory ``d`` (created if missing), or None.

    Probes with a real temporary file in the nearest existing directory (``os.access`` says yes
    to root on a read-only file system)."""
    probe = d
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a directory"
    try:
        fd, name = tempfile.mkstemp(prefix=".dubhe-write-probe-", dir=probe)
    except OSError as e:
        return f"cannot create files in {probe}: {e.strerror or e}"
    os.close(fd)
    os.unlink(name)
    return None


def check_paths(cfg: Config, source: str = "config") -> None:
    """Raise :class:`ConfigError` naming each key whose path the node could not write.

    Relative paths resolve against the working directory (shown resolved in the message)."""
    errors: list[tuple[str, str]] = []
    if cfg.state.backend == "rocksdb":
        d = Path(cfg.state.path).absolute()
        why_dir = f"{d} exists and is not a directory" if d.exists() and not d.is_dir() \
            else _writable_dir(d)
        if why_dir:
            errors.append(("state.path", f"{cfg.state.path!r} ({d}): {why_dir}"))
    if cfg.security.audit_log:
        f = Path(cfg.security.audit_log).absolute()
        if f.is_dir():
            why: str | None = "is a directory, not a file"
        elif f.exists():
            why = None if os.access(f, os.W_OK) else "is not writable by this user"
        else:
            why = _writable_dir(f.parent)
        if why:
            errors.append(("security.audit_log", f"{cfg.security.audit_log!r} ({f}): {why}"))
    if errors:
        raise ConfigError(errors, source)


def validate_main(argv: list[str] | None = None) -> int:
    """``dubhe-config-validate FILE...``: print every error of every file (exit 1) or ``ok``."""
    ap = argparse.ArgumentParser(
        prog="dubhe-config-validate",
        description="Validate node config files (TOML, CONFIG.md): print every problem of each "
        "file as FILE: dotted.key: message and exit 1, or print 'FILE: ok' and exit 0. Paths in "
        "the file are checked as the node would use them from the current directory.",
    )
    ap.add_argument("files", nargs="+", metavar="FILE", help="config.toml files to check")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    status = 0
    for f in args.files:
        try:
            check_paths(load(f), f)
        except ConfigError as e:
            for key, msg in e.errors:
                print(f"{e.source}: {key}: {msg}")
            status = 1
        else:
            print("ok" if len(args.files) == 1 else f"{f}: ok")
    return status

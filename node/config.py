"""Node configuration: typed models with defaults, loaded from TOML.

Unknown keys and wrong types are errors naming the dotted key and the expected type; every error is
reported at once (:class:`~node.core.errors.ConfigError`). ``dubhe-config-validate FILE`` prints
them and exits 1, or prints ``ok`` and exits 0. Every key is documented in CONFIG.md.
"""

from __future__ import annotations

import ipaddress
import re
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from node.core.errors import ConfigError


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
    #: Deepest JSON nesting accepted in a request (HTTP body or WebSocket message; the
    #: top-level value is level 1); deeper input answers -32600 naming the limit.
    max_json_depth: int = Field(64, ge=2, le=1000)

    _v_rpc = field_validator("rpc_bind", "ws_bind", "grpc_bind")(_check_bind)
    _v_nets = field_validator("per_ip_exempt")(_check_networks)


class EndpointConfig(_Section):
    rpc_url: str
    ws_url: str | None = None


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
    rpc_url: str
    ws_url: str | None = None
    chain_id: int = Field(ge=1)
    endpoints: list[EndpointConfig] = []
    backoff: BackoffConfig = BackoffConfig()


class SuiAdapterConfig(_AdapterCommon):
    #: ``jsonrpc`` (``rpc_url`` is a JSON-RPC URL, ``ws_url`` its event subscription) or
    #: ``graphql`` (every URL is a Sui GraphQL endpoint; heads are polled, ``ws_url`` unused).
    protocol: Literal["jsonrpc", "graphql"] = "jsonrpc"
    rpc_url: str
    ws_url: str | None = None
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
    max_mempool_txs: int = Field(100_000, ge=1)
    #: Genesis balances: 0x-prefixed 20-byte address -> native-token amount.
    genesis_balances: dict[str, int] = {}
    #: Address allowed to mint the native token; empty = the well-known dev authority
    #: (``Signer.from_seed(b"mint-authority")``), for local labs only.
    mint_authority: str = ""

    @field_validator("genesis_balances")
    @classmethod
    def _v_balances(cls, v: dict[str, int]) -> dict[str, int]:
        for addr, amount in v.items():
            _check_address(addr)
            if not 0 <= amount < 2**64:
                raise ValueError(f"{addr}: amount must be in 0..2**64-1")
        return v

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
    "extra_forbidden": None,
    "literal_error": None,
    "missing": None,
}


def _format(e: ValidationError) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for err in e.errors():
        loc = (
            ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
            or "(root)"
        )
        kind = err["type"]
        if kind == "extra_forbidden":
            msg = "unknown key"
        elif kind == "missing":
            msg = "required key is missing"
        elif _TYPE_NAMES.get(kind):
            got = err.get("input")
            msg = f"expected {_TYPE_NAMES[kind]}, got {type(got).__name__} {got!r}"
        else:
            msg = err["msg"].removeprefix("Value error, ")
        out.append((loc, msg))
    return out


def from_dict(data: dict[str, Any], source: str = "config") -> Config:
    """Build a :class:`Config`; raises :class:`ConfigError` listing every problem."""
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format(e), source) from None


def load(path: str | Path | None) -> Config:
    """Load a TOML file, or the embedded defaults when ``path`` is None."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError([("(file)", "no such file")], str(p)) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([("(syntax)", str(e))], str(p)) from None
    return from_dict(data, str(p))


def validate_main(argv: list[str] | None = None) -> int:
    """``dubhe-config-validate FILE``: print every error (exit 1) or ``ok`` (exit 0)."""
    args = sys.argv[1:] if argv is None else argv
    usage = "usage: dubhe-config-validate FILE"
    if args in (["-h"], ["--help"]):
        print(f"{usage}\n\nValidate a node config.toml: print every error (exit 1) or ok (exit 0).")
        return 0
    if len(args) != 1:
        print(usage, file=sys.stderr)
        return 2
    try:
        load(args[0])
    except ConfigError as e:
        for key, msg in e.errors:
            print(f"{e.source}: {key}: {msg}")
        return 1
    print("ok")
    return 0

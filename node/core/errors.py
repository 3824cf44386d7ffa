"""The node's error tree.

Every error carries its *kind*: :class:`LocalError` means we (the node) are at fault,
:class:`RemoteError` means the peer sent something wrong. At the JSON-RPC edge each error maps to
a wire code (``rpc_code``) and a message that names what was wrong; tracebacks never leave the
process.
"""

from __future__ import annotations

# JSON-RPC 2.0 wire codes (https://www.jsonrpc.org/specification#error_object) plus the
# EIP-1474 server codes the node uses.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000  # geth's generic server error (e.g. "missing trie node": state not kept)
RESOURCE_NOT_FOUND = -32001
RESOURCE_UNAVAILABLE = -32002  # EIP-1474 "resource unavailable"
TX_REJECTED = -32003  # EIP-1474 "transaction rejected"
LIMIT_EXCEEDED = -32005  # EIP-1474 "limit exceeded"
UNAUTHORIZED = -32010  # server-defined: admin method without a valid bearer token
STORAGE_ERROR = -32020  # server-defined: the node's own storage failed (damaged data, I/O)


class NodeError(Exception):
    """Root of every error the node raises on purpose."""

    rpc_code: int = INTERNAL_ERROR

    def __init__(self, message: str, *, data: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class LocalError(NodeError):
    """Our fault: a bug, an exhausted resource, a storage failure."""

    rpc_code = INTERNAL_ERROR


class RemoteError(NodeError):
    """The peer's fault: malformed input, a bad signature, an unknown method."""

    rpc_code = INVALID_PARAMS


class InvalidParams(RemoteError):
    """A parameter is missing, of the wrong type or out of range; the message names it."""

    rpc_code = INVALID_PARAMS


class InvalidTransaction(RemoteError):
    """A transaction failed admission (decode, signature, nonce, size, chain id)."""

    rpc_code = TX_REJECTED

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(f"{cause}: {message}", data={"cause": cause})
        self.cause = cause


class NotFound(RemoteError):
    rpc_code = RESOURCE_NOT_FOUND


class MethodNotFound(RemoteError):
    """No such method (JSON-RPC -32601)."""

    rpc_code = METHOD_NOT_FOUND


class MethodUnavailable(MethodNotFound):
    """The method exists on the wire but not here (-32601, the message says why: contract methods
    on a node running the Python reference VM, a subscription over HTTP)."""


class StateUnavailable(RemoteError):
    """The request needs state this node does not keep (only the latest state is kept): geth's
    generic -32000, as for a pruned block."""

    rpc_code = SERVER_ERROR


class LimitExceeded(RemoteError):
    """Rate, size or count limit exceeded (JSON-RPC -32005)."""

    rpc_code = LIMIT_EXCEEDED


class Unauthorized(RemoteError):
    """An admin method was called without a valid bearer token."""

    rpc_code = UNAUTHORIZED


class ConfigError(RemoteError):
    """The configuration is invalid. ``errors`` lists every (dotted key, message) pair."""

    def __init__(self, errors: list[tuple[str, str]], source: str = "config") -> None:
        lines = "\n".join(f"{source}: {key}: {msg}" for key, msg in errors)
        super().__init__(lines)
        self.errors = errors
        self.source = source


class StorageError(LocalError):
    """The state store failed (I/O, corruption): -32020, never -32603, so a client can tell a
    damaged or failing disk from a bug. Counted in ``/metrics`` (``dubhe_storage_errors``)."""

    rpc_code = STORAGE_ERROR


class StorageCorruption(StorageError):
    """Stored data failed its checksum (or RocksDB found it inconsistent) when read: the data
    directory is damaged. The message names the file and offset RocksDB reported."""


class StorageDamage(StorageError):
    """The data directory is damaged and the node refuses to start on it. The message is one
    line naming the damage and the operator's options (``dubhe-node`` prints it and exits 1)."""

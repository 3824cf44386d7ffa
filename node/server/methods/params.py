"""Parameter parsers shared by the method groups.

Each parser takes the raw JSON value and returns the typed value, or raises ``ValueError`` with a
message saying what was expected; :class:`~node.rpc.jsonrpc.Params` turns that into -32602
naming the parameter (``invalid parameter 0 (address): expected 20 bytes, got 2``).

Objects of named fields (a transaction object, a deployment, a call) go through :class:`Fields`:
unknown names are refused, and a field's error names the field
(``invalid parameter 0 (call): field to: expected 20 bytes, got 1``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, TypeVar

from node.core import keys
from node.core.hexutil import parse_data, parse_qty
from node.core.tx import MAX_ARGS_BYTES, MAX_TX_BYTES, Transaction

T = TypeVar("T")

#: Block tags accepted wherever a block number is.
BLOCK_TAGS = ("latest", "pending", "safe", "finalized", "earliest")

#: Raw transaction hex is decoded up to this many bytes, above ``MAX_TX_BYTES``, so that a somewhat
#: oversize transaction is refused by admission as ``oversize`` (-32003), not as a bad parameter.
RAW_TX_PARSE_LIMIT = 200_000
assert RAW_TX_PARSE_LIMIT > MAX_TX_BYTES

def address(v: Any) -> bytes:
    return parse_data(v, length=keys.ADDRESS_LEN)


def hash32(v: Any) -> bytes:
    return parse_data(v, length=32)


def boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("expected true or false")
    return v


def string(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("expected a string")
    return v


def identifier(v: Any) -> str:
    if not isinstance(v, str) or not v.isidentifier():
        raise ValueError("expected an identifier")
    return v


def u64(v: Any) -> int:
    return parse_qty(v, max_bits=64)


def call_args(v: Any) -> bytes:
    """Contract call arguments (hex), at most :data:`~node.core.tx.MAX_ARGS_BYTES`."""
    return parse_data(v, max_len=MAX_ARGS_BYTES)


def block_tag(v: Any) -> int | str:
    """A block number (hex quantity) or one of :data:`BLOCK_TAGS`."""
    if v in BLOCK_TAGS:
        return str(v)
    if isinstance(v, str) and v.startswith("0x"):
        return parse_qty(v, max_bits=64)
    raise ValueError(
        'expected a block number (hex) or "latest", "pending", "safe", "finalized", "earliest"'
    )


def block_ref(v: Any) -> int | str | bytes:
    """A block by number (hex quantity), tag (:data:`BLOCK_TAGS`) or hash (32 bytes of hex):
    execution-apis' ``BlockNumberOrTagOrHash``; also the EIP-1898 objects ``{"blockHash"}``
    (``requireCanonical`` is accepted: this node has only its canonical chain) and
    ``{"blockNumber"}``. A hash comes back as ``bytes``."""
    if isinstance(v, dict):
        if "blockHash" in v:
            f = Fields(v, ("blockHash", "requireCanonical"))
            f.opt("requireCanonical", boolean, False)
            return f.get("blockHash", hash32)
        return Fields(v, ("blockNumber",)).get("blockNumber", block_tag)
    if isinstance(v, str) and v.startswith("0x") and len(v) == 66:
        return hash32(v)
    try:
        return block_tag(v)
    except ValueError:
        raise ValueError(
            'expected a block number (hex), a block hash, or "latest", "pending", "safe", '
            '"finalized", "earliest"'
        ) from None


def one_of(allowed: Collection[str], what: str) -> Callable[[Any], str]:
    """A parser accepting only the strings in ``allowed`` (named ``what`` in the error)."""

    def parse(v: Any) -> str:
        if v not in allowed:
            raise ValueError(f"unsupported {what} {v!r}; supported: {', '.join(allowed)}")
        return str(v)

    return parse


class Fields:
    """The fields of one JSON object parameter.

    ``Fields(value, allowed)`` refuses a non-object and unknown field names; :meth:`get` and
    :meth:`opt` parse one field each, and their errors name the field. A field present with
    ``null`` is parsed like any other value (only an absent field takes the default)."""

    __slots__ = ("_obj",)

    def __init__(
        self, value: Any, allowed: Collection[str], *, expected: str = "an object"
    ) -> None:
        if not isinstance(value, dict):
            raise ValueError(f"expected {expected}")
        unknown = set(value) - set(allowed)
        if unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)}")
        self._obj: dict[str, Any] = value

    def get(self, name: str, parse: Callable[[Any], T]) -> T:
        if name not in self._obj:
            raise ValueError(f"missing field {name}")
        return self._parse(name, parse)

    def opt(self, name: str, parse: Callable[[Any], T], default: T) -> T:
        return self._parse(name, parse) if name in self._obj else default

    def _parse(self, name: str, parse: Callable[[Any], T]) -> T:
        try:
            return parse(self._obj[name])
        except (ValueError, TypeError) as e:
            raise ValueError(f"field {name}: {e}") from None


TX_FIELDS = (
    "chainId",
    "nonce",
    "to",
    "method",
    "args",
    "readSet",
    "writeSet",
    "gasLimit",
    "publicKey",
    "signature",
)


def key_list(v: Any) -> tuple[bytes, ...]:
    if not isinstance(v, list):
        raise ValueError("expected an array of hex keys")
    return tuple(parse_data(k, max_len=keys.MAX_KEY_LEN) for k in v)


def transaction(v: Any) -> Transaction:
    """A transaction given as raw hex (canonical encoding) or as a JSON object of its fields.

    Decoding errors of raw hex raise :class:`~node.core.errors.InvalidTransaction` (-32003 with
    its cause); an object's field errors are parameter errors naming the field."""
    if isinstance(v, str):
        return Transaction.decode(parse_data(v, max_len=RAW_TX_PARSE_LIMIT))
    f = Fields(v, TX_FIELDS, expected="raw transaction hex or a transaction object")
    tx = Transaction(
        chain_id=f.get("chainId", u64),
        nonce=f.get("nonce", u64),
        to=f.get("to", address),
        method=f.get("method", string),
        args=f.opt("args", call_args, b""),
        read_set=f.opt("readSet", key_list, ()),
        write_set=f.opt("writeSet", key_list, ()),
        gas_limit=f.get("gasLimit", u64),
        public_key=f.get("publicKey", lambda x: parse_data(x, length=32)),
        signature=f.get("signature", lambda x: parse_data(x, length=64)),
    )
    tx.check_fields()
    return tx

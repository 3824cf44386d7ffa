"""The Ethereum adapter: follows heads over HTTP + WebSocket and reports Dubhe code events.

Heads arrive from an ``eth_subscribe("newHeads")`` subscription (plus a poll of
``eth_getBlockByNumber("latest")`` every ``poll_interval_s``); gaps are backfilled with batched
``eth_getBlockByNumber`` calls, reorgs resolved by parent hash (see :mod:`node.adapters.follow`).
For every block that joins the chain the adapter fetches its logs (``eth_getLogs`` by
``blockHash``, skipped when ``logsBloom`` is empty) and emits, after the block's
:class:`~node.adapters.events.NewHead`, one :class:`~node.adapters.events.L1Event` per log and a
:class:`~node.adapters.events.CodeUpgrade` for each Dubhe code log:

* ``topics[0]`` = :data:`TOPIC_CODE_DEPLOYED` or :data:`TOPIC_CODE_UPGRADED` (Keccak-256 of
  ``DubheCodeDeployed(uint256,bytes32)`` / ``DubheCodeUpgraded(uint256,bytes32)``), emitted by the
  contract's own address, ``data`` = ABI ``(uint256 version, bytes32 codeHash)``.

The code itself (the contract's RISC-V ELF) is read with :meth:`EthereumAdapter.get_code`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from Crypto.Hash import keccak

from node.adapters.base import ChainAdapter
from node.adapters.errors import AdapterError, MalformedResponse
from node.adapters.events import AdapterEvent, CodeUpgrade, Endpoint, Header, L1Event
from node.adapters.health import EndpointHealth
from node.core.hexutil import data, parse_data, parse_qty, qty


def keccak256(b: bytes) -> bytes:
    """Ethereum's Keccak-256 (event topics are Keccak-256 of the event signature)."""
    return keccak.new(digest_bits=256, data=b).digest()


TOPIC_CODE_DEPLOYED = data(keccak256(b"DubheCodeDeployed(uint256,bytes32)"))
TOPIC_CODE_UPGRADED = data(keccak256(b"DubheCodeUpgraded(uint256,bytes32)"))
_CODE_TOPICS = (TOPIC_CODE_DEPLOYED, TOPIC_CODE_UPGRADED)
_ZERO_BLOOM = "0x" + "00" * 256


class ChainMismatch(AdapterError):
    """The endpoint serves another chain than the configured ``chain_id``."""


def parse_header(obj: Any) -> Header:
    """A block or newHeads object → :class:`Header`; raises ``ValueError`` naming the bad field."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a block object, got {type(obj).__name__}")
    try:
        return Header(
            number=parse_qty(obj["number"], max_bits=64),
            hash=data(parse_data(obj["hash"], length=32)),
            parent_hash=data(parse_data(obj["parentHash"], length=32)),
            timestamp_ms=parse_qty(obj["timestamp"], max_bits=64) * 1000,
        )
    except KeyError as e:
        raise ValueError(f"block lacks {e.args[0]}") from None


def _address(a: bytes | str) -> str:
    b = parse_data(a, length=20) if isinstance(a, str) else a
    if len(b) != 20:
        raise ValueError("an Ethereum address is 20 bytes")
    return data(b)


class EthereumAdapter(ChainAdapter):
    """Follows an Ethereum-JSON-RPC chain over ``endpoints`` (the first is the primary).

    ``chain_id``: when given, each endpoint's ``eth_chainId`` is checked (at the first sync, or
    at the first sync after it is reachable): one serving another chain is marked ``wrong_chain``
    in its health (``dubhe_status``) and logged once, and is not used while another endpoint can
    be (asked again every 30 s); when every endpoint serves another chain, syncing fails with
    :class:`ChainMismatch`. ``batch_size``: blocks per JSON-RPC batch when backfilling (1: single
    calls). Other keywords: see :class:`~node.adapters.base.ChainAdapter`.
    """

    chain = "ethereum"

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        chain_id: int | None = None,
        batch_size: int = 50,
        **kw: Any,
    ) -> None:
        super().__init__(endpoints, **kw)
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.chain_id = chain_id
        #: Blocks per JSON-RPC batch when backfilling; 1 sends single calls (providers without
        #: batches).
        self.batch_size = batch_size
        #: Endpoints (indices) whose chain id is still to be checked.
        self._unchecked: set[int] = set() if chain_id is None else set(range(len(endpoints)))
        self._checked_at: dict[int, float] = {}
        self._bloom_empty: dict[str, bool] = {}
        self._code_blocks: dict[int, list[str]] = {}

    # ------------------------------------------------------------------ reads for the loader

    async def get_code(
        self, address: bytes | str, block: int | str = "latest", *, timeout_s: float | None = None
    ) -> bytes:
        """The code at ``address`` (a Dubhe contract's RISC-V ELF); ``b""`` if there is none.
        ``timeout_s``: the whole fetch's budget (hedges and retries included)."""
        tag = qty(block) if isinstance(block, int) else block
        return await self.rpc.call(
            "eth_getCode", [_address(address), tag], lambda r: parse_data(r), timeout_s=timeout_s
        )

    async def get_balance(self, address: bytes | str, block: int | str = "latest") -> int:
        tag = qty(block) if isinstance(block, int) else block
        return await self.rpc.call(
            "eth_getBalance", [_address(address), tag], lambda r: parse_qty(r)
        )

    async def get_chain_id(self) -> int:
        return await self.rpc.call("eth_chainId", [], lambda r: parse_qty(r))

    async def get_block(self, number: int | str = "latest") -> Header | None:
        tag = qty(number) if isinstance(number, int) else number
        return await self.rpc.call(
            "eth_getBlockByNumber", [tag, False], lambda r: None if r is None else self._parse(r)
        )

    # ------------------------------------------------------------------ ChainAdapter hooks

    def _parse(self, obj: Any) -> Header:
        h = parse_header(obj)
        bloom = obj.get("logsBloom")
        if isinstance(bloom, str):
            self._bloom_empty[h.hash] = bloom == _ZERO_BLOOM
            if len(self._bloom_empty) > 4 * self.follower.window:
                for k in list(self._bloom_empty)[: self.follower.window]:
                    del self._bloom_empty[k]
        return h

    async def _check_chains(self) -> None:
        """Ask each endpoint not yet checked (and reachable now) which chain it serves."""
        book = self.health_book
        now = book.clock()
        for eh in book.entries:
            if eh.wrong_chain is not None and now - self._checked_at.get(eh.index, now) >= 30:
                self._unchecked.add(eh.index)  # asked again: the endpoint may have been fixed
            if eh.index not in self._unchecked or not eh.available(now):
                continue
            self._checked_at[eh.index] = now
            try:
                got = await self.rpc.call_on(eh, "eth_chainId", [], parse_qty)
            except AdapterError:
                continue  # unreachable now: asked again at a later sync
            self._unchecked.discard(eh.index)
            if got == self.chain_id:
                if eh.wrong_chain is not None:
                    self.log.info("%s endpoint %s serves chain id %d again: used again",
                                  self.chain, eh.endpoint.rpc_url, got)
                book.chain_ok(eh)
                continue
            if eh.wrong_chain is not None:
                continue  # still wrong: logged when first found
            why = f"serves chain id {got}, but adapters.ethereum.chain_id is {self.chain_id}"
            book.wrong_chain(eh, why)
            self.log.error("%s endpoint %s %s: it is not used (fix the endpoint, or chain_id "
                           "if the endpoint is right)", self.chain, eh.endpoint.rpc_url, why)
        if all(e.wrong_chain is not None for e in book.entries):
            raise ChainMismatch("every endpoint serves another chain: " + "; ".join(
                f"{e.endpoint.rpc_url} {e.wrong_chain}" for e in book.entries))

    def _trusted(self, eh: EndpointHealth) -> bool:
        return eh.wrong_chain is None and eh.index not in self._unchecked

    async def _latest_header(self) -> Header:
        if self.chain_id is not None and (self._unchecked or any(
                e.wrong_chain is not None for e in self.health_book.entries)):
            await self._check_chains()
        h = await self.get_block("latest")
        if h is None:
            raise MalformedResponse("eth_getBlockByNumber(latest) returned null")
        return h

    async def _headers(self, first: int, last: int) -> list[Header]:
        out: list[Header] = []
        step = self.batch_size
        for lo in range(first, last + 1, step):
            nums = range(lo, min(last, lo + step - 1) + 1)
            got: list[Header | None]
            if step == 1:
                got = [await self.get_block(lo)]
            else:
                calls: list[tuple[str, list[Any] | dict[str, Any]]] = [
                    ("eth_getBlockByNumber", [qty(n), False]) for n in nums
                ]
                got = await self.rpc.call_batch(
                    calls, lambda r: None if r is None else self._parse(r)
                )
            for h in got:
                if h is None:
                    return out
                out.append(h)
        return out

    async def _block_events(self, header: Header) -> list[AdapterEvent]:
        self._code_blocks.pop(header.number, None)
        if self._bloom_empty.get(header.hash, False):
            return []
        logs = await self.rpc.call("eth_getLogs", [{"blockHash": header.hash}], _logs_of(header))
        out: list[AdapterEvent] = []
        for lg in logs:
            out.append(
                L1Event(
                    self.chain,
                    f"{header.hash}:{lg['logIndex']}",
                    lg["address"],
                    lg["topic0"],
                    header,
                    lg["raw"],
                )
            )
            if lg["topic0"] in _CODE_TOPICS and len(lg["data"]) >= 64:
                version = int.from_bytes(lg["data"][:32], "big")
                out.append(
                    CodeUpgrade(
                        self.chain,
                        lg["address"],
                        lg["address"],
                        version,
                        data(lg["data"][32:64]),
                        header,
                    )
                )
                self._code_blocks.setdefault(header.number, []).append(lg["address"])
        for n in [n for n in self._code_blocks if n < header.number - self.follower.window]:
            del self._code_blocks[n]
        return out

    def _reverted_code(self, dropped: tuple[Header, ...]) -> tuple[str, ...]:
        out: list[str] = []
        for h in dropped:
            out.extend(self._code_blocks.pop(h.number, []))
        return tuple(dict.fromkeys(out))

    def _subscriptions(self) -> list[tuple[str, list[Any]]]:
        return [("eth_subscribe", ["newHeads"])]

    def _on_notification(self, result: Any) -> Header | None:
        return self._parse(result)


def _logs_of(header: Header) -> Any:
    def parse(result: Any) -> list[dict[str, Any]]:
        if not isinstance(result, list):
            raise ValueError(f"eth_getLogs returned {type(result).__name__}, expected an array")
        out: list[dict[str, Any]] = []
        for lg in result:
            if not isinstance(lg, dict):
                raise ValueError("log entry is not an object")
            if lg.get("blockHash") != header.hash:
                raise ValueError("log of another block")
            topics = lg.get("topics")
            if not isinstance(topics, list):
                raise ValueError("log topics is not an array")
            out.append({
                "address": _address(lg["address"]),
                "topic0": data(parse_data(topics[0], length=32)) if topics else "",
                "data": parse_data(lg.get("data", "0x")),
                "logIndex": parse_qty(lg["logIndex"]),
                "raw": lg,
            })
        return out

    return parse

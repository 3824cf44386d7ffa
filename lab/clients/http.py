"""JSON-RPC over HTTP(S) that records every request in a history and retries what is safe.

:meth:`RecordingHttp.call` retries idempotent reads after connection errors, 5xx and 429 (waiting
at least ``Retry-After``) with the same full-jitter backoff as the WebSocket client; TLS errors
and other 4xx are fatal at once. :meth:`RecordingHttp.send_raw_transaction` never retries: a
transaction whose answer was lost is recorded as ``outcome = "unknown"`` (it may or may not be on
the chain), one the node answered with its hash as ``"ack"``, one it refused as ``"rejected"`` —
the input of the "no acknowledged transaction lost" checker.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
from types import TracebackType
from typing import Any

import aiohttp
import orjson

from lab.clients.backoff import Backoff, BackoffPolicy
from lab.clients.history import History
from lab.clients.rpc import RpcError
from lab.clients.transport import retry_after
from node.rpc import jsonrpc


class HttpFailed(Exception):
    """A request that got no JSON-RPC answer (``status`` None: no HTTP response at all)."""

    def __init__(self, message: str, status: int | None = None, *, fatal: bool = False,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.fatal = fatal
        self.retry_after_s = retry_after_s


class RecordingHttp:
    """``async with RecordingHttp(url, history=h, ssl=ctx) as rpc: await rpc.call(...)``."""

    def __init__(self, url: str, *, history: History, ssl: ssl.SSLContext | None = None,
                 token: str | None = None, timeout_s: float = 10.0,
                 backoff: BackoffPolicy | None = None, seed: int | None = None,
                 max_attempts: int = 8) -> None:
        self.url = url
        self.history = history
        self._ssl = ssl
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.backoff = Backoff(backoff or BackoffPolicy(base_s=0.05, cap_s=2.0), seed)
        self.max_attempts = max_attempts
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> RecordingHttp:
        connector = (aiohttp.TCPConnector(ssl=self._ssl) if self._ssl is not None
                     else aiohttp.TCPConnector())
        self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector,
                                              trust_env=False)
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, method: str, params: list[Any]) -> tuple[dict[str, Any], int]:
        """One attempt: (the JSON-RPC response, HTTP status), or :class:`HttpFailed`."""
        assert self._session is not None, "use 'async with RecordingHttp(...)'"
        body = jsonrpc.request(method, params, next(self._ids))
        try:
            async with self._session.post(self.url, data=body, headers=self._headers) as r:
                raw = await r.read()
                if r.status >= 400 and r.status != 200:
                    # A JSON-RPC error may come with a 4xx/5xx from some servers: use it.
                    try:
                        resp = orjson.loads(raw)
                        if isinstance(resp, dict) and "error" in resp:
                            return resp, r.status
                    except orjson.JSONDecodeError:
                        pass
                    raise HttpFailed(f"HTTP {r.status}", r.status,
                                     fatal=400 <= r.status < 500 and r.status not in (408, 429),
                                     retry_after_s=retry_after(r.headers))
                try:
                    resp = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise HttpFailed(f"HTTP {r.status}: not JSON", r.status) from None
                if not isinstance(resp, dict):
                    raise HttpFailed(f"HTTP {r.status}: not a JSON-RPC response", r.status)
                return resp, r.status
        except aiohttp.ClientConnectorCertificateError as e:
            raise HttpFailed(f"TLS certificate verification failed: {e.certificate_error}",
                             fatal=True) from None
        except aiohttp.ClientSSLError as e:
            raise HttpFailed(f"TLS handshake failed: {e}", fatal=True) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise HttpFailed(f"{type(e).__name__}: {e}".rstrip(": ")) from None

    async def call(self, method: str, *params: Any, retry: bool = True) -> Any:
        """Call ``method``; ``retry`` (default, for reads) retries transport failures, 5xx and 429.
        Raises :class:`RpcError` (the node's answer) or :class:`HttpFailed`."""
        loop = asyncio.get_running_loop()
        attempts = 0
        while True:
            attempts += 1
            t0 = loop.time()
            fields: dict[str, Any] = {"transport": "http", "method": method, "attempt": attempts}
            try:
                resp, status = await self._post(method, list(params))
            except HttpFailed as e:
                self.history.record("request", **fields, ok=False, status=e.status,
                                    error=str(e), ms=round((loop.time() - t0) * 1000, 3))
                if not retry or e.fatal or attempts >= self.max_attempts:
                    raise
                delay = self.backoff.next_delay(at_least=e.retry_after_s or 0.0)
                self.history.record("backoff", attempt=attempts, delay_s=round(delay, 6),
                                    reason=str(e), seed=self.backoff.seed)
                await asyncio.sleep(delay)
                continue
            ms = round((loop.time() - t0) * 1000, 3)
            if "error" in resp:
                err = resp["error"] if isinstance(resp["error"], dict) else {}
                self.history.record("request", **fields, ok=False, status=status,
                                    code=err.get("code"), error=str(err.get("message", "")),
                                    ms=ms)
                raise RpcError(int(err.get("code", 0)), str(err.get("message", "")),
                               err.get("data"))
            self.history.record("request", **fields, ok=True, status=status, ms=ms)
            self.backoff.attempt = 0
            return resp.get("result")

    async def send_raw_transaction(self, raw_hex: str, tx_hash: str) -> str:
        """Submit a signed transaction once (``dubhe_sendTransaction``) and record its outcome
        (``ack``, ``rejected`` or ``unknown``) under ``tx``; returns the outcome."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        fields: dict[str, Any] = {"transport": "http", "method": "dubhe_sendTransaction",
                                  "tx": tx_hash}
        try:
            resp, status = await self._post("dubhe_sendTransaction", [raw_hex])
        except HttpFailed as e:
            # A 5xx from nginx with the node gone may still mean the node took it: unknown.
            outcome = "rejected" if e.fatal else "unknown"
            self.history.record("request", **fields, ok=False, outcome=outcome,
                                status=e.status, error=str(e),
                                ms=round((loop.time() - t0) * 1000, 3))
            return outcome
        ms = round((loop.time() - t0) * 1000, 3)
        if "error" in resp:
            err = resp["error"] if isinstance(resp["error"], dict) else {}
            self.history.record("request", **fields, ok=False, outcome="rejected",
                                status=status, code=err.get("code"),
                                error=str(err.get("message", "")), ms=ms)
            return "rejected"
        acked = resp.get("result")
        self.history.record("request", **fields, ok=True, outcome="ack", status=status,
                            result=acked, ms=ms)
        return "ack"


__all__ = ["HttpFailed", "RecordingHttp"]

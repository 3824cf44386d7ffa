"""Access control and limits: bearer-token check for admin methods, token buckets per
connection and per client address, and the append-only audit log."""

from __future__ import annotations

import hmac
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

import orjson

ADMIN_PREFIX = "dubhe_admin_"


def is_admin_method(method: str) -> bool:
    return method.startswith(ADMIN_PREFIX)


def check_bearer(header: str | None, token: str) -> bool:
    """True when ``header`` is ``Bearer <token>`` and a token is configured (constant-time)."""
    if not token or not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` stored. One per connection; not thread-safe."""

    __slots__ = ("burst", "rate", "stamp", "tokens", "violations")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.violations = 0  # consecutive refusals

    def take(self, n: float = 1.0) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= n:
            self.tokens -= n
            self.violations = 0
            return True
        self.violations += 1
        return False

    def take_up_to(self, n: int) -> int:
        """Take as many of ``n`` tokens as are available (whole ones); returns how many."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        k = min(n, int(self.tokens))
        self.tokens -= k
        if k < n:
            self.violations += 1
        elif n:
            self.violations = 0
        return k


class Bucket(Protocol):
    """What the dispatcher and the admission methods take tokens from."""

    @property
    def violations(self) -> int: ...

    def take(self, n: float = 1.0) -> bool: ...

    def take_up_to(self, n: int) -> int: ...


class LinkedBucket:
    """A connection's bucket and its client address's bucket, taken together: a token is
    granted only when both have one (a refusal by either counts as the connection's
    violation). Opening more connections therefore buys no more than the address's rate."""

    __slots__ = ("conn", "ip")

    def __init__(self, conn: TokenBucket, ip: TokenBucket) -> None:
        self.conn = conn
        self.ip = ip

    @property
    def violations(self) -> int:
        return self.conn.violations

    def take(self, n: float = 1.0) -> bool:
        if not self.ip.take(n):
            self.conn.violations += 1
            return False
        if not self.conn.take(n):
            self.ip.tokens += n  # refund: the request is refused
            return False
        return True

    def take_up_to(self, n: int) -> int:
        k = self.ip.take_up_to(n)
        got = self.conn.take_up_to(k)
        self.ip.tokens += k - got
        if got < n and k == got:
            self.conn.violations += 1
        return got


class IpBuckets:
    """Request and transaction buckets per client address (``[api] ip_*``), shared by every
    connection from it; None for exempt addresses or when the rate is 0. At most
    ``max_entries`` addresses are tracked (least recently seen evicted)."""

    def __init__(self, rate: float, burst: int, tx_rate: float, tx_burst: int,
                 is_exempt: Any, max_entries: int = 65_536) -> None:
        self.rate, self.burst, self.tx_rate, self.tx_burst = rate, burst, tx_rate, tx_burst
        self.is_exempt = is_exempt
        self.max_entries = max_entries
        self._by_ip: OrderedDict[str, tuple[TokenBucket | None, TokenBucket | None]] = (
            OrderedDict()
        )

    def get(self, ip: str) -> tuple[TokenBucket | None, TokenBucket | None]:
        hit = self._by_ip.get(ip)
        if hit is None:
            if not ip or self.is_exempt(ip):
                hit = (None, None)
            else:
                hit = (TokenBucket(self.rate, self.burst) if self.rate else None,
                       TokenBucket(self.tx_rate, self.tx_burst) if self.tx_rate else None)
            self._by_ip[ip] = hit
            while len(self._by_ip) > self.max_entries:
                self._by_ip.popitem(last=False)
        else:
            self._by_ip.move_to_end(ip)
        return hit

    def link(self, ip: str, conn: TokenBucket, tx_conn: TokenBucket) -> tuple[Bucket, Bucket]:
        """The buckets a connection from ``ip`` takes from (its own, linked to the address's)."""
        req, tx = self.get(ip)
        return (conn if req is None else LinkedBucket(conn, req),
                tx_conn if tx is None else LinkedBucket(tx_conn, tx))


class AuditLog:
    """Append-only JSON-lines audit trail (admin calls, authorization failures, limit closures).

    Each line: ``{"ts": unix seconds, "event", "peer", "request_id", ...}``. Written and flushed
    per event; safe to call from several threads.
    """

    def __init__(self, path: str | Path | None) -> None:
        self._lock = threading.Lock()
        self._f = None
        if path:
            p = Path(path)
            p.parent.mkdir(parents=True, exist_ok=True)
            self._f = p.open("ab", buffering=0)

    def record(self, event: str, *, peer: str, request_id: str, **fields: Any) -> None:
        if self._f is None:
            return
        line = orjson.dumps(
            {
                "ts": round(time.time(), 6),
                "event": event,
                "peer": peer,
                "request_id": request_id,
                **fields,
            }
        )
        with self._lock:
            self._f.write(line + b"\n")

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

"""Access control and limits: bearer-token check for admin methods, per-connection token
buckets, and the append-only audit log."""

from __future__ import annotations

import hmac
import threading
import time
from pathlib import Path
from typing import Any

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

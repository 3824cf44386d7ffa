"""``tls``: TLS handshake failures, each attempted twice: once with plain websockets (the exact
exception a client sees) and once with the reconnecting client (which must report it as fatal,
once, with a clear message, instead of retrying forever as websockets' own reconnect loop does).

For each attempt the nginx error log written during it is matched against an expected signature
(``lab.checkers.nginx_logs.SIGNATURES``), e.g. ``ssl_peer_closed`` ("peer closed connection in SSL
handshake" when the client rejects the certificate) or ``plain_http_to_https``.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Literal

import websockets
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lab.checkers import load as io
from lab.checkers import nginx_logs
from lab.clients.backoff import BackoffPolicy
from lab.clients.reconnecting import ClientFatal, ClientOptions, NotConnected, ReconnectingClient
from lab.clients.transport import websockets_connector
from lab.scenarios.context import RunContext
from lab.scenarios.workloads import workload

_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


class TlsAttempt(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    #: ``wss``/``ws``: the lab's endpoints; ``ws-to-tls``: ws:// to the TLS port;
    #: ``wss-to-plain``: wss:// to the plain port.
    target: Literal["wss", "ws", "ws-to-tls", "wss-to-plain"] = "wss"
    #: ``run``: trust the run's CA; ``system``: the system store (which does not know it).
    trust: Literal["run", "system"] = "run"
    tls_min: Literal["TLSv1.2", "TLSv1.3"] | None = None
    tls_max: Literal["TLSv1.2", "TLSv1.3"] | None = None
    #: The exception class name plain websockets must raise (None: it must connect).
    exception: str | None = None
    #: A piece of its message.
    message: str = ""
    #: The nginx error-log signature expected while this attempt runs (None: no check).
    nginx: str | None = None

    @field_validator("nginx")
    @classmethod
    def _known_signature(cls, v: str | None) -> str | None:
        if v is not None and v not in nginx_logs.SIGNATURES:
            raise ValueError(f"unknown nginx signature {v!r} "
                             f"(known: {', '.join(nginx_logs.SIGNATURES)})")
        return v


class TlsParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: list[TlsAttempt] = Field(min_length=1)
    #: How long the reconnecting client is watched for retries after a failure.
    watch_s: float = Field(1.5, gt=0)


_PER = ("exception_ok", "message_ok", "nginx_lines", "connected", "client_fatal",
        "client_attempts", "as_expected")


def _figures(p: TlsParams) -> list[str]:
    return [f"{a.name}.{f}" for a in p.attempts for f in _PER] + [
        "tls.attempts", "tls.as_expected", "tls.failures", "tls.client_fatal",
        "tls.client_retries"]


def _url(ctx: RunContext, target: str) -> str:
    eps = ctx.lab.endpoints
    if target == "ws-to-tls":
        return eps["wss"].replace("wss://", "ws://", 1)
    if target == "wss-to-plain":
        return eps["ws"].replace("ws://", "wss://", 1)
    return eps[target]


def _context(ctx: RunContext, a: TlsAttempt) -> ssl.SSLContext:
    c = (ssl.create_default_context(cafile=str(ctx.lab.ca_file)) if a.trust == "run"
         else ssl.create_default_context())
    if a.tls_min:
        c.minimum_version = _VERSIONS[a.tls_min]
    if a.tls_max:
        c.maximum_version = _VERSIONS[a.tls_max]
    return c


@workload("tls", TlsParams, _figures)
async def tls(ctx: RunContext, p: TlsParams) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    observed: list[dict[str, Any]] = []
    run_dir = ctx.lab.run_dir
    for a in p.attempts:
        url, sslctx = _url(ctx, a.target), _context(ctx, a)
        before = io.log_sizes(run_dir)
        # 1. plain websockets: the exception users see.
        exc_name, exc_text = "", ""
        try:
            ws = await websockets.connect(url, ssl=sslctx if url.startswith("wss:") else None,
                                          open_timeout=5, proxy=None, ping_interval=None)
            await ws.close()
        except Exception as exc:
            exc_name, exc_text = type(exc).__name__, str(exc)
        # 2. the reconnecting client: fatal at once, or connected.
        client = ReconnectingClient(
            url, connector=websockets_connector(ssl_context=sslctx),
            options=ClientOptions(seed=ctx.derived_seed(f"tls/{a.name}"), ping_interval_s=None,
                                  backoff=BackoffPolicy(base_s=0.05, cap_s=0.2)),
            name=f"tls-{a.name}", history=ctx.history(f"tls-{a.name}"))
        connected, fatal = False, ""
        client.start()
        try:
            await client.wait_open(p.watch_s)
            connected = True
        except ClientFatal as exc:
            fatal = str(exc)
        except NotConnected:
            pass
        await asyncio.sleep(0 if connected or fatal else 0.1)
        await client.stop()
        await asyncio.sleep(0.2)  # let nginx write its line
        span = io.spans(before, io.log_sizes(run_dir)).get("nginx_error")
        lines = nginx_logs.error_lines(io.read_span(run_dir, span)) if span else []
        matched = nginx_logs.signature(lines, a.nginx) if a.nginx else []
        attempts = len(client.history.of("connect"))
        exception_ok = (a.exception is None and not exc_name) or exc_name == a.exception
        message_ok = a.message in exc_text if a.exception else not exc_text
        nginx_ok = a.nginx is None or bool(matched)
        expected_fatal = a.exception is not None
        f = {
            "exception_ok": int(exception_ok), "message_ok": int(message_ok),
            "nginx_lines": len(matched), "connected": int(connected),
            "client_fatal": int(bool(fatal)), "client_attempts": attempts,
            "as_expected": int(exception_ok and message_ok and nginx_ok
                               and bool(fatal) == expected_fatal and connected != expected_fatal),
        }
        figures.update({f"{a.name}.{k}": v for k, v in f.items()})
        observed.append(
            {
                "attempt": a.name,
                "url": url,
                "exception": exc_name,
                "message": exc_text,
                "client": fatal or ("connected" if connected else "neither"),
                "client_attempts": attempts,
                "nginx": [f"[{e.level}] {e.message[:200]}" for e in (matched or lines)][:3],
            }
        )
        ctx.progress(f"   {a.name}: {exc_name or 'connected'}: {exc_text[:100]}"
                     + (f" | nginx: {matched[0].message[:90]}" if matched else ""))
    failures = [a for a in p.attempts if a.exception is not None]
    figures["tls.attempts"] = len(p.attempts)
    figures["tls.failures"] = len(failures)
    figures["tls.as_expected"] = sum(figures[f"{a.name}.as_expected"] for a in p.attempts)
    figures["tls.client_fatal"] = sum(figures[f"{a.name}.client_fatal"] for a in failures)
    figures["tls.client_retries"] = sum(figures[f"{a.name}.client_attempts"] - 1 for a in failures)
    ctx.details["attempts"] = observed
    return figures

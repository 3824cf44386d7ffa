"""Toxics: one module per type; importing this package registers them all in :data:`TOXICS`.

Toxiproxy's own types: noop, latency, bandwidth, slow_close, timeout, reset_peer, slicer,
limit_data. Lab extras (stock clients can ignore them): slow_open, cut, flap and the
WebSocket-aware ws_cut, ws_close, ws_swallow, ws_message. See docs/creating-toxics.md.
"""

from lab.proxy.toxics import (
    bandwidth,
    cut,
    flap,
    latency,
    limit_data,
    noop,
    reset_peer,
    slicer,
    slow_close,
    slow_open,
    timeout,
    ws_close,
    ws_cut,
    ws_message,
    ws_swallow,
)
from lab.proxy.toxics.base import (
    TOXICS,
    CleanupToxic,
    Interrupted,
    ProxyToxic,
    StatefulToxic,
    Toxic,
    ToxicAttributeError,
    ToxicStub,
    register,
)

__all__ = [
    "TOXICS",
    "CleanupToxic",
    "Interrupted",
    "ProxyToxic",
    "StatefulToxic",
    "Toxic",
    "ToxicAttributeError",
    "ToxicStub",
    "bandwidth",
    "cut",
    "flap",
    "latency",
    "limit_data",
    "noop",
    "register",
    "reset_peer",
    "slicer",
    "slow_close",
    "slow_open",
    "timeout",
    "ws_close",
    "ws_cut",
    "ws_message",
    "ws_swallow",
]

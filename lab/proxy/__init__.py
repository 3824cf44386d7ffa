"""Toxiproxy-compatible fault proxy for the lab (``python -m lab.proxy``).

Speaks the Toxiproxy 2.12 HTTP API (any stock client works), with Toxiproxy's toxics and units,
plus lab extras: WebSocket-aware toxics, slow_open/cut/flap, per-connection targeting, schedules,
a working seed, live metrics and an event log. Public names:

- :class:`ProxyServer`: run a server in-process (``async with ProxyServer(port=0) as s``).
- :class:`ToxiproxyClient` (``lab.proxy.client``): async typed client for any Toxiproxy server.
- :func:`load_profile` / :class:`Profile`: fault profiles (``fault-profiles/*.toml``).
"""

from lab.proxy.errors import ApiError
from lab.proxy.profiles import Profile, ProfileError, load_profile
from lab.proxy.server import ProxyServer

__all__ = ["ApiError", "Profile", "ProfileError", "ProxyServer", "load_profile"]

"""The proxy server: the API app plus the proxies, run on one event loop.

Use it in-process (tests, the lab)::

    async with ProxyServer(port=0, seed=7) as server:
        url = server.base_url  # "http://127.0.0.1:<port>"

or as a program: ``dubhe-proxy --host 127.0.0.1 --port 8474 [--profile f.toml] [--seed N]``.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from aiohttp import web

from lab.proxy import rng
from lab.proxy.api import make_app
from lab.proxy.proxy_collection import ProxyCollection


class ProxyServer:
    """Owns the API listener and the :class:`ProxyCollection`; start with ``async with``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8474, *, seed: int | None = None,
                 config: Path | None = None, metrics: bool = True) -> None:
        self.host = host
        self.port = port
        self._seed_arg = seed
        self.seed = rng.new_seed() if seed is None else seed
        self.config = config
        self.metrics = metrics
        self._runner: web.AppRunner | None = None
        self.collection: ProxyCollection | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Load the profile (if any), then listen; raises ``ProfileError``/``OSError``."""
        profile = None
        if self.config is not None:
            from lab.proxy.profiles import load_profile

            profile = load_profile(self.config)
            if self._seed_arg is None and profile.seed is not None:
                self.seed = profile.seed
        self.collection = ProxyCollection(self.seed)
        if profile is not None:
            from lab.proxy.profiles import apply_profile

            await apply_profile(self.collection, profile)
        self._runner = web.AppRunner(make_app(self.collection, metrics_on=self.metrics),
                                     access_log=None, handler_cancellation=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self.collection is not None:
            await self.collection.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ProxyServer:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

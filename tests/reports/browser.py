"""Headless Chromium driven over the DevTools protocol (no extra package: ``websockets``).

:func:`chromium` finds the binary (Debian's ``chromium``, installed by scripts/setup-system.sh);
:class:`Browser` starts it with its own profile, opens pages, evaluates JavaScript, takes
full-page screenshots and collects what the page logged as errors.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from timing import scaled, wait_until_sync
from websockets.sync.client import ClientConnection, connect

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str | None:
    return next((p for c in CANDIDATES if (p := shutil.which(c))), None)


class Browser:
    """``with Browser(binary) as b: b.open(url); b.evaluate("..."); b.screenshot()``."""

    def __init__(self, binary: str, width: int = 1280, height: int = 900) -> None:
        self.profile = tempfile.TemporaryDirectory(prefix="dubhe-chromium-")
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--disable-background-networking", "--hide-scrollbars",
             f"--window-size={width},{height}", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile.name}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._ids = itertools.count(1)
        self._stack = contextlib.ExitStack()
        self.errors: list[str] = []
        try:
            self.ws = self._attach()
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable")
        except BaseException:
            self.close()
            raise

    def _attach(self) -> ClientConnection:
        # Chromium writes the port it bound (--remote-debugging-port=0) into its profile.
        active = Path(self.profile.name) / "DevToolsActivePort"

        def bound() -> int | None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            lines = active.read_text().splitlines() if active.exists() else []
            return int(lines[0]) if lines and lines[0].strip().isdigit() else None

        port = wait_until_sync(bound, 30, what="chromium's DevTools port")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.loads(r.read()) if t.get("type") == "page"]
        return self._stack.enter_context(connect(pages[0]["webSocketDebuggerUrl"], max_size=None,
                                                 open_timeout=10))

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command; events that arrive meanwhile are checked for errors."""
        mid = next(self._ids)
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result") or {})
            self._event(msg)

    def _event(self, msg: dict[str, Any]) -> None:
        method, p = msg.get("method"), msg.get("params") or {}
        if method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails") or {}
            thrown = (d.get("exception") or {}).get("description") or d.get("text")
            self.errors.append(f"exception: {thrown}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append("console.error: " + " ".join(
                str(a.get("value", a.get("description", ""))) for a in p.get("args") or []))
        elif method == "Log.entryAdded" and (p.get("entry") or {}).get("level") == "error":
            e = p["entry"]
            self.errors.append(f"log: {e.get('text')} {e.get('url', '')}".strip())

    def open(self, url: str, timeout_s: float = 30) -> None:
        """Navigate and wait for the load event (every image loaded or failed)."""
        self.call("Page.navigate", url=url)
        timeout_s = scaled(timeout_s)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv(timeout=timeout_s))
            if msg.get("method") == "Page.loadEventFired":
                return
            self._event(msg)
        raise TimeoutError(f"{url} did not load in {timeout_s} s")

    def evaluate(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"evaluate: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, path: Path) -> tuple[int, int]:
        """The whole page as PNG; returns its (width, height) in CSS pixels."""
        size = self.evaluate("[document.documentElement.scrollWidth, "
                             "document.documentElement.scrollHeight]")
        width, height = int(size[0]), int(size[1])
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
        path.write_bytes(base64.b64decode(shot["data"]))
        return width, height

    def close(self) -> None:
        self._stack.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

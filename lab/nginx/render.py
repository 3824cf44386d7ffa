"""Render the nginx configuration of a lab run from ``nginx/nginx.conf.j2``.

The template is Jinja2 with strict undefined variables (a typo in the template is an error, not
an empty directive). Every path handed to it is absolute and inside the run directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from lab.orchestrate.errors import NginxConfigError
from lab.orchestrate.spec import NginxSpec

#: The repository's ``nginx/`` folder (templates).
TEMPLATES = Path(__file__).resolve().parents[2] / "nginx"
TEMPLATE = "nginx.conf.j2"


@dataclass(frozen=True)
class NginxPaths:
    """Where nginx keeps its files for one run (all under ``root``)."""

    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "nginx.conf"

    @property
    def pid(self) -> Path:
        return self.root / "nginx.pid"

    @property
    def error_log(self) -> Path:
        return self.root / "error.log"

    @property
    def access_log(self) -> Path:
        return self.root / "access.log"

    @property
    def temp(self) -> Path:
        return self.root / "tmp"


def _seconds(value: float) -> str:
    """nginx time syntax: whole seconds as ``5s``, anything finer in milliseconds."""
    ms = round(value * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _environment(templates: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False,
    )
    env.filters["seconds"] = _seconds
    return env


def render(settings: NginxSpec, *, run_id: str, paths: NginxPaths, listen_http: str,
           listen_https: str, upstream_rpc: str, upstream_ws: str, cert: Path, key: Path,
           templates: Path = TEMPLATES, trusted: tuple[str, ...] = ()) -> str:
    """The config text; ``listen_*`` are nginx's own addresses, ``upstream_*`` where it reaches
    the node (through the ``nginx-node-*`` links). ``/metrics`` and ``/nginx_status`` answer
    loopback and the ``trusted`` addresses or networks (a container backend's lab network,
    where the host's published-port traffic comes from)."""
    context: dict[str, Any] = {
        "s": settings,
        "run_id": run_id,
        "paths": {"pid": paths.pid, "error_log": paths.error_log,
                  "access_log": paths.access_log, "temp": paths.temp, "cert": cert, "key": key},
        "listen": {"http": listen_http, "https": listen_https},
        "upstream": {"rpc": upstream_rpc, "ws": upstream_ws},
        "trusted": ["127.0.0.1", "::1", *trusted],
    }
    try:
        return _environment(templates).get_template(TEMPLATE).render(context)
    except jinja2.TemplateError as exc:
        path = templates / TEMPLATE
        line = getattr(exc, "lineno", None) or _template_line(exc, path)
        where = f"{path}:{line}" if line else str(path)
        raise NginxConfigError(where, f"template error: {exc.message or exc}",
                               template=True) from None


def _template_line(exc: BaseException, path: Path) -> int | None:
    """The template line an error was raised at (Jinja2 maps its frames to template lines)."""
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line

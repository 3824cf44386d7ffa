"""nginx templates: every variant passes ``nginx -t``; a broken one reports nginx's own words."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from lab.nginx.check import check_config, find_nginx
from lab.nginx.render import NginxPaths, render
from lab.nginx.status import parse
from lab.nginx.tls import write_tls
from lab.orchestrate import EnvironmentProblem, NginxConfigError, NginxSpec

pytestmark = pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
    reason="nginx is not installed (make setup installs nginx-light)",
)


def _render(tmp_path: Path, spec: NginxSpec, templates: Path | None = None) -> NginxPaths:
    paths = NginxPaths(tmp_path / "nginx")
    paths.temp.mkdir(parents=True, exist_ok=True)
    tls = write_tls(tmp_path / "tls", "t", spec.tls_cert)
    kw = {"templates": templates} if templates else {}
    paths.conf.write_text(render(spec, run_id="t", paths=paths, listen_http="127.0.0.1:21080",
                                 listen_https="127.0.0.1:21443", upstream_rpc="127.0.0.1:21545",
                                 upstream_ws="127.0.0.1:21546", cert=tls.cert, key=tls.key, **kw))
    return paths


VARIANTS = [
    NginxSpec(),
    *[NginxSpec(limits={"req": req, "conn": conn})  # type: ignore[arg-type]
      for req, conn in itertools.product([False, True], repeat=2)],
    NginxSpec(read_timeout_s=0.5, send_timeout_s=1.25, connect_timeout_s=2),
    NginxSpec(keepalive=0),
    NginxSpec(worker_connections=16, worker_processes=2),
    NginxSpec(ssl_protocols="TLSv1.3", error_log_level="debug"),
    *[NginxSpec(tls_cert=v) for v in ("expired", "wrong-host", "untrusted")],  # type: ignore[arg-type]
    NginxSpec(limits={"req": True, "req_status": 503, "ws_rate": "30r/m"}),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("spec", VARIANTS, ids=lambda s: str(len(s.model_dump_json())))
def test_every_variant_passes_nginx_t(tmp_path: Path, spec: NginxSpec) -> None:
    paths = _render(tmp_path, spec)
    check_config(find_nginx(), paths.root, paths.conf, paths.error_log)
    conf = paths.conf.read_text()
    assert "daemon off;" in conf and str(tmp_path) in conf
    assert ("limit_req_zone" in conf) == spec.limits.req
    assert ("limit_conn perip" in conf) == spec.limits.conn


def test_rendered_directives(tmp_path: Path) -> None:
    conf = _render(tmp_path, NginxSpec(read_timeout_s=0.5, limits={"req": True, "conn": True})  # type: ignore[arg-type]
                   ).conf.read_text()
    for line in (
        "proxy_read_timeout 500ms;",
        "proxy_send_timeout 60s;",
        "proxy_connect_timeout 5s;",
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "keepalive 4;",
        "limit_req zone=websocket burst=5 nodelay;",
        "rate=1r/s;",
        "rate=2r/s;",
        "rate=5r/s;",
        "limit_conn perip 5;",
        "limit_req_status 429;",
        "limit_conn_status 503;",
        "stub_status;",
        "error_log",
        "uct=$upstream_connect_time",
        "us=$upstream_status",
    ):
        assert line in conf, line
    assert "info;" in conf.split("error_log", 1)[1].splitlines()[0]


def test_a_broken_template_reports_nginx_s_message(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    good = (Path(__file__).resolve().parents[3] / "nginx" / "nginx.conf.j2").read_text()
    (templates / "nginx.conf.j2").write_text(
        good.replace("worker_connections {{", "worker_connectionz {{")
    )
    paths = _render(tmp_path, NginxSpec(), templates)
    with pytest.raises(NginxConfigError) as info:
        check_config(find_nginx(), paths.root, paths.conf, paths.error_log)
    assert 'unknown directive "worker_connectionz"' in info.value.nginx_message
    assert str(paths.conf) in str(info.value)


def test_missing_nginx_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.nginx import check

    monkeypatch.setattr(check, "_CANDIDATES", ())
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EnvironmentProblem, match=r"nginx is not installed.*nginx-light"):
        check.find_nginx()


def test_stub_status_parser() -> None:
    page = ("Active connections: 4 \nserver accepts handled requests\n 10 10 23 \n"
            "Reading: 0 Writing: 3 Waiting: 1 \n")
    st = parse(page)
    assert (st.active, st.accepts, st.handled, st.requests) == (4, 10, 10, 23)
    assert (st.reading, st.writing, st.waiting) == (0, 3, 1)
    with pytest.raises(ValueError, match="not an nginx stub_status page"):
        parse("<html>502 Bad Gateway</html>")


def test_a_template_error_names_the_template(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "nginx.conf.j2").write_text("events {}\n{{ s.no_such_setting }}\n")
    with pytest.raises(
        NginxConfigError, match=r"nginx.conf.j2:2: template error: .*no_such_setting"
    ):
        _render(tmp_path, NginxSpec(), templates)

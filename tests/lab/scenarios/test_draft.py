"""Drafting incident files from nginx logs (lab.scenarios.draft), on hand-written samples in
nginx 1.22's formats: error-log lines exactly as it prints them, access lines in the lab's
format and in nginx's ``combined``. Every draft must load as an incident file (both modes, both
profiles); the lab round trip (replay, draft from its logs, replay the draft) is in
scenarios/test_replay.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.checkers.nginx_logs import parse_access_line, parse_error_line
from lab.scenarios.draft import DraftError, analyse, draft, to_toml
from lab.scenarios.incident import load

START = [
    "2026/12/01 15:48:00 [notice] 4242#4242: using the \"epoll\" event method",
    "2026/12/01 15:48:00 [notice] 4242#4242: nginx/1.22.1",
    "2026/12/01 15:48:00 [notice] 4242#4242: start worker processes",
    "2026/12/01 15:48:00 [error] 4243#4243: *1 connect() failed (111: Connection refused) while "
    'connecting to upstream, client: 127.0.0.1, server: localhost, request: "GET /health '
    'HTTP/1.1", upstream: "http://127.0.0.1:8545/health", host: "127.0.0.1:18080"',
]
START_ACCESS = [
    '127.0.0.1:40100 [2026-12-01T15:48:00+00:00] "GET /health HTTP/1.1" 502 150 rt=0.000 uct=- '
    'uht=- urt=0.000 us=502 ua="Python/3.11 aiohttp/3.14.5" cid=1',
    '127.0.0.1:40102 [2026-12-01T15:48:01+00:00] "GET /health HTTP/1.1" 200 41 rt=0.002 '
    'uct=0.000 uht=0.002 urt=0.002 us=200 ua="Python/3.11 aiohttp/3.14.5" cid=3',
]


def ws_timeout(t: str, conn: int) -> str:
    return (f"2026/12/01 15:48:{t} [info] 4243#4243: *{conn} upstream timed out (110: Connection "
            "timed out) while proxying upgraded connection, client: 127.0.0.1, server: "
            'localhost, request: "GET /ws HTTP/1.1", upstream: "http://127.0.0.1:8546/ws", '
            'host: "127.0.0.1:18443"')


def ws_session(t: str, conn: int, rt: float) -> str:
    return (f'127.0.0.1:4{conn:04d} [2026-12-01T15:48:{t}+00:00] "GET /ws HTTP/1.1" 101 72 '
            f'rt={rt:.3f} uct=0.000 uht=0.002 urt={rt:.3f} us=101 '
            f'ua="Python/3.11 websockets/17.4" cid={conn}')


def loads(tmp_path: Path, data: dict[str, object]) -> None:
    """The draft is a valid incident file in every mode and profile."""
    path = tmp_path / "draft.toml"
    path.write_text(to_toml(data, sources=["error.log", "access.log"]))
    inc = load(path)
    for profile in ("fast", "full"):
        for mode in ("repro", "fixed"):
            inc.case(mode, profile)  # type: ignore[arg-type]


def test_parser_reads_both_access_formats_and_error_context() -> None:
    lab = parse_access_line(ws_session("12", 33, 1.502))
    assert lab is not None and lab.connection == 33 and lab.request_time == 1.502
    assert lab.when is not None and lab.when.isoformat() == "2026-12-01T15:48:12+00:00"
    combined = parse_access_line('203.0.113.7 - - [01/Dec/2026:15:48:12 +0100] "GET /ws '
                                 'HTTP/1.1" 503 197 "-" "Mozilla/5.0 (X11; Linux x86_64)"')
    assert combined is not None and combined.status == 503 and combined.path == "/ws"
    assert combined.request_time is None and combined.when is not None
    assert combined.when.utcoffset() is not None and combined.when.hour == 15
    e = parse_error_line(ws_timeout("12", 33))
    assert e is not None and e.connection == 33 and e.level == "info"
    assert e.what == ("upstream timed out (110: Connection timed out) while proxying upgraded "
                      "connection")
    assert e.fields["request"] == "GET /ws HTTP/1.1" and e.fields["host"] == "127.0.0.1:18443"
    assert e.when.second == 12


def test_websocket_timeouts_give_a_1006_draft(tmp_path: Path) -> None:
    errors = [*START, ws_timeout("05", 33), ws_timeout("05", 34), ws_timeout("06", 35)]
    access = [*START_ACCESS, ws_session("05", 33, 2.4), ws_session("05", 34, 2.9),
              ws_session("06", 35, 3.1), ws_session("09", 36, 1.1)]  # 36: closed by its client
    ev = analyse(errors, access)
    assert ev.finding("ws_upstream_timeout") is not None
    assert ev.finding("upstream_down") is None and ev.bursts == []  # start-up left out
    assert ev.startup_ignored == 2
    d = draft(ev, name="ws")
    assert d["workload"]["kind"] == "subscribers"
    assert d["lab"]["nginx"]["read_timeout_s"] == 1.5  # scaled down from ...
    assert d["full"]["lab"]["nginx"]["read_timeout_s"] == 2.4  # ... the shortest timed-out one
    assert d["lab"]["node"]["api"]["ws_ping_interval_s"] == 0
    assert d["symptoms"] == {"users.closes_1006": ">= 1", "nginx.ws_upstream_timeout": ">= 1"}
    assert d["fixed"]["lab"]["node"]["api"]["ws_ping_interval_s"] < 1.5
    notes = " ".join(d["notes"])
    assert "proxy_read_timeout is not in the logs: 2.4 s" in notes
    assert "start-up" in notes and "no WebSocket pings" in notes
    loads(tmp_path, d)


def test_combined_format_without_lengths_assumes_nginx_default(tmp_path: Path) -> None:
    errors = [ws_timeout("05", 33)]
    access = ['198.51.100.4 - - [01/Dec/2026:15:48:05 +0000] "GET /ws HTTP/1.1" 101 72 "-" '
              '"Mozilla/5.0"']
    d = draft(analyse(errors, access), name="ws-combined")
    assert d["full"]["lab"]["nginx"]["read_timeout_s"] == 60.0
    assert any("nginx's default, 60 s, assumed" in n for n in d["notes"])
    loads(tmp_path, d)


def test_limit_conn_gives_a_saturation_draft(tmp_path: Path) -> None:
    errors = [f"2026/12/01 15:48:05 [error] 4243#4243: *{20 + i} limiting connections by zone "
              '"perip", client: 127.0.0.1, server: localhost, request: "GET /ws HTTP/1.1", '
              'host: "127.0.0.1:16773"' for i in range(7)]
    access = [ws_session("09", 10 + i, 4.0 + i / 10) for i in range(5)]  # 5 held at once
    access += ['127.0.0.1:40200 [2026-12-01T15:48:05+00:00] "GET /ws HTTP/1.1" 503 197 '
               'rt=0.000 uct=- uht=- urt=- us=- ua="x" cid=21'] * 7
    d = draft(analyse(errors, access), name="conn")
    assert d["workload"]["kind"] == "saturation" and d["workload"]["surge"] == 10
    assert d["lab"]["nginx"]["limits"] == {"conn": True, "conn_per_ip": 5, "conn_status": 503}
    assert d["symptoms"] == {"surge.handshake.503": ">= 1", "nginx.limit_conn": ">= 1"}
    assert d["fixed"]["lab"]["nginx"]["limits"]["conn_per_ip"] == 10
    assert any("most WebSocket sessions one address held at once" in n for n in d["notes"])
    loads(tmp_path, d)


def test_limit_req_and_worker_connections(tmp_path: Path) -> None:
    req = [f"2026/12/01 15:48:08 [error] 4243#4243: *{41 + i} limiting requests, excess: 5.120 "
           'by zone "websocket", client: 127.0.0.1, server: localhost, request: "GET /ws '
           'HTTP/1.1"' for i in range(4)]
    access = ['127.0.0.1:40300 [2026-12-01T15:48:08+00:00] "GET /ws HTTP/1.1" 429 169 '
              'rt=0.000 uct=- uht=- urt=- us=- ua="x" cid=41'] * 4
    d = draft(analyse(req, access), name="req")
    assert d["lab"]["nginx"]["limits"] == {"req": True, "req_status": 429}
    assert d["symptoms"]["surge.handshake.429"] == ">= 1"
    assert any("limit_req's rate and burst are not in the logs" in n for n in d["notes"])
    loads(tmp_path, d)
    wc = ["2026/12/01 15:48:02 [warn] 23414#23414: 512 worker_connections are not enough, "
          "reusing connections"] + [
        f"2026/12/01 15:48:02 [alert] 23414#23414: *{63 + i} 512 worker_connections are not "
        'enough while connecting to upstream, client: 127.0.0.1, server: localhost, request: '
        '"GET /ws HTTP/1.1", upstream: "http://127.0.0.1:8546/ws", host: "127.0.0.1:18443"'
        for i in range(3)]
    d = draft(analyse(wc, []), name="wc")
    assert d["lab"]["nginx"] == {"worker_connections": 34, "keepalive": 0}
    assert d["full"]["lab"]["nginx"] == {"worker_connections": 512}
    assert d["workload"]["surge"] == 15 + 4 and d["full"]["workload"]["surge"] == 254 + 4
    assert d["symptoms"]["surge.handshake.500"] == ">= 1"
    loads(tmp_path, d)


def test_tls_errors_give_a_tls_draft(tmp_path: Path) -> None:
    errors = [
        "2026/12/01 18:46:13 [info] 23847#23847: *41 SSL_do_handshake() failed (SSL: "
        "error:0A000102:SSL routines::unsupported protocol) while SSL handshaking, client: "
        "127.0.0.1, server: 127.0.0.1:28979",
        "2026/12/01 18:46:14 [info] 23847#23847: *43 peer closed connection in SSL handshake "
        "while SSL handshaking, client: 127.0.0.1, server: 127.0.0.1:28979",
        "2026/12/01 18:46:15 [info] 23847#23847: *44 client sent plain HTTP request to HTTPS "
        "port while reading client request headers, client: 127.0.0.1, server: localhost, "
        'request: "GET /ws HTTP/1.1", host: "127.0.0.1:28979"',
        "2026/12/01 18:46:16 [info] 23847#23847: *45 SSL_do_handshake() failed (SSL: "
        "error:0A0000C1:SSL routines::no shared cipher) while SSL handshaking, client: "
        "127.0.0.1, server: 127.0.0.1:28979",
    ]
    d = draft(analyse(errors, []), name="tls")
    assert d["workload"]["kind"] == "tls"
    assert [a["name"] for a in d["workload"]["attempts"]] == ["modern", "verify", "plain"]
    assert d["lab"]["nginx"] == {"ssl_protocols": "TLSv1.2", "tls_cert": "expired"}
    assert d["fixed"]["lab"]["nginx"] == {"ssl_protocols": "TLSv1.2 TLSv1.3",
                                          "tls_cert": "valid"}
    notes = " ".join(d["notes"])
    assert "1 x 'no shared cipher'" in notes and "expired certificate" in notes
    loads(tmp_path, d)


def test_5xx_bursts_become_node_outages_and_slow_upstreams(tmp_path: Path) -> None:
    refused = ("2026/12/01 15:49:{:02d} [error] 4243#4243: *90 connect() failed (111: "
               "Connection refused) while connecting to upstream, client: 127.0.0.1, server: "
               'localhost, request: "GET /ws HTTP/1.1", upstream: "http://127.0.0.1:8546/ws"')
    errors = [*START, *(refused.format(s) for s in (10, 11, 12, 40, 41))]
    access = [*START_ACCESS]
    access += [f'127.0.0.1:40400 [2026-12-01T15:49:{s:02d}+00:00] "GET /ws HTTP/1.1" 502 150 '
               'rt=0.000 uct=- uht=- urt=0.000 us=502 ua="x" cid=90' for s in (10, 11, 12, 40, 41)]
    ev = analyse(errors, access)
    assert [(b.first, b.last, b.status) for b in ev.bursts] == [(70.0, 72.0, 502),
                                                                 (100.0, 101.0, 502)]
    d = draft(ev, name="outage")
    kinds = [(f["component"], f["action"], f["at_s"]) for f in d["timeline"]]
    assert kinds == [("node", "kill", 1.0), ("node", "start", 2.5), ("node", "kill", 4.0),
                     ("node", "start", 5.5)]
    assert [(f["action"], f["at_s"]) for f in d["full"]["timeline"]] == [
        ("kill", 5.0), ("start", 8.0), ("kill", 35.0), ("start", 37.0)]
    assert d["symptoms"] == {"users.handshake.502": ">= 1", "nginx.status.502": ">= 1"}
    assert d["workload"]["groups"][0]["reconnect"] is True
    assert d["fixed"]["workload"]["groups"][0].get("backfill", True) is True
    loads(tmp_path, d)
    timeout = ("2026/12/01 15:49:20 [error] 4243#4243: *95 upstream timed out (110: Connection "
               "timed out) while reading response header from upstream, client: 127.0.0.1, "
               'server: localhost, request: "POST / HTTP/1.1", upstream: "http://127.0.0.1:8545/"')
    d = draft(analyse([timeout], []), name="slow")
    [toxic] = d["timeline"]
    assert toxic["link"] == "nginx-node-rpc" and toxic["toxic"] == "latency"
    assert toxic["attributes"]["latency"] > d["lab"]["nginx"]["read_timeout_s"] * 1000
    assert d["workload"]["senders"] == 1 and d["symptoms"]["nginx.status.504"] == ">= 1"
    loads(tmp_path, d)


def test_nothing_to_draft() -> None:
    with pytest.raises(DraftError, match="nothing in these logs looks like an incident"):
        draft(analyse(START[:3], START_ACCESS[1:]))
    with pytest.raises(DraftError, match="0 error-log lines and 0 access-log lines"):
        draft(analyse(["garbage"], ["more garbage"]))


def test_the_draft_names_what_else_it_found(tmp_path: Path) -> None:
    errors = [ws_timeout("05", 33), ws_timeout("06", 34), ws_timeout("07", 35),
              "2026/12/01 15:48:08 [info] 4243#4243: *44 client sent plain HTTP request to "
              "HTTPS port while reading client request headers, client: 127.0.0.1"]
    d = draft(analyse(errors, []), name="mixed")
    assert d["workload"]["kind"] == "subscribers"
    assert any("not in this draft (another workload): plain_http_to_https" in n
               for n in d["notes"])
    text = to_toml(d)
    assert text.startswith("# Drafted by `dubhe-lab incident from-logs`")
    assert "# - drafted from nginx logs of 2026-12-01 15:48:05" in text
    loads(tmp_path, d)

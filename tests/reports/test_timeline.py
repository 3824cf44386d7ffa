"""The timeline view of one case (reports.timeline): what it reads from the histories, nginx's
error log and the proxy's events, and the page and figure it writes, on the fixture run's s01
incident case (a real record whose lab directory moved) and on hand-made inputs."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from reports.timeline import client_events, fault_rows, nginx_events, render

CASE = "scenarios/s01-idle-timeout-1006--incident"


def _local(t: float) -> str:
    return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(t))


def test_nginx_lines_are_grouped_per_second_and_kind() -> None:
    t0 = 1796142800.0
    lines = [
        f"{_local(t0)} [notice] 4242#4242: start worker processes",
        f"{_local(t0 + 1)} [info] 4243#4243: *17 upstream timed out (110: Connection timed out) "
        'while proxying upgraded connection, client: 127.0.0.1, server: localhost, request: '
        '"GET /ws HTTP/1.1", upstream: "http://127.0.0.1:26714/ws", host: "127.0.0.1:27134"',
        f"{_local(t0 + 1)} [info] 4243#4243: *19 upstream timed out (110: Connection timed out) "
        "while proxying upgraded connection, client: 127.0.0.1, server: localhost",
        f"{_local(t0 + 1)} [info] 4243#4243: *20 client 127.0.0.1 closed keepalive connection",
        f"{_local(t0 + 2)} [alert] 4243#4243: *40 34 worker_connections are not enough while "
        "connecting to upstream, client: 127.0.0.1, server: localhost",
        "not an nginx line",
    ]
    events = nginx_events(lines, origin=t0)
    assert [(e.t, e.label, e.width) for e in events] == [
        (1.0, "[info] ws upstream timeout x 2", 1.0),
        (2.0, "[alert] worker_connections", 1.0),
    ]


def test_client_events() -> None:
    history = [
        {"wall": 10.0, "client": "a-0", "ev": "connect", "attempt": 0},
        {"wall": 10.1, "client": "a-0", "ev": "handshake", "ok": False, "status": 503},
        {"wall": 10.5, "client": "a-0", "ev": "handshake", "ok": True, "status": 101},
        {"wall": 10.5, "client": "a-0", "ev": "open", "conn": 1},
        {"wall": 11.0, "client": "a-0", "ev": "close", "code": 1006.0, "by": "none"},
        {"wall": 11.2, "client": "a-0", "ev": "reconnected", "down_s": 0.2},
        {"wall": 12.0, "client": "a-0", "ev": "close", "code": 1000, "stop": True},
        {"wall": 12.1, "client": "a-0", "ev": "fatal", "message": "TLS: certificate has expired"},
        {"client": "a-0", "ev": "open"},  # no time: left out
    ]
    ev = client_events(history, origin=10.0)
    assert [e.what for e in ev] == ["handshake", "handshake_ok", "open", "close", "reconnect",
                                    "stop", "fatal"]
    close = ev[3]
    assert close.code == 1006 and close.label == "close 1006 by none" and close.t == 1.0


def test_fault_rows_end_open_faults_at_the_end() -> None:
    rows = fault_rows([{"fault": "x", "on": 5.0, "off": 7.0, "link": "client-edge",
                        "toxic": "reset_peer"},
                       {"fault": "kill node", "on": 6.0, "off": None, "component": "node",
                        "action": "kill"}], origin=4.0, end=10.0)
    assert rows == [("reset_peer on client-edge", 1.0, 3.0, False), ("kill node", 2.0, 6.0, True)]


def test_a_real_case_renders(tmp_path: Path) -> None:
    fixture = Path(__file__).with_name("fixtures") / "run"
    run = tmp_path / "run"
    shutil.copytree(fixture, run)
    case = run / CASE
    (case / "replay.json").write_text(json.dumps({"mode": "repro", "timeline": [],
                                                   "command": "dubhe-lab replay X --seed 3"}))
    t = render(case, run_dir=run)
    assert t.problems == []
    assert t.png is not None and t.png.stat().st_size > 10_000
    assert t.rows == 8  # naive 3, backfill 3, keepalive 2
    page = t.html.read_text()
    # the verdict in the replay's words, the expectations, nginx's line, the replay command
    assert "NOT reproduced" in page and "dubhe-lab replay X --seed 3" in page
    assert "naive.closes_1006" in page and "[info] ws upstream timeout" in page
    assert "close 1006 by none" in page


def test_an_unreadable_record_gives_a_page_saying_so(tmp_path: Path) -> None:
    (tmp_path / "result.json").write_text("{not json")
    t = render(tmp_path)
    assert t.png is None and t.problems and "result.json" in t.problems[0]
    assert "Could not use" in t.html.read_text()

"""Rendering a run directory from result files: every section, links into the lab's logs, plots,
and a visible error naming each missing or corrupt file while the rest still renders."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reports import trends
from reports.render import Rendered, render_run
from reports.run import load

CONFIG = trends.load_config()


class _Page(HTMLParser):
    """The bits of a page the tests look at: ids, image sources, links, table rows by id."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.images: list[str] = []
        self.links: list[str] = []
        self.rows: dict[str, int] = {}
        self._table: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "img":
            self.images.append(str(a.get("src")))
        if tag == "a" and a.get("href"):
            self.links.append(str(a["href"]))
        if tag == "table":
            self._table.append(str(a.get("id") or ""))
        if tag == "tr" and self._table and "data-ok" in a:
            self.rows[self._table[-1]] = self.rows.get(self._table[-1], 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._table:
            self._table.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: Path) -> _Page:
    p = _Page()
    p.feed(page.read_text())
    return p


def text_of(page: Path) -> str:
    return re.sub(r"\s+", " ", " ".join(parse(page).text))


def test_renders_every_section_from_the_fixture_run(rendered: Rendered) -> None:
    page = rendered.run.path / "report" / "index.html"
    assert rendered.page == page
    html = parse(page)
    for section in ("summary", "parts", "scenarios", "swarm", "scheduler", "benchmarks",
                    "properties", "mutation", "trends", "verdicts", "targets"):
        assert section in html.ids, section
    assert html.rows["verdicts"] == 2  # both s01 cases, each with its verdict
    text = text_of(page)
    assert "idle-timeout-1006/incident" in text and "FAIL" in text
    assert "backfill.reconnect_p99_s" in text and "<= 1" in text  # expectation vs observed
    assert "100.00 % (116/116 handshakes)" in text  # the swarm's connection success rate
    assert "1000: 20, 1006: 96" in text  # its close codes
    assert "node.scheduler" in text and "82.0 %" in text  # the mutation slot, filled
    # Every image the page shows exists beside it, and the promised plots are among them.
    for src in html.images:
        assert (page.parent / src).is_file(), src
    names = {Path(s).name for s in html.images}
    assert {"swarm-latency.png", "swarm-connections.png", "swarm-closes.png", "swarm-node.png",
            "scheduler.png", "scenario-reconnects.png", "scenario-closes.png"} <= names
    assert any(n.startswith("case-s01-idle-timeout-1006--incident") for n in names)


def test_benchmark_targets_show_verdicts_and_not_judged(rendered: Rendered) -> None:
    run_dir = rendered.run.path
    text = text_of(rendered.page)
    vm = json.loads((run_dir / "bench" / "vm.json").read_text())
    assert vm["targets"]["transfers_per_s"]["pass"] is False
    assert "transfers_per_s" in text and "MISS" in text and "PASS" in text
    assert "not judged" in text and "the target is stated at 64 clients" in text  # rpc


def test_component_logs_are_linked_and_sliced(rendered: Rendered) -> None:
    """The records name a lab directory that moved; the report finds it under <run>/labs and
    links both the case's slice (the recorded byte range) and the whole log."""
    run_dir, page = rendered.run.path, rendered.page
    links = parse(page).links
    record = json.loads((run_dir / "scenarios" / "s01-idle-timeout-1006--incident" /
                         "result.json").read_text())
    span = record["logs"]["nginx_error"]
    full = run_dir / "labs" / record["lab"]["run_id"] / span["path"]
    sliced = [ln for ln in links if ln.endswith("s01-idle-timeout-1006--incident/nginx_error.log")]
    assert sliced, links
    got = (page.parent / sliced[0]).read_bytes()
    assert got == full.read_bytes()[span["begin"]:span["end"]]
    assert "upstream timed out" in got.decode()
    assert any((page.parent / ln).resolve() == full.resolve() for ln in links)


def test_missing_and_corrupt_files_are_named_and_the_rest_renders(run_dir: Path) -> None:
    (run_dir / "bench" / "loader.json").write_text('{"bench": "loader", "version": 1, "fig')
    record = run_dir / "scenarios" / "s01-idle-timeout-1006--fix-server-ping" / "result.json"
    record.write_text(record.read_text()[:200])
    (run_dir / "swarm" / "node-metrics.csv").unlink()  # optional: not a problem
    r = render_run(run_dir, config=CONFIG)
    lines = {p.line() for p in r.problems}
    assert "bench/lab.json: missing (no such file)" in lines  # bench-lab timed out
    assert any(ln.startswith("bench/loader.json: corrupt: not JSON") for ln in lines)
    assert any(ln.startswith("scenarios/s01-idle-timeout-1006--fix-server-ping/result.json: "
                             "corrupt: not JSON") for ln in lines)
    assert len(lines) == 3, lines
    page = run_dir / "report" / "index.html"
    html = parse(page)
    text = text_of(page)
    assert "problems" in html.ids
    assert "Result files that could not be used" in text
    assert "written by part bench-lab: timeout; see logs/bench-lab.log" in text
    # each file is also named in its own section, and that section still shows the rest
    assert text.count("bench/loader.json") >= 2 and "UNREADABLE" in text
    assert html.rows["verdicts"] == 2  # the readable case, and the unreadable one as a row
    assert "swarm-latency.png" in {Path(s).name for s in html.images}
    assert "swarm-node.png" not in {Path(s).name for s in html.images}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["summary"]["problems"] == 3
    assert metrics["values"]["scenario.idle-timeout-1006/fix-server-ping.pass"] == 0.0


def test_a_newer_record_version_is_refused_by_name(run_dir: Path) -> None:
    path = run_dir / "scenarios" / "s01-idle-timeout-1006--incident" / "result.json"
    record = json.loads(path.read_text())
    record["version"] = 2
    del record["summary"]
    path.write_text(json.dumps(record))
    run = load(run_dir)
    assert run.scenarios is not None
    assert [c.name for c in run.scenarios.cases] == ["idle-timeout-1006/fix-server-ping"]
    assert run.scenarios.unreadable == [("idle-timeout-1006/incident", path.relative_to(
        run_dir).as_posix())]
    (problem,) = [p for p in run.problems if "incident" in p.file]
    assert problem.message == ("not a v1 result record: summary: missing; version: 2 is newer "
                               "than this reader (1)")


def test_a_directory_without_parts_json_expects_nothing(run_dir: Path) -> None:
    (run_dir / "parts.json").unlink()
    (run_dir / "bench" / "vm.json").unlink()
    run = load(run_dir)
    assert list(run.problems) == []  # nothing was promised, so nothing is missing
    assert run.mode == "manual" and run.scenarios is not None and len(run.benches) == 6


def test_the_index_lists_the_run_and_rerendering_keeps_the_same_files(rendered: Rendered
                                                                       ) -> None:
    assert rendered.index is not None
    html = parse(rendered.index)
    assert "run-table" in html.ids and html.rows["run-table"] == 1
    assert "20261201-163300-quick/report/index.html" in html.links
    images = sorted(p.name for p in (rendered.page.parent / "img").iterdir())
    assert images == sorted(Path(s).name for s in parse(rendered.page).images)


def test_mutation_scores_show_the_gate_the_survivors_and_the_previous_runs(run_dir: Path
                                                                         ) -> None:
    """lab.mutation's result file: the score without message-only mutants against its
    minimum, every mutant's score beside it, each survivor as file:line and change, and the
    score of the same target in the previous run of the same mode (its trend)."""
    before = run_dir.parent / "20261130-163300-quick"
    before.mkdir()
    (before / "metrics.json").write_text(json.dumps({
        "version": 1, "id": before.name, "mode": "quick", "started": 1796142790.0 - 86400,
        "values": {"mutation.node.rpc.jsonrpc.score_excluding_messages": 0.61}}))
    (run_dir / "mutation" / "node.core.block.json").write_text(json.dumps({
        "version": 1, "name": "node.core.block", "module": "node/core/block.py",
        "mutants": 91, "killed": 0, "survived": 0, "not_checked": 91, "score": None,
        "score_excluding_messages": None, "min_score": 0.85, "passed": None, "complete": False,
        "error": "mutmut exited 1: failed to collect stats", "survivors": []}))
    r = render_run(run_dir, config=CONFIG, index=False)
    text = text_of(r.page)
    assert "node.rpc.jsonrpc 94.7 % 90.8 % 216 22 238 12 90.0 % PASS 61.0 % +33.7" in text
    # a target mutmut could not run has no score (not 0 %) and says why
    assert "node.core.block 0 0 91 85.0 % error" in text
    assert "mutmut exited 1: failed to collect stats" in text
    assert "node/rpc/jsonrpc.py:119 parse if len(obj) > max_batch: -> if len(obj) >= max_batch:" \
        in text
    assert "survived (message)" in text
    assert "Hypothesis profile mutation" in text
    assert "node.scheduler 82.0 %" in text  # a plain score file still reads
    values = json.loads((run_dir / "metrics.json").read_text())["values"]
    assert values["mutation.node.rpc.jsonrpc.score_excluding_messages"] == pytest.approx(0.947,
                                                                                        abs=1e-3)


@pytest.mark.parametrize("bad", ["[1, 2]", "", "\xff\xfe"])
def test_parts_json_that_is_not_an_object_is_a_problem(run_dir: Path, bad: str) -> None:
    (run_dir / "parts.json").write_bytes(bad.encode("latin-1"))
    run = load(run_dir)
    assert [p.file for p in run.problems] == ["parts.json"]
    assert run.parts == [] and run.scenarios is not None

"""Regression detection on synthetic histories: a real regression is flagged, noise within the
metric's spread is not, and the rules decide what is judged and which way is better."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from reports import trends
from reports.trends import (
    Config,
    ConfigError,
    Rule,
    compare,
    judge,
    parse_config,
    small_sample_factor,
    spread_of,
)

# A latency with ~5 % noise: median 100 ms, robust spread ~5 ms.
NOISY = [100.0, 104.0, 97.0, 103.0, 95.0, 101.0, 106.0, 98.0, 102.0, 96.0]


def test_a_real_regression_is_flagged() -> None:
    j = judge("p99_ms", 150.0, NOISY, direction="lower", rel=0.10)
    assert j.verdict == "regression"
    assert j.center == pytest.approx(100.5)
    assert j.allowed == pytest.approx(3 * spread_of(NOISY) * small_sample_factor(10))
    assert "150 vs median 100.5 of 10 runs" in j.why()


def test_noise_within_the_spread_is_not_flagged_even_beyond_the_threshold() -> None:
    """112 ms is 11 % over the median (beyond a 10 % threshold), and one previous run was 106:
    it is inside the metric's noise band (3 spreads ~ 13 ms), so it is not a regression."""
    j = judge("p99_ms", 112.0, NOISY, direction="lower", rel=0.10)
    assert j.verdict == "ok"
    assert j.change is not None and j.change > 0.10
    assert j.allowed is not None and j.allowed > 112 - j.center
    assert judge("p99_ms", 120.0, NOISY, direction="lower").verdict == "regression"


@pytest.mark.parametrize("n", [3, 5, 10, 20])
def test_unchanged_noisy_metrics_are_rarely_flagged_whatever_the_history_length(n: int) -> None:
    """Nights drawn from the same distribution as their history (a fresh history each time,
    Gaussian, 5 % noise, threshold 1 %: the noise band decides): the share flagged stays near
    the nominal 0.13 % of k = 3 for short and long histories alike (seeded: exact counts)."""
    rng = random.Random(n)
    nights = 4000
    flagged = sum(judge("m", rng.gauss(100, 5), [rng.gauss(100, 5) for _ in range(n)],
                        direction="lower", rel=0.01).verdict == "regression"
                  for _ in range(nights))
    assert flagged / nights < 0.004


@pytest.mark.parametrize(("n", "shift"), [(5, 100.0), (10, 60.0), (20, 50.0)])
def test_a_shift_of_many_spreads_is_flagged_every_time(n: int, shift: float) -> None:
    """The price of a short history: a shift always caught on a metric with 5 % noise is
    +100 % with 5 previous runs, +60 % with 10, +50 % with 20 (+30 % is caught 39 %, 88 % and
    98 % of the time)."""
    rng = random.Random(8)
    assert all(judge("m", rng.gauss(100 + shift, 5), [rng.gauss(100, 5) for _ in range(n)],
                     direction="lower").verdict == "regression" for _ in range(300))


def test_a_threshold_keeps_a_quiet_metric_from_flagging_tiny_changes() -> None:
    """A metric that never moved (spread 0) is judged by its threshold alone."""
    flat = [1000.0] * 5
    assert judge("tps", 950.0, flat, direction="higher", rel=0.10).verdict == "ok"
    assert judge("tps", 850.0, flat, direction="higher", rel=0.10).verdict == "regression"
    assert judge("tps", 1200.0, flat, direction="higher", rel=0.10).verdict == "improvement"


def test_direction_decides_what_is_worse() -> None:
    assert judge("tps", 50.0, NOISY, direction="higher").verdict == "regression"
    assert judge("ms", 50.0, NOISY, direction="lower").verdict == "improvement"


def test_one_outlier_in_the_history_does_not_move_the_center() -> None:
    """The center is the median: after one bad night (300 among 100s) a normal 100 is not an
    "improvement", and 500 is still a regression. (The outlier does widen the band while it is
    in the window: fewer alarms, never more.)"""
    history = [100.0, 101.0, 99.0, 100.0, 300.0, 100.0, 102.0]
    assert judge("ms", 100.0, history, direction="lower").verdict == "ok"
    assert judge("ms", 500.0, history, direction="lower").verdict == "regression"


def test_a_case_that_always_passed_and_now_fails_is_flagged_a_flaky_one_is_not() -> None:
    always = [1.0] * 6
    assert judge("scenario.x.pass", 0.0, always, direction="higher",
                 abs_=0.5).verdict == "regression"
    flaky = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    assert judge("scenario.x.pass", 0.0, flaky, direction="higher",
                 abs_=0.5).verdict == "ok"


def test_a_count_that_was_always_zero_is_flagged_when_it_appears() -> None:
    assert judge("missed", 1.0, [0.0] * 4, direction="lower", abs_=0.5).verdict == "regression"
    assert judge("missed", 0.0, [0.0] * 4, direction="lower", abs_=0.5).verdict == "ok"


def test_short_or_no_history_is_shown_not_judged() -> None:
    assert judge("m", 500.0, [], direction="lower").verdict == "new"
    assert judge("m", 500.0, [100.0, 100.0], direction="lower", min_history=3).verdict == \
        "insufficient"
    assert judge("m", None, NOISY, direction="lower").verdict == "missing"


def test_compare_uses_the_window_rules_and_file_directions() -> None:
    cfg = Config(window=3, min_history=3, rules=(
        Rule("ignored.*", ignore=True),
        Rule("lat.*", direction="lower", rel=0.1),
        Rule("bench.*", rel=0.1),  # no direction: only from the files
    ))
    old = [{"lat.p99": 500.0}] * 5  # outside the window of 3
    recent = [{"lat.p99": 100.0, "bench.x.tps": 1000.0, "bench.x.other": 1.0,
               "ignored.a": 1.0, "unmatched": 1.0}] * 3
    current = {"lat.p99": 130.0, "bench.x.tps": 500.0, "bench.x.other": 9.0, "ignored.a": 9.0,
               "unmatched": 9.0}
    out = compare(current, old + recent, cfg, {"bench.x.tps": "higher"})
    verdicts = {j.metric: j.verdict for j in out}
    assert verdicts == {"lat.p99": "regression", "bench.x.tps": "regression"}
    assert [len(j.history) for j in out] == [3, 3]


def test_a_metric_that_disappears_is_reported_missing_not_a_regression() -> None:
    cfg = Config(rules=(Rule("*", direction="lower"),))
    out = compare({}, [{"gone": 1.0}] * 4, cfg)
    assert [(j.metric, j.verdict) for j in out] == [("gone", "missing")]


def test_the_shipped_rules_parse_and_route_metrics() -> None:
    cfg = trends.load_config()
    assert cfg.window == 10 and cfg.min_history == 3

    def direction(metric: str) -> str | None:
        rule = cfg.rule_for(metric)
        assert rule is not None, metric
        return None if rule.ignore else rule.direction

    assert direction("scenario.idle-timeout-1006/incident.pass") == "higher"
    assert direction("scenario.1006-storm/storm.backfill.missed") == "lower"
    assert direction("scenario.1006-storm/storm.backfill.closes_1006") is None  # ignored
    assert direction("swarm.notify_p99_ms") == "lower"
    assert direction("bench.vm.hash_loop_native_minsn_per_s") == "higher"  # not "_s" = seconds
    assert direction("bench.lab.ready_node_s") == "lower"
    assert direction("bench.rpc.node_p99_ms_c16") == "lower"
    assert direction("bench.scheduler.vm.p2p-1000.AptosBlockSTM/threads.w2.tps") == "higher"
    assert direction("bench.latency.ratio_p99") is None  # a target would give it


def test_bad_rules_are_refused_naming_every_key_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"window": 0, "colour": 1, "metric": [
            {"match": "a", "direction": "up"}, {"direction": "lower", "rell": 1},
            {"match": "b", "rel": -1}]}, "t.toml")
    msg = str(e.value)
    for part in ("t.toml: ", "colour: unknown key", "metric[0].direction: 'lower' or 'higher'",
                 "metric[1].rell: unknown key", "metric[1].match: missing",
                 "metric[2].rel: must be >= 0", "window: must be at least 1"):
        assert part in msg, part
    bad = tmp_path / "r.toml"
    bad.write_text("window = [")
    with pytest.raises(ConfigError, match=r"r\.toml: not TOML"):
        trends.load_config(bad)
    with pytest.raises(ConfigError, match="window: must be at least 1"):
        trends.load_config(window=0)

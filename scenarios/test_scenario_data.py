"""Scenario files: every shipped one loads in both profiles, and bad data is refused with the
file and the dotted key named (no lab needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.scenarios.model import (
    PROFILES,
    ScenarioError,
    all_cases,
    cases,
    parse_condition,
    scenario_files,
)

GOOD = '''
name = "x"
number = 99
description = "d"
incident = "i"
fix = "f"
lab = { l1 = [] }
[[variants]]
name = "v"
workload = "subscribers"
params = { duration_s = 1, groups = [{ name = "g" }] }
[variants.expect.fix]
"g.missed" = "== 0"
'''


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "x.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("profile", PROFILES)
def test_every_shipped_scenario_loads(profile: str) -> None:
    files = scenario_files()
    assert files, "no scenario files found"
    loaded = [cases(f, profile) for f in files]
    numbers = [cs[0].scenario.number for cs in loaded if cs]
    assert len(numbers) == len(set(numbers)), f"scenario numbers repeat: {numbers}"
    assert all(f.name.startswith(f"{n:02d}-") for f, n in zip(files, numbers, strict=False))


def test_a_good_file_loads(tmp_path: Path) -> None:
    [case] = cases(write(tmp_path, GOOD), "fast")
    assert case.id == "s99-x/v" and case.spec.l1 == ()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ('workload = "subscribers"', 'workload = "subscriber"'),
            "variants[0].workload: unknown workload 'subscriber', did you mean 'subscribers'?",
        ),
        (
            ('"g.missed" = "== 0"', '"g.mised" = "== 0"'),
            "variants[0].expect.fix.g.mised: unknown figure for workload 'subscribers'",
        ),
        (
            ('"g.missed" = "== 0"', '"g.missed" = "zero"'),
            "variants[0].expect.fix.g.missed: not a condition: 'zero'",
        ),
        (
            ("duration_s = 1,", "duration_s = -1,"),
            "variants[0].params.duration_s: Input should be greater than 0",
        ),
        (
            ('groups = [{ name = "g" }]', 'groups = [{ name = "g", cuont = 2 }]'),
            "variants[0].params.groups.0.cuont: unknown key",
        ),
        (
            ("lab = { l1 = [] }", "lab = { nginx = { read_timout_s = 1 } }"),
            "nginx.read_timout_s: unknown key, did you mean read_timeout_s?",
        ),
        (
            ('name = "v"', 'name = "v"\nfaults = [{ link = "client-edge" }]'),
            "variants[0].faults[0].toxic: required with link",
        ),
        (
            ('name = "v"', 'name = "v"\nprofiles = ["fault-profiles/nope.toml"]'),
            "variants[0].profiles[0]: no such fault profile",
        ),
        (('incident = "i"', ""), "incident: required"),
        (("number = 99", "number = 99\nnumbr = 1"), "numbr: unknown key"),
        (("[variants.expect.fix]", "[variants.expect.fixed]"), "variants.0.expect.fixed"),
    ],
)
def test_bad_data_names_file_and_key(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    path = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(ScenarioError) as info:
        cases(path, "fast")
    assert str(info.value).startswith(str(path) + ": ")
    assert message in str(info.value)


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"x\.toml: \(file\): not valid TOML"):
        cases(write(tmp_path, "name = "), "fast")


def test_unknown_scenario_names_are_listed() -> None:
    with pytest.raises(
        ScenarioError, match=r"--scenario: nope: unknown scenario \(known: s01 idle-timeout-1006"
    ):
        all_cases("fast", only=["nope"])
    assert {c.scenario.number for c in all_cases("fast", only=["s01"])} == {1}


def test_conditions() -> None:
    assert parse_condition(">= 3").holds(3) and not parse_condition(">= 3").holds(2)
    assert parse_condition("in [1, 2]").holds(1.5) and not parse_condition("in [1, 2]").holds(
        float("nan")
    )
    assert not parse_condition("== 0").holds(None)
    with pytest.raises(ValueError):
        parse_condition("in [2, 1]")


def test_a_fault_that_never_fired_fails_with_that_reason(tmp_path: Path) -> None:
    from lab.scenarios.runner import summary

    text = GOOD + '[variants.signals]\n"proxy.ws_cut" = "the upstream cut fired"\n'
    [case] = cases(write(tmp_path, text), "fast")
    figures = {"g.missed": 0}
    exps = case.expectations(figures)
    never = [e for e in exps if not e.ok]
    assert [(e.phase, e.detail) for e in never] == [
        ("fault", "never fired: the upstream cut fired")
    ]
    line, _ = summary(case, figures, exps, None)
    assert "fault never fired: proxy.ws_cut" in line
    assert all(e.ok for e in case.expectations({"g.missed": 0, "proxy.ws_cut": 3}))



def test_an_unknown_scenario_name_stops_pytest() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "scenarios/test_incidents.py", "--scenario", "nope", "--collect-only"],
                         cwd=root, capture_output=True, text=True, timeout=120)
    assert run.returncode == 4, run.stdout + run.stderr
    assert "--scenario: nope: unknown scenario (known: s01 idle-timeout-1006" in run.stderr
    assert "Traceback" not in run.stderr

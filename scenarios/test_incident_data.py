"""Incident files (``scenarios/incidents/*.toml``): every shipped one loads in both modes and
profiles, bad data is refused naming the file and the dotted key where the bad value is written,
and the same seed gives the same fault timeline (no lab needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.scenarios.incident import (
    MODES,
    TimelineEntry,
    incident_files,
    load,
    resolve_timeline,
)
from lab.scenarios.model import PROFILES, ScenarioError

GOOD = '''
name = "x"
description = "d"
incident = "i"
fix = "f"
seed = 7
lab = { l1 = [] }
[workload]
kind = "subscribers"
duration_s = 1
groups = [{ name = "g", reconnect = false }]
[[timeline]]
at_s = 0.5
for_s = 1
link = "client-edge-tls"
toxic = "reset_peer"
[symptoms]
"g.closes" = ">= 1"
[slo]
"g.missed" = "== 0"
[fixed]
description = "reconnect"
workload = { groups = [{ name = "g" }] }
'''


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "x.toml"
    p.write_text(text)
    return p


def test_every_shipped_incident_loads_in_every_mode_and_profile() -> None:
    files = incident_files()
    assert {f.stem for f in files} >= {"1006-upstream-timeout", "connection-saturation",
                                       "tls-handshake-failures", "l1-outage"}
    for f in files:
        inc = load(f)
        assert inc.name == f.stem, f"{f}: name must be the file's stem"
        for profile in PROFILES:
            repro, fixed = (inc.case(m, profile) for m in MODES)
            assert repro.id == f"incident-{inc.name}/repro" and "incident" in repro.expect
            assert fixed.id == f"incident-{inc.name}/fixed" and "fix" in fixed.expect
            assert repro.spec.seed == fixed.spec.seed == inc.data.seed
            # the fix changes something: the lab, the workload or the timeline
            assert (repro.spec.model_copy(update={"name": ""})
                    != fixed.spec.model_copy(update={"name": ""})
                    or repro.variant.params != fixed.variant.params
                    or repro.faults != fixed.faults), f"{f}: [fixed] changes nothing"


def test_a_good_file_maps_onto_scenario_cases(tmp_path: Path) -> None:
    inc = load(write(tmp_path, GOOD))
    repro = inc.case("repro")
    fixed = inc.case("fixed", seed=99)
    assert repro.variant.workload == "subscribers" and repro.params.groups[0].reconnect is False
    assert fixed.params.groups[0].reconnect is True  # [fixed] overlays the workload
    assert [f.label() for f in repro.faults] == ["reset_peer-downstream"]
    assert fixed.spec.seed == 99 and repro.spec.seed == 7 and repro.spec.l1 == ()
    assert set(repro.expect["incident"]) == {"g.closes"} and set(fixed.expect["fix"]) == {
        "g.missed"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('seed = 7', 'seed = 7\nsede = 1'), "sede: unknown key"),
        (('seed = 7', 'seed = "7"'), "seed: Input should be a valid integer"),
        (('description = "d"\n', ''), "description: required"),
        (('kind = "subscribers"', 'kind = "subscriber"'),
         "workload.kind: unknown workload 'subscriber', did you mean 'subscribers'?"),
        (('kind = "subscribers"\n', ''), "workload.kind: required"),
        (('duration_s = 1', 'duration_s = -1'),
         "workload.duration_s: Input should be greater than 0"),
        (('workload = { groups = [{ name = "g" }] }',
          'workload = { groups = [{ name = "g", cuont = 2 }] }'),
         "fixed.workload.groups[0].cuont: unknown key"),
        (('[fixed]\n', '[fixed]\nlab = { nginx = { read_timout_s = 1 } }\n'),
         "fixed.lab.nginx.read_timout_s: unknown key, did you mean read_timeout_s?"),
        (('lab = { l1 = [] }', 'lab = { l1 = [], blocktime = 3 }'), "lab.blocktime: unknown key"),
        (('"g.closes" = ">= 1"', '"g.clozes" = ">= 1"'),
         "symptoms.g.clozes: unknown figure for workload 'subscribers'"),
        (('"g.missed" = "== 0"', '"g.missed" = "none"'), "slo.g.missed: not a condition: 'none'"),
        (('toxic = "reset_peer"\n', ''), "timeline[0].toxic: required with link"),
        (('at_s = 0.5', 'at_s = 0.5\nrepeat = 3'), "timeline[0].every_s: required with repeat > 1"),
        (('at_s = 0.5', 'at_s = "soon"'), "timeline[0].at_s: Input should be a valid number"),
        (('[slo]', '[full]\nsymptoms = { "g.nope" = ">= 1" }\n[slo]'),
         "full.symptoms.g.nope: unknown figure"),
        (('[slo]', '[full.workload]\nduration_s = 0\n[slo]'),
         "full.workload.duration_s: Input should be greater than 0"),
        (('[fixed]\n', '[fixed]\nsignals = { "proxy.nope" = "x", "g.nope" = "y" }\n'),
         "fixed.signals.g.nope: unknown figure"),
        (('description = "reconnect"', 'descriptin = "reconnect"'),
         "fixed.descriptin: unknown key"),
        (('[slo]\n"g.missed" = "== 0"\n', ''), "slo: required"),
    ],
)
def test_bad_data_names_file_and_key(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    assert edit[0] in GOOD
    path = write(tmp_path, GOOD.replace(*edit, 1))
    with pytest.raises(ScenarioError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value), str(info.value)


def test_every_problem_at_once(tmp_path: Path) -> None:
    text = GOOD.replace('"g.closes" = ">= 1"', '"g.clozes" = ">= 1"').replace(
        '"g.missed" = "== 0"', '"g.mised" = "== 0"')
    with pytest.raises(ScenarioError) as info:
        load(write(tmp_path, text))
    keys = [k for k, _ in info.value.problems]
    assert "symptoms.g.clozes" in keys and "slo.g.mised" in keys


@pytest.mark.parametrize("text", ["name = ", "\x00"])
def test_not_toml(tmp_path: Path, text: str) -> None:
    with pytest.raises(ScenarioError, match=r"x\.toml: \(file\): not valid TOML"):
        load(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"nope\.toml: \(file\): no such file"):
        load(tmp_path / "nope.toml")


def test_the_same_seed_gives_the_same_timeline() -> None:
    entries = [TimelineEntry(at_s=1, for_s=0.5, link="nginx-node-ws", toxic="ws_cut",
                             repeat=5, every_s=2, jitter_s=0.8, name="cut"),
               TimelineEntry(at_s=3, component="node", action="kill-restart")]
    a, b = resolve_timeline(entries, 42), resolve_timeline(entries, 42)
    assert a == b and len(a) == 6
    assert resolve_timeline(entries, 43) != a  # the jitter moved
    cuts = [f for f in a if f.link]
    assert [f.name for f in sorted(cuts, key=lambda f: f.name or "")] == [
        f"cut-{i}" for i in range(1, 6)]
    for i, f in enumerate(sorted(cuts, key=lambda f: f.name or "")):
        assert abs(f.at_s - (1 + 2 * i)) <= 0.8 and f.at_s >= 0
    assert [f.at_s for f in a] == sorted(f.at_s for f in a)
    # without jitter the seed does not matter
    plain = [TimelineEntry(at_s=1, for_s=1, link="client-edge", toxic="latency")]
    assert resolve_timeline(plain, 1) == resolve_timeline(plain, 2)


def test_the_seed_reaches_the_lab_and_the_timeline(tmp_path: Path) -> None:
    text = GOOD.replace("at_s = 0.5", "at_s = 2\njitter_s = 1.5")
    inc = load(write(tmp_path, text))
    assert inc.case("repro", seed=5).faults == inc.case("repro", seed=5).faults
    assert inc.case("repro", seed=5).faults != inc.case("repro", seed=6).faults
    assert inc.case("repro", seed=5).spec.seed == 5

"""LabSpec: defaults, overlays, and errors that name the dotted key."""

from __future__ import annotations

import pytest

from lab.orchestrate import LabSpec, SpecError, spec_from_dict
from lab.orchestrate.spec import derive_seed


def test_defaults_describe_the_full_lab() -> None:
    spec = LabSpec()
    assert [l1.chain for l1 in spec.l1] == ["eth", "sui"]
    assert (
        spec.nginx.enabled and spec.nginx.read_timeout_s == 60 and spec.nginx.connect_timeout_s == 5
    )
    assert not spec.nginx.limits.req and not spec.nginx.limits.conn
    assert spec.nginx.limits.ws_rate == "1r/s" and spec.nginx.limits.conn_per_ip == 5
    assert spec.proxy.toxiproxy_url is None


def test_overlay_merges_tables_key_by_key() -> None:
    spec = LabSpec().overlay({"nginx": {"read_timeout_s": 3, "limits": {"conn": True}},
                              "node": {"scheduler": {"strategy": "AptosBlockSTM"}}})
    assert spec.nginx.read_timeout_s == 3
    assert spec.nginx.limits.conn and not spec.nginx.limits.req
    assert spec.nginx.send_timeout_s == 60  # untouched keys keep their values
    assert spec.node == {"scheduler": {"strategy": "AptosBlockSTM"}}


def test_l1_list_from_plain_data() -> None:
    spec = spec_from_dict({"l1": [{"chain": "eth", "endpoints": 2}]})
    assert len(spec.l1) == 1 and spec.l1[0].endpoints == 2


@pytest.mark.parametrize(("data", "key", "fragment"), [
    ({"nginx": {"read_timout_s": 3}}, "nginx.read_timout_s", "did you mean read_timeout_s?"),
    ({"colour": 1}, "colour", "unknown key"),
    ({"nginx": {"read_timeout_s": "3"}}, "nginx.read_timeout_s", "got '3'"),
    ({"nginx": {"read_timeout_s": 0}}, "nginx.read_timeout_s", "greater than 0"),
    ({"nginx": {"limits": {"ws_rate": "fast"}}}, "nginx.limits.ws_rate", "pattern"),
    ({"nginx": {"tls_cert": "shiny"}}, "nginx.tls_cert", "'valid'"),
    ({"l1": [{"chain": "btc"}]}, "l1.0.chain", "'eth'"),
    ({"l1": [{"chain": "eth"}, {"chain": "eth"}]}, "(root)", "each chain"),
    ({"node": {"nodez": {}}}, "(root)", "node.nodez: unknown node config section"),
    ({"proxy": {"toxiproxy_url": "http://10.0.0.1:8474"}}, "proxy.toxiproxy_url", "pattern"),
])
def test_errors_name_the_dotted_key(data: dict[str, object], key: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        spec_from_dict(data, "s.toml")
    keys = dict(info.value.problems)
    assert key in keys, info.value.problems
    assert fragment in keys[key]
    assert str(info.value).startswith("s.toml: ")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SpecError) as info:
        spec_from_dict({"seed": -1, "block_time_ms": 1, "nginx": {"keepalive": -1}})
    assert {k for k, _ in info.value.problems} == {"seed", "block_time_ms", "nginx.keepalive"}


def test_component_seeds_are_stable_and_distinct() -> None:
    assert derive_seed(7, "proxy") == derive_seed(7, "proxy")
    assert derive_seed(7, "proxy") != derive_seed(7, "l1-eth") != derive_seed(8, "l1-eth")
    assert derive_seed(7, "proxy") == 1519278864  # sha256("7/proxy")[:4]: same on every machine

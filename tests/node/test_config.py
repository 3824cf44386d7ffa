"""Config: defaults, every error at once with dotted keys and expected types, the validator CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from node import config
from node.core.errors import ConfigError


def test_defaults_match_the_seed() -> None:
    c = config.load(None)
    assert c.api.rpc_bind == "127.0.0.1:8545"
    assert c.api.ws_bind == "127.0.0.1:8546"
    assert c.api.grpc_bind == "127.0.0.1:9090"
    assert c.api.max_connections == 1000 and c.api.request_timeout_ms == 30_000
    assert c.scheduler.strategy == "Serial"
    assert c.state.backend == "rocksdb" and c.state.path == "./data"
    assert c.adapters.ethereum is None and c.adapters.sui is None


def test_seed_example_is_valid(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text(
        """
[api]
rpc_bind = "127.0.0.1:8545"
grpc_bind = "127.0.0.1:9090"
ws_bind = "127.0.0.1:8546"
max_connections = 1000
request_timeout_ms = 30000

[adapters.ethereum]
rpc_url = "http://127.0.0.1:18545"
ws_url = "ws://127.0.0.1:18546"
chain_id = 1
endpoints = [{ rpc_url = "http://127.0.0.1:28545" }]

[adapters.sui]
rpc_url = "http://127.0.0.1:19000"
network_type = "Testnet"
package_ids = ["0x1", "0x2"]

[scheduler]
worker_threads = 8
strategy = "SolanaParallel"

[vm]
default_vm = "CkbVM"
max_instances = 100
"""
    )
    c = config.load(p)
    assert c.adapters.ethereum is not None and c.adapters.ethereum.endpoints[0].rpc_url.endswith(
        "28545"
    )
    assert c.adapters.sui is not None and c.adapters.sui.network_type == "Testnet"
    assert c.scheduler.worker_threads == 8


def test_every_error_reported_with_dotted_key() -> None:
    with pytest.raises(ConfigError) as e:
        config.from_dict(
            {
                "api": {"rpc_bind": 8545, "max_connections": "many", "bogus": 1},
                "scheduler": {"strategy": "Fast"},
                "adapters": {"ethereum": {"rpc_url": "http://127.0.0.1:1"}},
                "nonsense": {},
            }
        )
    errs = dict(e.value.errors)
    assert errs["api.rpc_bind"] == "expected a string, got int 8545"
    assert errs["api.max_connections"].startswith("expected an integer")
    assert errs["api.bogus"].startswith("unknown key; known keys here: rpc_bind, ws_bind")
    assert "SolanaParallel" in errs["scheduler.strategy"]
    assert errs["adapters.ethereum.chain_id"] == (
        "required key is missing (the L1's expected eth_chainId)")
    assert errs["nonsense"].startswith("unknown key; known keys here: api, adapters, scheduler")
    assert len(errs) == 6


@pytest.mark.parametrize(
    ("section", "values", "key"),
    [
        ("api", {"rpc_bind": "nohost"}, "api.rpc_bind"),
        ("api", {"ws_bind": "127.0.0.1:99999"}, "api.ws_bind"),
        ("node", {"genesis_balances": {"0x12": 1}}, 'node.genesis_balances."0x12"'),
        ("state", {"backend": "postgres"}, "state.backend"),
        ("api", {"max_connections": 0}, "api.max_connections"),
    ],
)
def test_value_errors(section: str, values: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        config.from_dict({section: values})
    assert [k for k, _ in e.value.errors] == [key]


def _validate_argv(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c",
         "from node.config import validate_main; raise SystemExit(validate_main())", *argv],
        capture_output=True, text=True, check=False, timeout=60,
    )


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return _validate_argv(str(path))


def test_validate_cli(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[scheduler]\nstrategy = "Serial"\n')
    r = _validate(good)
    assert (r.returncode, r.stdout.strip()) == (0, "ok")
    bad = tmp_path / "bad.toml"
    bad.write_text('[api]\nmax_connections = "x"\nextra = 1\n')
    r = _validate(bad)
    assert r.returncode == 1
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{bad}: api.") for line in lines)
    broken = tmp_path / "broken.toml"
    broken.write_text("[api\n")
    r = _validate(broken)
    assert r.returncode == 1 and "(syntax)" in r.stdout
    r = _validate(tmp_path / "missing.toml")
    assert r.returncode == 1 and "no such file" in r.stdout
    r = _validate(tmp_path)
    assert r.returncode == 1
    assert r.stdout == f"{tmp_path}: (file): is a directory, not a TOML file\n"
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[logging]\nlevel = "\xc9"\n')
    r = _validate(latin1)
    assert r.returncode == 1 and "not UTF-8 text (byte 19" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_validate_cli_takes_several_files(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("")
    bad = tmp_path / "bad.toml"
    bad.write_text("[api]\nmax_batch = 0\n")
    r = _validate_argv(str(good), str(bad))
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        f"{good}: ok", f"{bad}: api.max_batch: 0 is out of range: the longest JSON-RPC batch, "
        "an integer >= 1"]


def test_shipped_config_toml_is_valid_and_equals_the_defaults() -> None:
    shipped = config.load(Path(__file__).resolve().parents[2] / "config.toml")
    assert shipped == config.Config()


def test_config_md_documents_every_key() -> None:
    doc = (Path(__file__).resolve().parents[2] / "CONFIG.md").read_text()

    def walk(model: type, prefix: str) -> list[str]:
        out = []
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            ann = field.annotation
            inner = [
                a
                for a in getattr(ann, "__args__", (ann,))
                if isinstance(a, type) and hasattr(a, "model_fields")
            ]
            if inner:
                out += walk(inner[0], f"{prefix}{name}.")
            else:
                out.append(f"{prefix}{name}")
        return out

    missing = [k for k in walk(config.Config, "") if f"`{k.rsplit('.', 1)[-1]}`" not in doc]
    assert not missing, f"CONFIG.md does not document: {missing}"


def test_config_choices_are_the_schedulers_names() -> None:
    """``[scheduler] strategy`` and ``substrate`` accept exactly what the registry builds."""
    from typing import get_args

    from node.scheduler import registry, substrate

    assert set(get_args(config.Strategy)) == set(registry.STRATEGIES)
    assert (
        get_args(config.SchedulerConfig.model_fields["substrate"].annotation)
        == substrate.SUBSTRATES
    )


def test_validator_help_exits_0() -> None:
    for argv in (["--help"], ["-h"], ["--help", "x.toml"]):
        r = _validate_argv(*argv)
        assert r.returncode == 0 and r.stdout.startswith("usage: dubhe-config-validate"), argv
    r = _validate_argv()
    assert r.returncode == 2 and "FILE" in r.stderr


def _errors(data: dict[str, object]) -> dict[str, str]:
    with pytest.raises(ConfigError) as e:
        config.from_dict(data)
    return dict(e.value.errors)


def test_unknown_key_suggests_and_lists_the_known_ones() -> None:
    errs = _errors({"api": {"max_bach": 3}, "sheduler": {}, "scheduler": {"worker": 2}})
    assert errs["api.max_bach"].startswith("unknown key; did you mean 'max_batch'? known keys "
                                           "here: rpc_bind, ws_bind, grpc_bind, max_connections")
    assert errs["sheduler"].startswith("unknown key; did you mean 'scheduler'? known keys here: "
                                       "api, adapters, scheduler, vm, state, node, security")
    assert "did you mean 'worker_threads'?" in errs["scheduler.worker"]
    nested = _errors({"adapters": {"ethereum": {"rpc_url": "http://127.0.0.1:1", "chain_id": 1,
                                                "backoff": {"max": 5}}}})
    assert "known keys here: initial_ms, max_ms, factor" in nested["adapters.ethereum.backoff.max"]


def test_range_errors_say_what_the_key_means_and_its_range() -> None:
    errs = _errors({"api": {"rate_limit_per_s": 0, "max_connections": 0},
                    "scheduler": {"worker_threads": 999}, "node": {"block_time_ms": 5}})
    assert errs == {
        "api.rate_limit_per_s": "0 is out of range: the requests per second each connection may "
        "send, a number > 0",
        "api.max_connections": "0 is out of range: the most concurrent WebSocket connections, an "
        "integer in 1..1,000,000",
        "scheduler.worker_threads": "999 is out of range: the parallel strategies' workers, an "
        "integer in 1..256",
        "node.block_time_ms": "5 is out of range: the block period, in ms, an integer >= 10",
    }
    assert not any("Input should" in m for m in errs.values())


def test_every_constrained_key_has_a_meaning() -> None:
    """The range messages need a meaning for each key (MEANINGS), whatever key is added."""
    def walk(model: type[BaseModel], where: str) -> list[str]:
        out = []
        for name, info in model.model_fields.items():
            sub = config._model_of(info.annotation)
            if sub is not None:
                out += walk(sub, f"{where}{name}.")
            if not config._meaning(model, name).startswith("'"):
                continue
            out.append(f"{where}{name}")
        return out

    missing = walk(config.Config, "")
    assert not missing, f"add what these keys mean to node.config.MEANINGS: {missing}"


def test_every_bad_genesis_balance_is_reported() -> None:
    good = "0x" + "11" * 20
    errs = _errors({"node": {"genesis_balances": {"0x12": 1, good: -1, "0xzz" + "00" * 19: 5,
                                                  "0x" + "22" * 20: 2**64}}})
    assert sorted(errs) == sorted([
        'node.genesis_balances."0x12"', f'node.genesis_balances."{good}"',
        f'node.genesis_balances."0xzz{"00" * 19}"', f'node.genesis_balances."0x{"22" * 20}"'])
    assert errs[f'node.genesis_balances."{good}"'] == (
        "-1 is out of range: a genesis balance (native-token amount), an integer in 0..2**64-1")


@pytest.mark.parametrize(
    ("key", "value"),
    [("rpc_url", "not a url"), ("rpc_url", "ws://127.0.0.1:1"), ("rpc_url", "http://"),
     ("ws_url", "http://127.0.0.1:1"), ("rpc_url", "http://127.0.0.1:99999")],
)
def test_l1_urls_are_checked(key: str, value: str) -> None:
    eth: dict[str, object] = {"rpc_url": "http://127.0.0.1:1", "chain_id": 1337, key: value}
    errs = _errors({"adapters": {"ethereum": eth, "sui": {**eth, "chain_id": None} | {
        "endpoints": [{"rpc_url": "http://127.0.0.1:2", key: value}]}}})
    assert f"adapters.ethereum.{key}" in errs
    assert f"adapters.sui.endpoints[0].{key}" in errs
    assert "URL" in errs[f"adapters.ethereum.{key}"] or "port" in errs[f"adapters.ethereum.{key}"]


def test_unwritable_paths_name_their_key(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    cfg = config.from_dict({"state": {"path": str(a_file / "data")},
                            "security": {"audit_log": str(tmp_path)}})
    with pytest.raises(ConfigError) as e:
        config.check_paths(cfg)
    errs = dict(e.value.errors)
    assert errs["state.path"].endswith(f"{a_file} is not a directory")
    assert errs["security.audit_log"].endswith("is a directory, not a file")
    ro = config.from_dict({"state": {"path": "/proc/dubhe-data"},
                           "security": {"audit_log": str(tmp_path / "new" / "audit.jsonl")}})
    with pytest.raises(ConfigError) as e:
        config.check_paths(ro)
    assert [k for k, _ in e.value.errors] == ["state.path"]
    assert "cannot create files in /proc" in e.value.errors[0][1]
    # memory state: state.path is not used, so not checked
    config.check_paths(config.from_dict({"state": {"backend": "memory", "path": "/proc/x"},
                                         "security": {"audit_log": ""}}))


def test_relative_paths_resolve_against_the_working_directory(tmp_path: Path) -> None:
    """``./data`` in a config means the node's working directory, not the file's directory:
    the validator checks (and names) the path as the node in this directory would use it."""
    conf_dir, run_dir = tmp_path / "conf", tmp_path / "run"
    conf_dir.mkdir()
    run_dir.mkdir()
    cfg_file = conf_dir / "c.toml"
    cfg_file.write_text('[state]\npath = "sub/file/data"\n[security]\naudit_log = ""\n')
    (run_dir / "sub").mkdir()
    (run_dir / "sub" / "file").write_text("")
    r = subprocess.run([sys.executable, "-c",
                        "from node.config import validate_main; raise SystemExit(validate_main())",
                        str(cfg_file)], cwd=run_dir, capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 1
    assert f"state.path: 'sub/file/data' ({run_dir}/sub/file/data): {run_dir}/sub/file is not" in (
        r.stdout)
    r = subprocess.run(r.args, cwd=conf_dir, capture_output=True, text=True, timeout=60,
                       check=False)
    assert (r.returncode, r.stdout) == (0, "ok\n")

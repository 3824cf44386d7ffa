"""Config: defaults, every error at once with dotted keys and expected types, the validator CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
    assert errs["api.bogus"] == "unknown key"
    assert "SolanaParallel" in errs["scheduler.strategy"]
    assert errs["adapters.ethereum.chain_id"] == "required key is missing"
    assert errs["nonsense"] == "unknown key"
    assert len(errs) == 6


@pytest.mark.parametrize(
    ("section", "values", "key"),
    [
        ("api", {"rpc_bind": "nohost"}, "api.rpc_bind"),
        ("api", {"ws_bind": "127.0.0.1:99999"}, "api.ws_bind"),
        ("node", {"genesis_balances": {"0x12": 1}}, "node.genesis_balances"),
        ("state", {"backend": "postgres"}, "state.backend"),
        ("api", {"max_connections": 0}, "api.max_connections"),
    ],
)
def test_value_errors(section: str, values: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        config.from_dict({section: values})
    assert [k for k, _ in e.value.errors] == [key]


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from node.config import validate_main; raise SystemExit(validate_main())",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


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
    assert config.validate_main(["--help"]) == 0
    assert config.validate_main([]) == 2

"""The SDK venvs of scripts/sdk_venvs.py for tests: built on first use (from PyPI), then kept."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sdk_venvs", ROOT / "scripts" / "sdk_venvs.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def sdk_python(name: str) -> Path:
    """The python of SDK ``name``'s venv; the test fails (naming pip's error) when it cannot be
    installed: a missing SDK is a finding, not a reason to skip."""
    try:
        path: Path = _module().ensure(name)
    except RuntimeError as e:
        pytest.fail(str(e))
    return path

"""Throwaway virtualenvs holding third-party SDKs that the tests drive against the mock L1s.

Each ``scripts/sdk/<name>.txt`` is a pip requirements file; its venv is ``.venv/sdk/<name>``,
kept while the file is unchanged (a stamp holds the file's hash) and rebuilt from PyPI otherwise.
They are separate because the SDKs conflict with each other (pysui 0.99 and 1.5 are the same
distribution) and with nothing in the project: no SDK is installed into the project's venv.

    python scripts/sdk_venvs.py             # build (or keep) every SDK venv; print their pythons
    python scripts/sdk_venvs.py pysui-0.99  # just that one

Exit status 1 naming the SDK and pip's last lines when an install fails.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "scripts" / "sdk"
HOME = ROOT / ".venv" / "sdk"


def names() -> list[str]:
    """The SDKs there are requirements for."""
    return sorted(p.stem for p in SPECS.glob("*.txt"))


def python_of(name: str) -> Path:
    return HOME / name / "bin" / "python"


def ensure(name: str) -> Path:
    """The python of SDK ``name``'s venv, built first when missing or stale; raises
    ``RuntimeError`` with pip's output when the install fails (nothing half-built is kept)."""
    spec = SPECS / f"{name}.txt"
    if not spec.is_file():
        raise RuntimeError(f"unknown SDK {name!r}: no {spec.relative_to(ROOT)} "
                           f"(known: {', '.join(names())})")
    digest = hashlib.sha1(spec.read_bytes()).hexdigest()[:12]
    home = HOME / name
    stamp = home / f".installed-{digest}"
    if stamp.exists():
        return python_of(name)
    shutil.rmtree(home, ignore_errors=True)
    print(f"sdk_venvs: building {home.relative_to(ROOT)} from {spec.relative_to(ROOT)}",
          file=sys.stderr, flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    done = subprocess.run(
        [str(python_of(name)), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-r", str(spec)], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"installing SDK {name} ({spec.relative_to(ROOT)}) failed:\n{tail}")
    stamp.touch()
    return python_of(name)


def main(argv: list[str]) -> int:
    wanted = argv or names()
    rc = 0
    for name in wanted:
        try:
            print(ensure(name))
        except RuntimeError as e:
            print(f"sdk_venvs: {e}", file=sys.stderr)
            rc = 1
    return rc


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Find the nginx binary and run ``nginx -t`` on a rendered config."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from lab.orchestrate.errors import EnvironmentProblem, NginxConfigError

#: Debian installs nginx in /usr/sbin, which is not on a normal user's PATH.
_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


def find_nginx() -> str:
    """The nginx executable; :class:`EnvironmentProblem` naming the package if there is none."""
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in _CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    raise EnvironmentProblem(
        "nginx is not installed (looked on PATH and in /usr/sbin): install the Debian package "
        "nginx-light (make setup does it as root), or run the lab without nginx")


def argv(nginx: str, prefix: Path, conf: Path, error_log: Path) -> list[str]:
    """nginx's command line for a run: prefix, config and early error log all in the run dir."""
    return [nginx, "-p", f"{prefix}/", "-c", str(conf), "-e", str(error_log)]


def check_config(nginx: str, prefix: Path, conf: Path, error_log: Path,
                timeout_s: float = 20.0) -> None:
    """``nginx -t``; raises :class:`NginxConfigError` with nginx's own message on refusal."""
    try:
        done = subprocess.run([*argv(nginx, prefix, conf, error_log), "-t", "-q"],
                              capture_output=True, text=True, timeout=timeout_s, check=False)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot run {nginx}: {exc.strerror or exc}") from None
    except subprocess.TimeoutExpired:
        raise NginxConfigError(str(conf), f"nginx -t did not finish within {timeout_s} s") from None
    if done.returncode != 0:
        lines = [line.removeprefix("nginx: ").strip()
                 for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        message = "; ".join(line for line in lines if "test failed" not in line) or \
            f"nginx -t exited with {done.returncode}"
        raise NginxConfigError(str(conf), message)

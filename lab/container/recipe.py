"""What the lab's two images are made of, as data, and the hashes that name them.

Two images, each tagged and labelled (``dubhe.inputs``) with a hash of everything it is built
from, so an unchanged image is never rebuilt and a changed input always is:

* ``dubhe/lab-base:<hash>`` — a minimal Debian root file system of the host's release (so that
  wheels the host downloads install inside it) with Python, nginx and the tools the container
  faults need, made by ``mmdebstrap`` and imported (no registry, nothing pulled). Inputs: the
  suite, the package list, the mmdebstrap options and :data:`RECIPE_VERSION`.
* ``dubhe/lab:<hash>`` — the base plus a virtual environment in ``/opt/venv`` holding exactly
  the Python distributions this checkout runs with (:func:`locked_requirements`: the project's
  runtime dependencies and the ``fast`` extra, at the versions installed here). Inputs: the
  base's hash, that lock and the recipe version.

The project's own source is never copied into an image: containers bind-mount it read-only, so
code changes need no rebuild. Nothing here does I/O beyond reading this checkout and the local
package metadata; :mod:`lab.container.images` builds.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

#: The repository (the folder holding ``lab/`` and ``node/``): bind-mounted into containers.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: Bump when the way images are built changes (not their inputs).
RECIPE_VERSION = "1"

BASE_REPO = "dubhe/lab-base"
LAB_REPO = "dubhe/lab"

#: Label carrying an image's input hash; ``dubhe.image`` says which image it is.
INPUTS_LABEL = "dubhe.inputs"
KIND_LABEL = "dubhe.image"

#: Debian packages of the base image: the interpreter (and venv for /opt/venv), nginx, iproute2
#: and iptables (network faults inside a container's namespace), curl (Compose health checks).
BASE_PACKAGES = ("python3", "python3-venv", "nginx-light", "iproute2", "iptables",
                 "ca-certificates", "curl")

#: mmdebstrap options besides the package list: no docs, man pages or locales; no host
#: resolv.conf/hostname baked in (the engine provides both).
MMDEBSTRAP_OPTIONS = (
    "--variant=minbase",
    "--dpkgopt=force-unsafe-io",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    '--customize-hook=rm -f "$1/etc/resolv.conf" "$1/etc/hostname"',
)

#: Where the lab image keeps its interpreter; first on PATH, so a component's ``python`` is it.
VENV = "/opt/venv"
IMAGE_PATH = f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Wheel platforms pip may pick for the image (glibc 2.36 in bookworm; every manylinux tag down
#: to the oldest, since some projects publish only old tags).
WHEEL_PLATFORMS = (*(f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)),
                   "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64")

#: The project's requirement groups that run inside containers (the components import these).
RUNTIME_EXTRAS = ("fast",)


def host_debian() -> tuple[str, str]:
    """(suite, apt sources argument for mmdebstrap) of this host: its release and its own apt
    sources file, so the image uses exactly the mirror apt uses here. Defaults to bookworm on the
    public mirror for a host that is not Debian."""
    suite = "bookworm"
    try:
        fields = dict(line.split("=", 1) for line in
                      Path("/etc/os-release").read_text().splitlines() if "=" in line)
        if fields.get("ID", "").strip('"') == "debian" and fields.get("VERSION_CODENAME"):
            suite = fields["VERSION_CODENAME"].strip('"')
    except OSError:
        pass
    for candidate in (Path("/etc/apt/sources.list.d/debian.sources"),
                      Path("/etc/apt/sources.list")):
        if candidate.is_file() and candidate.stat().st_size > 0:
            return suite, str(candidate)
    return suite, "http://deb.debian.org/debian"


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project_requirements(pyproject: Path) -> list[str]:
    data = tomllib.loads(pyproject.read_text())
    project = data["project"]
    reqs = list(project.get("dependencies", []))
    for extra in RUNTIME_EXTRAS:
        reqs += project.get("optional-dependencies", {}).get(extra, [])
    return reqs


class LockError(Exception):
    """A runtime requirement of the project is not installed here (so no version to lock)."""


def locked_requirements(pyproject: Path | None = None) -> list[str]:
    """``name==version`` for every distribution the components need, transitively, at the
    versions installed in this environment (sorted; the project itself excluded).

    The top-level requirements come from ``pyproject.toml`` (``dependencies`` plus the
    :data:`RUNTIME_EXTRAS`); markers are evaluated for this interpreter, which matches the
    image's (CPython 3.11 on Linux x86_64)."""
    from packaging.requirements import Requirement

    pending = [Requirement(r) for r in _project_requirements(pyproject or
                                                               PROJECT_ROOT / "pyproject.toml")]
    pins: dict[str, str] = {}
    while pending:
        req = pending.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = _canonical(req.name)
        if name in pins:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise LockError(f"{req.name} (required by the lab's components) is not installed "
                            "here; run 'make setup'") from None
        pins[name] = f"{dist.metadata['Name']}=={dist.version}"
        for sub in dist.requires or []:
            subreq = Requirement(sub)
            wanted_extras = req.extras
            if subreq.marker is not None:
                envs = [{"extra": e} for e in wanted_extras] or [{"extra": ""}]
                if not any(subreq.marker.evaluate(env) for env in envs):
                    continue
                subreq.marker = None
            pending.append(subreq)
    return [pins[k] for k in sorted(pins)]


@dataclass(frozen=True)
class ImageRecipe:
    """The two images' inputs and the tags derived from them."""

    suite: str
    sources: str
    packages: tuple[str, ...]
    lock: tuple[str, ...]

    @classmethod
    def for_host(cls) -> ImageRecipe:
        suite, sources = host_debian()
        return cls(suite, sources, BASE_PACKAGES, tuple(locked_requirements()))

    @property
    def base_inputs(self) -> str:
        return _digest({"recipe": RECIPE_VERSION, "suite": self.suite,
                        "packages": sorted(self.packages), "options": MMDEBSTRAP_OPTIONS})

    @property
    def lab_inputs(self) -> str:
        return _digest({"recipe": RECIPE_VERSION, "base": self.base_inputs,
                        "lock": list(self.lock), "venv": VENV, "platforms": WHEEL_PLATFORMS})

    @property
    def base_tag(self) -> str:
        return f"{BASE_REPO}:{self.base_inputs[:16]}"

    @property
    def lab_tag(self) -> str:
        return f"{LAB_REPO}:{self.lab_inputs[:16]}"

    def mmdebstrap_argv(self) -> list[str]:
        """The base image's root file system as a tarball on stdout."""
        return ["mmdebstrap", *MMDEBSTRAP_OPTIONS, f"--include={','.join(self.packages)}",
                self.suite, "-", self.sources]

    def requirements_text(self) -> str:
        return "".join(f"{line}\n" for line in self.lock)

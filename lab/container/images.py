"""Building the lab's images offline: ``make images`` / ``dubhe-lab images``.

There is no registry: the base image is a Debian root file system made by ``mmdebstrap`` and
streamed into the engine (``docker import``); the lab image is the base plus wheels that ``pip
download`` fetched on the host, installed in a container with no network and committed. See
:mod:`lab.container.recipe` for what goes in and how the tags are named.

* Warm (both tags exist with the labels of the current inputs): nothing is built; it costs two
  image inspections.
* A build never leaves a half image under a final tag: each image is made under a temporary
  ``incoming-*`` tag and retagged only when every step succeeded; the temporary image and build
  container are removed on any failure, and leftovers of a killed build are removed by the next.
* Builds on one machine are serialised by a lock file (several worktrees share one engine);
  whoever waits re-checks the tags first and usually finds the images built.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lab.container import engine
from lab.container.recipe import (
    BASE_REPO,
    IMAGE_PATH,
    INPUTS_LABEL,
    KIND_LABEL,
    LAB_REPO,
    PROJECT_ROOT,
    VENV,
    WHEEL_PLATFORMS,
    ImageRecipe,
    LockError,
)
from lab.orchestrate.errors import EnvironmentProblem

Progress = Callable[[str], None]

#: Serialises builds on this machine (every worktree and test session shares the engine).
LOCK_FILE = Path(os.environ.get("DUBHE_IMAGES_LOCK", "/tmp/dubhe-lab-images.lock"))
#: Label of a build container (removed by the next build if a build was killed).
BUILD_LABEL = "dubhe.build"
WHEELS_ROOT = PROJECT_ROOT / "build" / "container"


class ImageError(EnvironmentProblem):
    """An image could not be built (one line: which image, which step, what it said)."""


@dataclass
class ImagesResult:
    base: str
    lab: str
    built: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def warm(self) -> bool:
        return not self.built


def _quiet(_: str) -> None:
    pass


@contextlib.contextmanager
def _ticker(progress: Progress, what: str, every_s: float = 10.0) -> Iterator[None]:
    """Say ``what`` and how long it has taken every ``every_s`` seconds until the block ends."""
    stop = threading.Event()
    t0 = time.monotonic()

    def tick() -> None:
        while not stop.wait(every_s):
            progress(f"   ... {what}: {time.monotonic() - t0:.0f} s")

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def _machine_lock(progress: Progress) -> Iterator[None]:
    with open(LOCK_FILE, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"   waiting for another image build on this machine ({LOCK_FILE})")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def image_current(client: Any, tag: str, inputs: str) -> bool:
    """Does ``tag`` exist with the label of these inputs?"""
    import docker

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return bool((image.labels or {}).get(INPUTS_LABEL) == inputs)


def _remove_leftovers(client: Any, progress: Progress) -> None:
    """Build containers and ``incoming-*`` images a killed build left (we hold the lock)."""
    import docker

    for container in client.containers.list(all=True, filters={"label": BUILD_LABEL}):
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)
            progress(f"   removed the build container {container.name} a killed build left")
    for repo in (BASE_REPO, LAB_REPO):
        for image in client.images.list(name=repo):
            for tag in image.tags:
                if tag.split(":", 1)[1].startswith("incoming-"):
                    with contextlib.suppress(docker.errors.APIError):
                        client.images.remove(tag, force=True)
                        progress(f"   removed the half-built image {tag}")


def _retag(client: Any, incoming: str, final: str) -> None:
    repo, tag = final.split(":", 1)
    client.images.get(incoming).tag(repo, tag)
    client.images.remove(incoming)  # only the temporary name: the final tag keeps the image


class _CountingReader:
    """A file-like view of a pipe that counts the bytes read (for progress)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        return data


def build_base(client: Any, recipe: ImageRecipe, progress: Progress) -> None:
    """mmdebstrap | docker import, under a temporary tag, retagged on success."""
    import docker

    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise ImageError("cannot build the base image: mmdebstrap is not installed (Debian "
                         "package mmdebstrap; 'make setup' installs it as root)")
    incoming = f"{BASE_REPO}:incoming-{secrets.token_hex(4)}"
    progress(f"== base image {recipe.base_tag}: mmdebstrap {recipe.suite} "
             f"({len(recipe.packages)} packages from {recipe.sources}) | docker import; "
             "about a minute")
    t0 = time.monotonic()
    proc = subprocess.Popen([mmdebstrap, *recipe.mmdebstrap_argv()[1:]], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stderr is not None
    errors: list[str] = []

    def read_stderr(stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            errors.append(line)
            if line.startswith("I: ") and "tempdir" not in line:
                progress(f"   {time.monotonic() - t0:5.1f} s  {line[3:]}")

    reader_thread = threading.Thread(target=read_stderr, args=(proc.stderr,), daemon=True)
    reader_thread.start()
    tar = _CountingReader(proc.stdout)
    imported, import_error = False, ""
    try:
        with _ticker(progress, "building the base image"):
            repo, tag = incoming.split(":", 1)
            try:
                client.api.import_image_from_stream(
                    tar, repository=repo, tag=tag,
                    changes=[f"LABEL {INPUTS_LABEL}={recipe.base_inputs}",
                             f"LABEL {KIND_LABEL}=base", "ENV LANG=C.UTF-8",
                             f"ENV PATH={IMAGE_PATH}"])
                imported = True
            except docker.errors.APIError as exc:
                import_error = str(exc.explanation or exc)
            rc = proc.wait()
            reader_thread.join(5)
        if rc != 0:
            last = next((e for e in reversed(errors) if e.startswith("E:")),
                        errors[-1] if errors else "")
            raise ImageError(f"base image: mmdebstrap exited with {rc}: {last[:300]}")
        if not imported:
            raise ImageError(f"base image: docker import failed: {import_error[:300]}")
        _retag(client, incoming, recipe.base_tag)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(incoming, force=True)
    progress(f"   base image built in {time.monotonic() - t0:.1f} s "
             f"({tar.count / 1e6:.0f} MB imported)")


def download_wheels(recipe: ImageRecipe, progress: Progress) -> Path:
    """The wheels of the lock for the image's platform, downloaded once per lock (reused)."""
    dest = WHEELS_ROOT / f"wheels-{recipe.lab_inputs[:16]}"
    if (dest / ".complete").exists():
        return dest
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "requirements.txt").write_text(recipe.requirements_text())
    progress(f"   pip download: {len(recipe.lock)} wheels for cp311 manylinux x86_64")
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--only-binary=:all:", "--no-deps", "--python-version", "3.11",
            "--implementation", "cp", "-d", str(tmp), "-r", str(tmp / "requirements.txt")]
    for platform in WHEEL_PLATFORMS:
        argv += ["--platform", platform]
    t0 = time.monotonic()
    with _ticker(progress, "downloading wheels"):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        last = next((line for line in reversed(lines) if "ERROR" in line),
                    lines[-1] if lines else f"exit {done.returncode}")
        raise ImageError(f"lab image: pip download failed: {last.strip()[:300]}")
    (tmp / ".complete").write_text("")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    progress(f"   {len(recipe.lock)} wheels in {time.monotonic() - t0:.1f} s")
    return dest


def build_lab(client: Any, recipe: ImageRecipe, progress: Progress) -> None:
    """Base + /opt/venv with the locked wheels (installed with no network), committed."""
    import docker

    progress(f"== lab image {recipe.lab_tag}: {recipe.base_tag} + {VENV} "
             f"({len(recipe.lock)} locked distributions)")
    t0 = time.monotonic()
    wheels = download_wheels(recipe, progress)
    token = secrets.token_hex(4)
    incoming = f"{LAB_REPO}:incoming-{token}"
    script = (f"python3 -m venv {VENV} && {VENV}/bin/pip install --quiet --no-index "
              "--find-links /wheels -r /wheels/requirements.txt")
    container = client.containers.create(
        recipe.base_tag, command=["sh", "-c", script], name=f"dubhe-build-{token}",
        network_mode="none", labels={BUILD_LABEL: token},
        volumes={str(wheels): {"bind": "/wheels", "mode": "ro"}},
        environment={"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1"})
    try:
        progress(f"   installing into {VENV} in a container with no network")
        with _ticker(progress, "installing the wheels"):
            container.start()
            rc = int(container.wait()["StatusCode"])
        if rc != 0:
            out = container.logs().decode(errors="replace").strip().splitlines()
            raise ImageError(f"lab image: pip install exited with {rc}: "
                             f"{(out[-1] if out else '')[:300]}")
        repo, tag = incoming.split(":", 1)
        container.commit(repository=repo, tag=tag, changes=[
            f"ENV PATH={IMAGE_PATH}", f"ENV VIRTUAL_ENV={VENV}",
            f"LABEL {INPUTS_LABEL}={recipe.lab_inputs}", f"LABEL {KIND_LABEL}=lab",
            f"LABEL dubhe.base={recipe.base_tag}", 'CMD ["python"]'])
        _retag(client, incoming, recipe.lab_tag)
    finally:
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(incoming, force=True)
    progress(f"   lab image built in {time.monotonic() - t0:.1f} s")


def ensure_images(client: Any | None = None, *, progress: Progress = _quiet, force: bool = False,
                  recipe: ImageRecipe | None = None) -> ImagesResult:
    """Make sure the base and lab images of the current inputs exist; build what is missing.

    Returns the tags and what was built. Raises :class:`ImageError` or
    :class:`~lab.orchestrate.errors.EnvironmentProblem` (one line) on failure."""
    t0 = time.monotonic()
    if recipe is None:
        try:
            recipe = ImageRecipe.for_host()
        except LockError as exc:
            raise ImageError(f"cannot lock the lab image's requirements: {exc}") from None
    own = client is None
    client = client or engine.connect()
    try:
        result = ImagesResult(recipe.base_tag, recipe.lab_tag)
        if not force and image_current(client, recipe.lab_tag, recipe.lab_inputs) \
                and image_current(client, recipe.base_tag, recipe.base_inputs):
            result.seconds = time.monotonic() - t0
            return result
        with _machine_lock(progress):
            _remove_leftovers(client, progress)
            if force or not image_current(client, recipe.base_tag, recipe.base_inputs):
                build_base(client, recipe, progress)
                result.built.append(recipe.base_tag)
            if force or not image_current(client, recipe.lab_tag, recipe.lab_inputs):
                build_lab(client, recipe, progress)
                result.built.append(recipe.lab_tag)
        result.seconds = time.monotonic() - t0
        return result
    finally:
        if own:
            client.close()


def main(argv: list[str] | None = None) -> int:
    """``dubhe-lab images``: build the lab's images if their inputs changed."""
    ap = argparse.ArgumentParser(prog="dubhe-lab images", description=main.__doc__)
    ap.add_argument("--force", action="store_true", help="rebuild both images")
    ap.add_argument("--check", action="store_true",
                    help="only say whether the images are current (exit 1 if not)")
    args = ap.parse_args(argv)

    def say(msg: str) -> None:
        print(msg, flush=True)

    if args.check:
        recipe = ImageRecipe.for_host()
        client = engine.connect()
        try:
            ok = all(image_current(client, tag, inputs) for tag, inputs in (
                (recipe.base_tag, recipe.base_inputs), (recipe.lab_tag, recipe.lab_inputs)))
        finally:
            client.close()
        say(f"images {recipe.base_tag} {recipe.lab_tag}: {'current' if ok else 'missing'}")
        return 0 if ok else 1
    result = ensure_images(progress=say, force=args.force)
    state = (f"built {', '.join(result.built)}" if result.built else "current, nothing built")
    say(f"== images {result.base} and {result.lab}: {state} ({result.seconds:.2f} s)")
    return 0

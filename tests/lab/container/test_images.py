"""The lab's images: labelled with their inputs, never rebuilt when unchanged, never left half
built under a final tag, and a one-line error when no engine answers."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from docker_helpers import client

from lab.container.images import BUILD_LABEL, WHEELS_ROOT, ImageError, ensure_images
from lab.container.recipe import BASE_REPO, INPUTS_LABEL, KIND_LABEL, LAB_REPO, ImageRecipe

CLI = [sys.executable, "-m", "lab"]


def _no_leftovers(tags: list[str]) -> None:
    c = client()
    try:
        present = {t for repo in (BASE_REPO, LAB_REPO) for img in c.images.list(name=repo)
                   for t in img.tags}
        assert not set(tags) & present
        assert not [t for t in present if ":incoming-" in t]
        assert not c.api.containers(all=True, filters={"label": BUILD_LABEL})
    finally:
        c.close()


@pytest.mark.docker
def test_current_images_are_labelled_and_not_rebuilt(lab_image: str) -> None:
    recipe = ImageRecipe.for_host()
    assert lab_image == recipe.lab_tag
    again = ensure_images()
    assert again.warm and again.lab == lab_image and again.base == recipe.base_tag
    c = client()
    try:
        lab = c.images.get(recipe.lab_tag).labels
        base = c.images.get(recipe.base_tag).labels
    finally:
        c.close()
    assert lab[INPUTS_LABEL] == recipe.lab_inputs and lab[KIND_LABEL] == "lab"
    assert base[INPUTS_LABEL] == recipe.base_inputs and base[KIND_LABEL] == "base"


@pytest.mark.docker
def test_failed_base_build_leaves_no_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           lab_image: str) -> None:
    # A stand-in mmdebstrap that streams a small but valid tarball, then fails.
    fake = tmp_path / "bin" / "mmdebstrap"
    fake.parent.mkdir()
    (tmp_path / "root" / "etc").mkdir(parents=True)
    (tmp_path / "root" / "etc" / "hello").write_text("half a root file system\n")
    fake.write_text(f"#!/bin/sh\ntar -C {tmp_path / 'root'} -cf - .\n"
                    "echo 'E: Unable to locate package not-a-package' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    recipe = ImageRecipe(f"test-{secrets.token_hex(4)}", "unused", ("not-a-package",), ())
    with pytest.raises(ImageError, match=r"^base image: mmdebstrap exited with 1: "
                                         r"E: Unable to locate package not-a-package$"):
        ensure_images(recipe=recipe)
    _no_leftovers([recipe.base_tag, recipe.lab_tag])


@pytest.mark.docker
def test_failed_lab_build_leaves_no_image_or_container(lab_image: str) -> None:
    real = ImageRecipe.for_host()
    recipe = ImageRecipe(real.suite, real.sources, real.packages, ("nothing-here==1.0",))
    wheels = WHEELS_ROOT / f"wheels-{recipe.lab_inputs[:16]}"
    wheels.mkdir(parents=True)  # "downloaded" already: no index is asked for the name
    try:
        (wheels / "requirements.txt").write_text(recipe.requirements_text())
        (wheels / ".complete").write_text("")
        with pytest.raises(ImageError, match=r"^lab image: pip install exited with 1: .*"
                                             r"nothing-here"):
            ensure_images(recipe=recipe)
    finally:
        shutil.rmtree(wheels)
    _no_leftovers([recipe.lab_tag])


def test_no_engine_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    for args in (["images"], ["up", "--backend", "docker", "--runs-root", str(tmp_path)]):
        done = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env,
                              timeout=60)
        assert done.returncode == 1
        assert done.stderr.splitlines() == [
            f"dubhe-lab: no Docker engine answers at unix://{tmp_path}/no-engine.sock "
            "(No such file or directory); start the engine or set DOCKER_HOST"], done.stderr

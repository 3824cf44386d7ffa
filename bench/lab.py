"""``dubhe-bench lab``: how long the whole lab takes to come up (all healthy) and go down, per
backend, and (with docker) how long its images take to build.

Runs ``Lab.up`` to all-healthy (every component's readiness, the links, and ``/health``
end to end through client-edge and nginx over http and https) and the teardown, ``--runs``
times per backend (``--backend local,docker``: the backends alternate run by run, so both see
the same machine), and prints the median per component and in total. Baselines, measured in the
same run: the node alone started as a process to its first ``/health`` answer (for the local
lab), and the local lab itself (for the docker lab: docker up / local up).

With docker, the images are built cold first (``--no-cold`` skips it: a forced rebuild of both,
one to two minutes) and then checked warm ``--runs`` times (nothing to build: the tags carry
their inputs' hash).

Targets on this machine: local up < 2 s, down < 1 s; docker up < 5 s, down < 2 s; warm images
< 1 s.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    BenchResult,
    NodeServer,
    add_json_option,
    bench_parser,
    progress,
    table,
    verdict,
)
from lab.orchestrate import Backend, Lab, LabSpec, LocalBackend

#: (up, down) targets in seconds per backend.
TARGETS = {"local": (2.0, 1.0), "docker": (5.0, 2.0)}
UP_TARGET_S, DOWN_TARGET_S = TARGETS["local"]
WARM_IMAGES_TARGET_S = 1.0
KEYS = ["l1-eth", "l1-sui", "proxy", "links", "node", "nginx", "edge", "up", "down"]


def _backend(name: str) -> Backend:
    if name == "docker":
        from lab.orchestrate.docker import DockerBackend

        return DockerBackend()
    return LocalBackend()


async def _one_lab(root: Path, backend: str = "local") -> dict[str, float]:
    t0 = time.monotonic()
    lab = await Lab.start(LabSpec(name="bench"), runs_root=root, backend=_backend(backend))
    up = time.monotonic() - t0
    timings = {k.removeprefix("ready:"): v for k, v in lab.timings.items() if k != "up"}
    t1 = time.monotonic()
    await lab.down()
    return {**timings, "up": up, "down": time.monotonic() - t1}


def _node_alone() -> float:
    t0 = time.monotonic()
    node = NodeServer({"node": {"block_time_ms": 200}})
    try:
        return time.monotonic() - t0
    finally:
        node.stop()


def _images(runs: int, cold: bool) -> dict[str, Any]:
    """Cold (forced rebuild of both images) and warm (nothing to build) image times."""
    from lab.container.images import ensure_images

    out: dict[str, Any] = {}
    if cold:
        progress("images: cold build of the base and lab images (forced rebuild)")
        t0 = time.monotonic()
        built = ensure_images(force=True, progress=progress)
        out["cold_s"] = time.monotonic() - t0
        out["cold_built"] = built.built
    warm = []
    for _ in range(max(runs, 3)):
        t0 = time.monotonic()
        result = ensure_images()
        warm.append(time.monotonic() - t0)
        if not result.warm:
            raise RuntimeError(f"a warm image check built {result.built}")
    out["warm_s"] = warm
    out["warm_median_s"] = statistics.median(warm)
    out["lab_image"] = result.lab
    return out


def _summary(samples: list[dict[str, float]]) -> tuple[dict[str, float], list[list[Any]]]:
    med = {k: statistics.median(s[k] for s in samples) for k in KEYS}
    rows: list[list[Any]] = [[k, med[k], min(s[k] for s in samples), max(s[k] for s in samples)]
                             for k in KEYS]
    return med, rows


def main(argv: list[str]) -> int:
    ap = bench_parser("lab", __doc__)
    ap.add_argument("--runs", type=int, default=5, help="labs brought up and down per backend "
                    "(default 5)")
    ap.add_argument("--backend", default="local",
                    help="comma-separated backends to measure: local, docker (default local)")
    ap.add_argument("--no-cold", action="store_true",
                    help="docker: skip the cold image build (only the warm check)")
    add_json_option(ap)
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    if not backends or any(b not in TARGETS for b in backends) or \
            len(set(backends)) != len(backends):
        ap.error(f"--backend: expected a comma-separated list of local, docker "
                 f"(got {args.backend!r})")
    res = BenchResult("lab", argv)
    print(f"dubhe-bench lab: {args.runs} runs per backend ({', '.join(backends)}) of Lab.up to "
          "all-healthy and teardown (2 mock L1s, proxy, node, nginx)")
    extras: dict[str, Any] = {"runs": args.runs, "backends": {}}
    if "docker" in backends:
        images = _images(args.runs, cold=not args.no_cold)
        extras["images"] = images
        if "cold_s" in images:
            print(f"images cold (base: mmdebstrap | docker import; lab: wheels installed with no "
                  f"network): {images['cold_s']:.1f} s")
            res.figure("images_cold_s", images["cold_s"])
        warm_ok = res.target("images_warm_s", target=WARM_IMAGES_TARGET_S,
                             value=images["warm_median_s"], direction="lower", unit="s",
                             passed=images["warm_median_s"] < WARM_IMAGES_TARGET_S)
        print(f"images warm (tags current, nothing built): median {images['warm_median_s']:.3f} s"
              f"; target < {WARM_IMAGES_TARGET_S:g} s {verdict(warm_ok)}")
    samples: dict[str, list[dict[str, float]]] = {b: [] for b in backends}
    baseline: list[float] = []
    with tempfile.TemporaryDirectory(prefix="dubhe-bench-lab-") as tmp:
        for i in range(args.runs):
            if "local" in backends:
                progress(f"run {i + 1}/{args.runs}: node alone (baseline)")
                baseline.append(_node_alone())
            for b in backends:
                progress(f"run {i + 1}/{args.runs}: {b} lab up and down")
                samples[b].append(asyncio.run(_one_lab(Path(tmp), b)))
    meds: dict[str, dict[str, float]] = {}
    for b in backends:
        med, rows = _summary(samples[b])
        meds[b] = med
        print(f"{b}: seconds since Lab.up was called (components become ready concurrently):")
        print(table(["step", "median s", "min s", "max s"], rows))
        up_target, down_target = TARGETS[b]
        key = "" if b == "local" else f"{b}_"
        for k in KEYS:
            if k not in ("up", "down"):
                res.figure(f"{key}ready_{k}_s", med[k])
        up_ok = res.target(f"{key}up_s", target=up_target, value=med["up"], direction="lower",
                           unit="s", passed=med["up"] < up_target)
        down_ok = res.target(f"{key}down_s", target=down_target, value=med["down"],
                             direction="lower", unit="s", passed=med["down"] < down_target)
        label = "" if b == "local" else f"{b} "
        print(f"target: {label}up < {up_target:g} s: {med['up']:.2f} s {verdict(up_ok)}; "
              f"{label}down < {down_target:g} s: {med['down']:.2f} s {verdict(down_ok)}")
        extras["backends"][b] = {"median_s": med, "samples": samples[b]}
    if baseline:
        base = statistics.median(baseline)
        print(f"baseline: the node alone, process start to /health: median {base:.2f} s; "
              f"lab up / node alone: {meds['local']['up'] / base:.2f}x")
        res.figure("baseline_node_alone_s", base)
        res.figure("ratio_up_vs_node", meds["local"]["up"] / base)
    if "local" in meds and "docker" in meds:
        up_ratio = meds["docker"]["up"] / meds["local"]["up"]
        down_ratio = meds["docker"]["down"] / meds["local"]["down"]
        print(f"baseline: the local lab in the same run: docker / local: up {up_ratio:.2f}x, "
              f"down {down_ratio:.2f}x")
        res.figure("ratio_docker_vs_local_up", up_ratio)
        res.figure("ratio_docker_vs_local_down", down_ratio)
    first = "local" if "local" in meds else backends[0]
    res.extra(median_s=meds[first], samples=samples[first], **extras)
    res.write(args.json)
    return res.exit_code()

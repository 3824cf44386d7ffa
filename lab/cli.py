"""``dubhe-lab``: bring the lab up, inspect it, fault it, tear it down.

::

    dubhe-lab up [--profile FILE ...] [--seed N] [--spec FILE] [--run-dir D] [--toxiproxy-url URL]
                 [--backend local|docker]
    dubhe-lab down [--run-dir D]
    dubhe-lab status [--run-dir D] [--json]
    dubhe-lab fault apply FILE [--run-dir D]
    dubhe-lab fault clear [LINK] [--run-dir D]
    dubhe-lab logs COMPONENT [--run-dir D] [-n LINES] [-f]
    dubhe-lab links
    dubhe-lab images [--force] [--check]
    dubhe-lab compose [--profile FILE ...] [--seed N] [--spec FILE] > lab.compose.yml
    dubhe-lab swarm [--users N] [--spawn-rate R] [--duration T] [--mix M | --user-class C ...]
                    [--shape S] [--profile FILE ...] [--processes K] [--target URL] [--tls]
    dubhe-lab replay FILE [--fixed] [--seed N] [--profile fast|full] [--out DIR]
    dubhe-lab incident from-logs --nginx-error-log F --nginx-access-log G [--out FILE] [--name N]
    dubhe-lab nightly [--quick] [--out DIR] [--only PART ...] [--skip PART ...] [--seed N]
    dubhe-lab report RUN_DIR [--root DIR] [--window N] [--trends FILE]

Without ``--run-dir`` the commands act on the newest run under ``--runs-root`` (default
``reports/runs``). Exit codes: 0 done, 1 the lab or a component failed, 2 bad input (arguments,
spec or profile files), 130 interrupted. Errors are one line (plus a component's last log lines
when it died); never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from lab import links as lab_links
from lab.orchestrate import Lab, LabHandle, LabSpec, resolve_run_dir
from lab.orchestrate.errors import (
    ComponentError,
    EnvironmentProblem,
    LabError,
    NginxConfigError,
    SpecError,
)
from lab.orchestrate.rundir import (
    DEFAULT_ROOT,
    clean_dead_lab,
    owner_alive,
    read_pid_file,
    runs_with_pid_files,
)
from lab.proxy.profiles import ProfileError, load_profile
from lab.scenarios.model import ScenarioError

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
#: Where ``dubhe-lab replay`` puts its run directories.
REPLAYS_ROOT = Path("reports/replays")


def _say(msg: str) -> None:
    print(msg, flush=True)


def _err(msg: str) -> None:
    print(f"dubhe-lab: {msg}", file=sys.stderr, flush=True)


def load_spec(args: argparse.Namespace) -> LabSpec:
    spec = LabSpec()
    if args.spec is not None:
        try:
            data = tomllib.loads(Path(args.spec).read_text())
        except OSError as exc:
            raise SpecError(str(args.spec),
                            [("(file)", f"cannot read: {exc.strerror or exc}")]) from None
        except UnicodeDecodeError as exc:
            raise SpecError(str(args.spec), [("(file)", f"not UTF-8 text (byte {exc.start})")]
                            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(str(args.spec), [("(syntax)", str(exc))]) from None
        spec = spec.overlay(data, str(args.spec))
    over: dict[str, Any] = {}
    if args.seed is not None:
        over["seed"] = args.seed
    if args.profile:
        over["profiles"] = [str(p) for p in args.profile]
    if getattr(args, "toxiproxy_url", None):
        over["proxy"] = {"toxiproxy_url": args.toxiproxy_url}
    return spec.overlay(over, "command line") if over else spec


def print_endpoints(lab: LabHandle) -> None:
    eps = lab.endpoints
    rows = [("http", "JSON-RPC through client-edge -> nginx"), ("ws", "WebSocket, same path"),
            ("https", "JSON-RPC over TLS through client-edge-tls"), ("wss", "WebSocket over TLS"),
            ("ca_file", "the run's CA (trust it for https/wss)"),
            ("node_rpc", "the node directly (no nginx, no links)"), ("node_ws", ""),
            ("proxy_api", "Toxiproxy API of the links"), ("stub_status", "nginx counters"),
            ("l1_eth", "mock Ethereum"), ("l1_sui", "mock Sui")]
    _say("== endpoints")
    for key, what in rows:
        if key in eps:
            _say(f"   {key:<12} {eps[key]:<44} {what}")


def _backend(args: argparse.Namespace) -> Any:
    """None (the local default) or a DockerBackend, its images built first (in the main
    thread, so Ctrl-C during a build stops it and removes the half image)."""
    if args.backend != "docker":
        return None
    from lab.container.images import ensure_images
    from lab.orchestrate.docker import DockerBackend

    image = ensure_images(progress=_say).lab
    return DockerBackend(progress=_say, image=image)


async def _up(args: argparse.Namespace, backend: Any = None) -> int:
    spec = load_spec(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    starting = asyncio.create_task(Lab.start(spec, run_dir=args.run_dir, runs_root=args.runs_root,
                                             progress=_say, backend=backend))
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([starting, stopper], return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, LabError):
            await starting
        _err("interrupted while starting; everything started was stopped")
        return EXIT_INTERRUPTED
    lab = starting.result()  # raises the LabError of a failed start
    try:
        print_endpoints(lab)
        _say(f"== up; run directory {lab.run_dir}\n"
             "   dubhe-lab status | fault apply FILE | fault clear | logs COMPONENT | down; "
             "Ctrl-C stops")
        if args.once:
            return 0
        await stopper
        return 0
    finally:
        stopper.cancel()
        await asyncio.shield(lab.down())


def _down(args: argparse.Namespace) -> int:
    run = resolve_run_dir(args.run_dir, args.runs_root)
    data = read_pid_file(run)
    if data is None:
        _say(f"lab {run.run_id} is not running")
        return 0
    if owner_alive(data):
        owner = int(data["owner"]["pid"])
        _say(f"== asking the lab's owner (pid {owner}) to tear {run.run_id} down")
        with contextlib.suppress(ProcessLookupError):
            os.kill(owner, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and run.pid_file.exists():
            time.sleep(0.05)
        if not run.pid_file.exists():
            _say(f"== lab {run.run_id} is down")
            return 0
        _err(f"the owner (pid {owner}) did not tear down within 20 s; stopping the components")
        with contextlib.suppress(ProcessLookupError):
            os.kill(owner, signal.SIGKILL)
        time.sleep(0.2)
    cleaned = clean_dead_lab(run)
    _say(f"== lab {run.run_id} cleaned up ({', '.join(cleaned) or 'nothing was running'})")
    return 0


async def _status(args: argparse.Namespace) -> int:
    handle = LabHandle.attach(resolve_run_dir(args.run_dir, args.runs_root))
    data = read_pid_file(handle.run)
    try:
        status = await handle.status()
    finally:
        await handle.close()
    status["owner_alive"] = bool(data and owner_alive(data))
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    _say(f"lab {status['run_id']}: {status['state']}"
         f"{'' if status['owner_alive'] else ' (no owner process: not running)'}")
    node = status.get("node", {})
    if "error" in node:
        _say(f"   node      {node['error']}")
    else:
        _say(f"   node      {node.get('status')}, height {node.get('height')}"
             f"{', production paused' if node.get('paused') else ''}")
    edge = status.get("edge")
    if edge is not None:
        _say(f"   edge      {edge.get('error') or 'ok through client-edge -> nginx -> node'}")
    ngx = status.get("nginx")
    if isinstance(ngx, dict):
        _say("   nginx     " + (ngx.get("error") or
             f"active {ngx['active']} (reading {ngx['reading']}, writing {ngx['writing']}, "
             f"waiting {ngx['waiting']}), requests {ngx['requests']}"))
    heads = status.get("l1_heads", {})
    _say("   l1 heads  " + (heads.get("error") if "error" in heads else
                           ", ".join(f"{k} {v}" for k, v in heads.items()) or "none"))
    links = status.get("links", {})
    if "error" in links:
        _say(f"   links     {links['error']}")
    else:
        for name, link in links.items():
            toxics = ", ".join(f"{t['name']} ({t['type']}, {t['stream']})" for t in link["toxics"])
            state = "" if link["enabled"] else " DISABLED"
            _say(f"   {name:<16}{state} {toxics or 'no toxics'}")
    return 0


async def _fault(args: argparse.Namespace) -> int:
    if args.fault_cmd == "apply":
        load_profile(args.file)  # the file's own problems first, with or without a lab
    handle = LabHandle.attach(resolve_run_dir(args.run_dir, args.runs_root))
    try:
        if args.fault_cmd == "apply":
            profile = handle.load_profile(args.file)
            added = await handle.apply_profile(profile)
            _say(f"== {profile.name}: {len(added)} toxics added")
            for link, toxic in added:
                _say(f"   {link}: {toxic}")
        else:
            cleared = await handle.clear_faults(args.link)
            _say(f"== cleared {', '.join(cleared)}")
    finally:
        await handle.close()
    return 0


def _logs(args: argparse.Namespace) -> int:
    handle = LabHandle.attach(resolve_run_dir(args.run_dir, args.runs_root))
    path = handle.log_path(args.component)
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
            for line in lines[-args.lines:] if args.lines > 0 else lines:
                print(line)
            sys.stdout.flush()
            while args.follow:
                chunk = f.read()
                if chunk:
                    sys.stdout.write(chunk.decode(errors="replace"))
                    sys.stdout.flush()
                else:
                    time.sleep(0.2)
    except FileNotFoundError:
        raise EnvironmentProblem(f"{path} does not exist (the component never started?)") from None
    return 0


def _running_lab(args: argparse.Namespace) -> LabHandle | None:
    """The lab named by --run-dir, else the newest running one under --runs-root, else None."""
    if args.run_dir is not None:
        handle = LabHandle.attach(resolve_run_dir(args.run_dir, args.runs_root))
        data = read_pid_file(handle.run)
        if data is None or not owner_alive(data):
            raise EnvironmentProblem(f"lab {handle.run_id} is not running")
        return handle
    live = [run for run in runs_with_pid_files(args.runs_root)
            if (data := read_pid_file(run)) is not None and owner_alive(data)]
    return LabHandle.attach(live[-1]) if live else None


async def _swarm(args: argparse.Namespace) -> int:
    from lab.swarm.runner import SwarmConfig, print_summary, run_swarm, sized_lab_spec

    classes = tuple(args.user_class or [args.mix])
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    if args.target and args.profile:
        raise SpecError("swarm", [("--profile", "fault profiles need a lab; --target runs "
                                   "against a plain URL")])
    for path in args.profile or []:  # the files' own problems, before a lab starts for nothing
        load_profile(path)
    owned: Lab | None = None
    lab: LabHandle | None = None
    if not args.target:
        lab = _running_lab(args)
        if lab is None:
            _say("== no running lab: starting one for the swarm")
            spec = sized_lab_spec(args.users * args.processes, seed=seed,
                                  funded=args.users if "TxSender" in classes or
                                  args.mix in ("senders", "mixed") else 0)
            owned = lab = await Lab.start(spec, runs_root=args.runs_root, progress=_say)
        else:
            _say(f"== swarm against the running lab {lab.run_id}")
    try:
        if lab is not None:
            key = "wss" if args.tls else "ws"
            target, ca = lab.endpoints[key], str(lab.ca_file or "")
            out = args.out or lab.run_dir / "swarm" / time.strftime("%Y%m%d-%H%M%S")
            profiles = tuple(lab.load_profile(p) for p in args.profile or [])
        else:
            target, ca, profiles = args.target, "", ()
            out = args.out or args.runs_root / "swarms" / time.strftime("%Y%m%d-%H%M%S")
        cfg = SwarmConfig(users=args.users, spawn_rate=args.spawn_rate, duration=args.duration,
                          out=Path(os.path.abspath(out)),  # noqa: ASYNC240 - no I/O
                          target=target, classes=classes,
                          shape=args.shape, steps=args.steps, processes=args.processes,
                          seed=seed, ca_file=ca if args.tls else "")
        try:
            cfg.check()
        except ValueError as exc:
            raise SpecError("swarm", [("options", str(exc))]) from None
        summary = await run_swarm(cfg, lab, profiles, say=_say)
        print_summary(summary, _say)
        _say(f"== swarm files in {cfg.out} (seed {seed}; replay with --seed {seed})")
        book = summary.get("connections_bookkeeping", {})
        return 0 if summary["locust_exit"] in (0, 1) and book.get("returned_to_baseline", True) \
            else EXIT_FAILED
    finally:
        if owned is not None:
            await asyncio.shield(owned.down())
        elif lab is not None:
            await lab.close()


async def _replay(args: argparse.Namespace, backend: Any = None) -> int:
    from lab.scenarios.incident import Mode, load
    from lab.scenarios.replay import replay

    incident = load(args.file)
    mode: Mode = "fixed" if args.fixed else "repro"
    incident.case(mode, args.profile, args.seed)  # bad --seed/--profile: usage, before a lab
    out = args.out or REPLAYS_ROOT / f"{time.strftime('%Y%m%d-%H%M%S')}-{incident.name}-{mode}"
    out = Path(os.path.abspath(out))  # noqa: ASYNC240 - no I/O
    labs: list[Lab] = []

    async def start_lab(spec: LabSpec) -> Lab:
        lab = await Lab.start(spec, runs_root=out / "labs", backend=backend, progress=_say)
        labs.append(lab)
        return lab

    try:
        r = await replay(incident, mode=mode, profile=args.profile, seed=args.seed,
                         results_dir=out / "scenarios", start_lab=start_lab, progress=_say)
    finally:
        for lab in labs:
            await asyncio.shield(lab.down())
    _say(f"== {r.verdict()}")
    for line in r.outcome.failures():
        _say(f"   {line}")
    if r.timeline_html is not None:
        _say(f"== timeline: {r.timeline_html}")
    if r.timeline_error:
        _say(f"   (timeline: {r.timeline_error})")
    _say(f"== run directory {out} (replay: {r.command})")
    return 0 if r.holds else EXIT_FAILED


def _from_logs(args: argparse.Namespace) -> int:
    """``dubhe-lab incident from-logs``: the draft on stdout (or in --out), what was found and
    guessed on stderr (stdout with --out)."""
    import re
    import tempfile

    from lab.scenarios.draft import DraftError, analyse, draft, to_toml
    from lab.scenarios.incident import load

    if args.nginx_error_log is None and args.nginx_access_log is None:
        raise SpecError("incident from-logs", [("options", "give --nginx-error-log and/or "
                                                "--nginx-access-log")])
    if args.name is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", args.name):
        raise SpecError("--name", [(args.name, "[a-z0-9-], at most 40 characters")])
    if args.out is not None and args.out.exists() and not args.force:
        raise SpecError("--out", [(str(args.out), "exists (--force replaces it)")])
    lines: dict[str, list[str]] = {}
    for key, path in (("error", args.nginx_error_log), ("access", args.nginx_access_log)):
        if path is None:
            lines[key] = []
            continue
        try:
            lines[key] = path.read_bytes().decode(errors="replace").splitlines()
        except OSError as exc:
            raise SpecError(str(path), [("(file)", f"cannot read: {exc.strerror or exc}")]
                            ) from None
    evidence = analyse(lines["error"], lines["access"])
    try:
        data = draft(evidence, name=args.name)
    except DraftError as exc:
        _err(str(exc))
        return EXIT_FAILED
    sources = [str(p) for p in (args.nginx_error_log, args.nginx_access_log) if p is not None]
    text = to_toml(data, sources=sources)
    say = _say if args.out is not None else _err_plain
    # the draft must load as an incident file before anyone sees it (written whole or not)
    target = args.out if args.out is not None else Path(tempfile.gettempdir()) / "draft.toml"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        load(tmp)
        if args.out is not None:
            tmp.replace(args.out)
    finally:
        tmp.unlink(missing_ok=True)
    if args.out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    say(f"== drafted incident {data['name']!r}: {data['description']}")
    for note in data["notes"]:
        say(f"   - {note}")
    if args.out is not None:
        say(f"== wrote {args.out}; replay it: dubhe-lab replay {args.out} (and --fixed)")
    return 0


def _err_plain(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _links(_: argparse.Namespace) -> int:
    _say("links (every hop of the lab goes through the fault proxy):")
    for link in lab_links.LINKS:
        _say(f"   {link.name:<16} {link.description}")
    _say("   node-l1-eth-N    node -> mock Ethereum endpoint N (N >= 2, with [[l1]] endpoints)")
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dubhe-lab", description=(
        "The Dubhe Channel lab: real nginx, mock L1s and fault proxies around the node."))
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def run_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--run-dir", type=Path, help="the run directory (default: the newest)")
        p.add_argument("--runs-root", type=Path, default=DEFAULT_ROOT,
                       help=f"where runs are kept (default: {DEFAULT_ROOT})")

    up = sub.add_parser("up", help="start the lab and keep it up until Ctrl-C")
    run_opts(up)
    up.add_argument("--profile", action="append", type=Path, metavar="FILE",
                    help="fault profile to apply once up (repeatable)")
    up.add_argument("--seed", type=int, help="seed of every random choice (default: random, "
                    "printed)")
    up.add_argument("--spec", type=Path, help="lab description overlay (TOML, see "
                    "lab/orchestrate/spec.py)")
    up.add_argument("--toxiproxy-url", help="run the links on this external Toxiproxy server "
                    "(standard toxics only)")
    up.add_argument("--backend", choices=["local", "docker"], default="local",
                    help="where components run: local processes (default) or docker "
                    "containers (images built on first use; see docs/containers.md)")
    up.add_argument("--once", action="store_true", help="tear down as soon as it is up")

    down = sub.add_parser("down", help="tear a lab down (also one whose owner was killed)")
    run_opts(down)
    status = sub.add_parser("status", help="components, nginx counters, toxics, heights")
    run_opts(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")

    fault = sub.add_parser("fault", help="apply or clear fault profiles on a running lab")
    fsub = fault.add_subparsers(dest="fault_cmd", required=True, metavar="ACTION")
    apply = fsub.add_parser("apply", help="add a profile's toxics to the lab's links")
    apply.add_argument("file", type=Path)
    run_opts(apply)
    clear = fsub.add_parser("clear", help="remove the toxics of one link or of all")
    clear.add_argument("link", nargs="?")
    run_opts(clear)

    logs = sub.add_parser("logs", help="print a component's log")
    logs.add_argument("component", help="node, nginx, proxy, l1-eth, l1-sui")
    logs.add_argument("-n", "--lines", type=int, default=50,
                      help="last N lines (0: all; default: 50)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    run_opts(logs)

    sub.add_parser("links", help="list the lab's links")

    images = sub.add_parser("images", help="build the container backend's images if their "
                            "inputs changed (make images)")
    images.add_argument("--force", action="store_true", help="rebuild both images")
    images.add_argument("--check", action="store_true",
                        help="only say whether they are current (exit 1 if not)")

    compose = sub.add_parser("compose", help="print a Compose file of the lab (docker-compose "
                             "-f FILE up runs it)")
    compose.add_argument("--profile", action="append", type=Path, metavar="FILE",
                         help="fault profile applied once the links exist (repeatable)")
    compose.add_argument("--seed", type=int, help="seed of every random choice (default: "
                         "random, printed on stderr)")
    compose.add_argument("--spec", type=Path, help="lab description overlay (TOML)")
    compose.add_argument("--dir", type=Path, default=None, help="where the lab's files go "
                         "(configs, TLS, logs; default: reports/compose/<run id>)")
    compose.add_argument("--port-base", type=int, default=18000,
                         help="first host port published on 127.0.0.1 (default 18000)")
    compose.add_argument("--subnet", default="10.213.255.0/24",
                         help="the lab network's subnet (default 10.213.255.0/24)")

    swarm = sub.add_parser("swarm", help="a headless Locust WebSocket swarm against the lab")
    run_opts(swarm)
    swarm.add_argument("--users", type=int, default=100, help="peak users (default 100)")
    swarm.add_argument("--spawn-rate", type=float, default=50.0,
                       help="users started per second (default 50)")
    swarm.add_argument("--duration", type=float, default=30.0, help="seconds (default 30)")
    swarm.add_argument("--mix", default="heads",
                       choices=["heads", "logs", "readers", "senders", "mixed"],
                       help="which users (default heads: newHeads subscribers)")
    swarm.add_argument("--user-class", action="append", metavar="CLASS",
                       help="user class instead of a mix (HeadSubscriber, LogSubscriber, "
                       "RpcReader, TxSender; repeatable)")
    swarm.add_argument("--shape", default="constant",
                       choices=["constant", "ramp", "spike", "step", "soak"],
                       help="load shape (default constant)")
    swarm.add_argument("--steps", type=int, default=5, help="steps of the step shape (default: 5)")
    swarm.add_argument("--profile", action="append", type=Path, metavar="FILE",
                       help="fault profile applied when the swarm starts (repeatable)")
    swarm.add_argument("--processes", type=int, default=1,
                       help="Locust worker processes (its own master/worker mode; default: 1)")
    swarm.add_argument("--target", help="a ws:// or wss:// URL instead of a lab")
    swarm.add_argument("--tls", action="store_true", help="wss:// through client-edge-tls")
    swarm.add_argument("--seed", type=int, help="seed of the users' choices (printed)")
    swarm.add_argument("--out", type=Path, help="where the swarm's files go "
                       "(default: <run dir>/swarm/<time>)")

    rp = sub.add_parser("replay", help="replay an incident file in a fresh lab: check that "
                        "the symptom appears (or, with --fixed, that the fix holds) and write "
                        "its timeline")
    rp.add_argument("file", type=Path, metavar="FILE",
                    help="an incident file (scenarios/incidents/*.toml, docs/incidents.md)")
    rp.add_argument("--fixed", action="store_true", help="apply the file's [fixed] overlay and "
                    "check the SLOs instead of the symptoms")
    rp.add_argument("--seed", type=int, help="seed of the lab, the clients and the timeline's "
                    "jitter (default: the file's; the same seed gives the same fault timeline)")
    rp.add_argument("--profile", choices=["fast", "full"], default="fast",
                    help="fast (default): the short version; full: the long one (nightly)")
    rp.add_argument("--out", type=Path, help="the replay's run directory (default: "
                    f"{REPLAYS_ROOT}/<time>-<name>-<mode>)")
    rp.add_argument("--backend", choices=["local", "docker"], default="local",
                    help="where components run (see dubhe-lab up; default: local)")

    inc = sub.add_parser("incident", help="incident files: draft one from nginx logs")
    isub = inc.add_subparsers(dest="incident_cmd", required=True, metavar="ACTION")
    fl = isub.add_parser("from-logs", help="draft an incident file from nginx's error and "
                         "access logs (upstream timeouts, limit rejections, TLS errors, 5xx "
                         "bursts), noting what could not be inferred")
    fl.add_argument("--nginx-error-log", type=Path, metavar="F",
                    help="nginx's error log (1.22 format; level info shows WebSocket timeouts "
                    "and TLS errors)")
    fl.add_argument("--nginx-access-log", type=Path, metavar="G",
                    help="nginx's access log (the lab's format or nginx's combined)")
    fl.add_argument("--out", type=Path, metavar="FILE",
                    help="write the draft here (default: print it)")
    fl.add_argument("--force", action="store_true", help="replace an existing --out file")
    fl.add_argument("--name", help="the incident's name (default: from-logs-<time>)")

    from lab.nightly import DEFAULT_ROOT as NIGHTLY_ROOT

    def trend_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--window", type=int, help="previous runs of the same mode each metric "
                       "is compared with (default: the rules file's, 10)")
        p.add_argument("--trends", type=Path, metavar="FILE", help="trend rules: direction and "
                       "threshold per metric (default: reports/trends.toml)")

    night = sub.add_parser("nightly", help="scenarios, swarm, property tests and every "
                           "benchmark into one run directory, then the report")
    night.add_argument("--quick", action="store_true", help="the fast scenario profile, a short "
                       "swarm, smoke-sized benchmarks (minutes, not hours)")
    night.add_argument("--out", type=Path, default=NIGHTLY_ROOT, help="where run directories "
                       f"go; the run is DIR/<id> (default: {NIGHTLY_ROOT})")
    night.add_argument("--only", action="append", default=[], metavar="PART",
                       help="run only this part or kind (scenarios, swarm, properties, bench, "
                       "bench-vm, ...; repeatable)")
    night.add_argument("--skip", action="append", default=[], metavar="PART",
                       help="leave out this part or kind (repeatable)")
    night.add_argument("--seed", type=int, help="seed of the scenarios, the swarm and the "
                       "property tests (default: random, printed)")
    night.add_argument("--dry-run", action="store_true", help="print the parts and their "
                       "commands; run nothing")
    trend_opts(night)

    rep = sub.add_parser("report", help="(re-)render the HTML report of a run directory")
    rep.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    rep.add_argument("--root", type=Path, help="the directory of runs it is compared with and "
                     "indexed in (default: RUN_DIR's parent)")
    trend_opts(rep)
    return ap


def _nightly(args: argparse.Namespace, argv: list[str]) -> int:
    from lab import nightly

    only = [n for item in args.only for n in item.split(",") if n]
    skip = [n for item in args.skip for n in item.split(",") if n]
    return nightly.nightly(root=args.out, quick=args.quick, seed=args.seed, only=only,
                           skip=skip, rules=args.trends, window=args.window,
                           dry_run=args.dry_run, argv=argv, say=_say)


def _report(args: argparse.Namespace) -> int:
    from lab import nightly

    return nightly.report(args.run_dir, root=args.root, rules=args.trends, window=args.window,
                          say=_say)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from lab.nightly import UsageError as NightlyUsage

    try:
        if args.cmd == "nightly":
            return _nightly(args, list(sys.argv[1:] if argv is None else argv))
        if args.cmd == "report":
            return _report(args)
        if args.cmd == "up":
            return asyncio.run(_up(args, _backend(args)))
        if args.cmd == "images":
            from lab.container.images import main as images_main

            return images_main((["--force"] if args.force else []) +
                               (["--check"] if args.check else []))
        if args.cmd == "compose":
            from lab.container.compose import compose_main

            return compose_main(args, load_spec(args))
        if args.cmd == "down":
            return _down(args)
        if args.cmd == "status":
            return asyncio.run(_status(args))
        if args.cmd == "fault":
            return asyncio.run(_fault(args))
        if args.cmd == "logs":
            return _logs(args)
        if args.cmd == "swarm":
            return asyncio.run(_swarm(args))
        if args.cmd == "replay":
            return asyncio.run(_replay(args, _backend(args)))
        if args.cmd == "incident":
            return _from_logs(args)
        return _links(args)
    except (SpecError, ProfileError, NightlyUsage, ScenarioError) as exc:
        for line in str(exc).splitlines():  # a profile lists every problem, one per line
            _err(line)
        return EXIT_USAGE
    except ComponentError as exc:
        _err(exc.details())
        return EXIT_FAILED
    except (NginxConfigError, EnvironmentProblem, LabError) as exc:
        _err(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""pytest integration: the ``lab`` and ``lab_factory`` fixtures, options and markers.

Registered from the repository's conftest.py (``pytest_plugins = ["lab.pytest_plugin"]``); in
another project, add the same line to its conftest.py.

Fixtures
    ``lab``          a running :class:`~lab.orchestrate.Lab` built from the ``lab_spec`` fixture
                     (override it to change the topology); shared per module by default
                     (``--lab-scope``). Async tests that use it run in the lab's event loop.
    ``lab_factory``  ``await lab_factory(spec)`` starts a lab of the test's own; every lab it
                     made is torn down when the test ends.
    ``lab_spec``     the :class:`~lab.orchestrate.LabSpec` of ``lab`` (default: ``LabSpec()``);
                     override it with the same scope as ``lab`` (module by default):
                     ``@pytest.fixture(scope="module") def lab_spec(): return LabSpec(...)``.

Options
    ``--lab-backend B``        where components run: ``local`` processes (default) or ``docker``
                               containers (docs/containers.md)
    ``--lab-scope S``          scope of ``lab``: function, module (default), package, session
    ``--lab-keep``             keep a lab whose test failed up, print its run directory
                               (``dubhe-lab down --run-dir DIR`` stops it later)
    ``--lab-runs-dir DIR``     where run directories go (default: <rootdir>/reports/runs)
    ``--toxiproxy-url URL``    run the links on an external Toxiproxy server
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import pytest
import pytest_asyncio

from lab.orchestrate import Backend, Lab, LabSpec, LocalBackend
from lab.orchestrate.rundir import prune_runs

_SCOPES = ("function", "module", "package", "session")
_FAILED = pytest.StashKey[dict[int, list[str]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lab", "Dubhe Channel lab")
    group.addoption("--lab-backend", choices=["local", "docker"], default="local",
                    help="where lab components run: local processes (default) or docker "
                    "containers (images built on first use)")
    group.addoption("--lab-scope", choices=_SCOPES, default="module",
                    help="scope of the 'lab' fixture (default: module)")
    group.addoption("--lab-keep", action="store_true",
                    help="keep a lab up when a test using it fails; print its run directory")
    group.addoption("--lab-runs-dir", type=Path, default=None,
                    help="where lab run directories go (default: <rootdir>/reports/runs)")
    group.addoption("--toxiproxy-url", default=None,
                    help="run the lab's links on this external Toxiproxy server")


def pytest_configure(config: pytest.Config) -> None:
    for line in (
        "lab: starts a lab (real processes: nginx, node, proxies, mock L1s)",
        "scenario: a pytest scenario reproducing an incident in the lab",
        "slow: long-running test, excluded from the default run (select with -m slow)",
        "docker: needs a running Docker engine",
    ):
        config.addinivalue_line("markers", line)
    config.stash[_FAILED] = {}
    # The lab fixture's event loop has the fixture's scope: pytest-asyncio reads this attribute
    # of the fixture function when it sets the fixture up.
    _lab._loop_scope = config.getoption("--lab-scope")  # type: ignore[attr-defined]


Scope = Literal["function", "module", "package", "session"]


def _lab_scope(fixture_name: str, config: pytest.Config) -> Scope:
    scope: Scope = config.getoption("--lab-scope")
    return scope


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Async tests that use ``lab`` run in the lab's event loop (its scope), and get the
    ``lab`` marker."""
    scope = config.getoption("--lab-scope")
    for item in items:
        if "lab" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.lab)
            if scope != "function" and item.get_closest_marker("asyncio") is not None:
                item.add_marker(pytest.mark.asyncio(loop_scope=scope), append=False)
        elif "lab_factory" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.lab)


def pytest_sessionstart(session: pytest.Session) -> None:
    prune_runs(_runs_root(session.config))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        failed = item.config.stash[_FAILED]
        funcargs = getattr(item, "funcargs", {})
        for name in ("lab",):
            if name in funcargs:
                failed.setdefault(id(funcargs[name]), []).append(item.nodeid)
        for made in getattr(item, "_lab_factory_made", []):
            failed.setdefault(id(made), []).append(item.nodeid)
    return report


def _runs_root(config: pytest.Config) -> Path:
    root = config.getoption("--lab-runs-dir")
    return Path(root) if root else config.rootpath / "reports" / "runs"


def _apply_options(spec: LabSpec, config: pytest.Config) -> LabSpec:
    url = config.getoption("--toxiproxy-url")
    if url and spec.proxy.toxiproxy_url is None:
        spec = spec.overlay({"proxy": {"toxiproxy_url": url}}, "--toxiproxy-url")
    return spec


def _say(config: pytest.Config) -> Callable[[str], None]:
    """Progress lines (an image build) straight to the terminal, past output capturing."""
    capture = config.pluginmanager.getplugin("capturemanager")

    def say(msg: str) -> None:
        if capture is not None:
            with capture.global_and_fixture_disabled():
                print(msg, file=sys.stderr, flush=True)
        else:
            print(msg, file=sys.stderr, flush=True)

    return say


def make_backend(config: pytest.Config) -> Backend:
    """The backend ``--lab-backend`` names (a docker backend builds its images when needed)."""
    if config.getoption("--lab-backend") == "docker":
        from lab.orchestrate.docker import DockerBackend

        return DockerBackend(progress=_say(config))
    return LocalBackend(die_with_owner=not config.getoption("--lab-keep"))


async def _start(spec: LabSpec, config: pytest.Config) -> Lab:
    return await Lab.start(_apply_options(spec, config), runs_root=_runs_root(config),
                           backend=make_backend(config))


async def _finish(lab: Lab, config: pytest.Config) -> None:
    failed = config.stash[_FAILED].get(id(lab))
    if failed and config.getoption("--lab-keep"):
        await lab.close()
        print(f"\n== lab kept up after {len(failed)} failed test(s) ({failed[0]} ...): "
              f"run directory {lab.run_dir}\n   endpoints: {lab.endpoints.get('http', '')} "
              f"{lab.endpoints.get('wss', '')}\n   stop it with: dubhe-lab down --run-dir "
              f"{lab.run_dir}", file=sys.stderr)
        return
    await lab.down()


@pytest.fixture(scope=_lab_scope)
def lab_spec() -> LabSpec:
    """The spec of the ``lab`` fixture; override in a conftest.py or module to change it."""
    return LabSpec()


async def _lab(lab_spec: LabSpec, request: pytest.FixtureRequest) -> AsyncIterator[Lab]:
    """A running lab shared by the tests of a module (``--lab-scope``)."""
    running = await _start(lab_spec, request.config)
    try:
        yield running
    finally:
        await _finish(running, request.config)


lab = pytest_asyncio.fixture(_lab, scope=_lab_scope, name="lab")


@pytest_asyncio.fixture
async def lab_factory(request: pytest.FixtureRequest
                      ) -> AsyncIterator[Callable[..., Awaitable[Lab]]]:
    """``await lab_factory(spec)``: a lab of this test's own, torn down after it."""
    made: list[Lab] = []
    request.node._lab_factory_made = made

    async def factory(spec: LabSpec | None = None) -> Lab:
        running = await _start(spec or LabSpec(), request.config)
        made.append(running)
        return running

    try:
        yield factory
    finally:
        for running in reversed(made):
            await _finish(running, request.config)

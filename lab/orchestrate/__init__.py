"""Lab orchestration: a lab described as data, brought up on a backend, faulted, torn down.

* :class:`LabSpec` (and :func:`spec_from_dict`): the description;
* :class:`Lab`: ``async with Lab.up(spec) as lab`` — the running lab this process owns;
* :class:`LabHandle`: a running lab seen from its ``lab.json`` (another process's);
* :class:`Backend` and its implementations :class:`LocalBackend` (default),
  ``lab.orchestrate.docker.DockerBackend`` (containers; needs the ``docker`` extra and an engine)
  and :class:`FakeBackend` (records calls, for tests of the orchestration itself);
* the errors of :mod:`lab.orchestrate.errors`.
"""

from lab.orchestrate.backend import Backend, Endpoint, ProcessSpec
from lab.orchestrate.errors import (
    ComponentError,
    EnvironmentProblem,
    LabError,
    NginxConfigError,
    SpecError,
)
from lab.orchestrate.handle import LabHandle
from lab.orchestrate.lab import Lab
from lab.orchestrate.local import LocalBackend
from lab.orchestrate.rundir import RunDir, resolve_run_dir
from lab.orchestrate.spec import L1Spec, LabSpec, LimitsSpec, NginxSpec, ProxySpec, spec_from_dict

__all__ = [
    "Backend", "ComponentError", "Endpoint", "EnvironmentProblem", "L1Spec", "Lab", "LabError",
    "LabHandle", "LabSpec", "LimitsSpec", "LocalBackend", "NginxConfigError", "NginxSpec",
    "ProcessSpec", "ProxySpec", "RunDir", "SpecError", "resolve_run_dir", "spec_from_dict",
]

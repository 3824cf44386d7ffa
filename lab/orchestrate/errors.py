"""The lab's errors. Each is one clear line for a user (``str(exc)``), and says whose fault it is:

* :class:`SpecError` — the lab description or a profile given to it is wrong (the user's input);
* :class:`EnvironmentProblem` — this machine cannot run the lab as asked (nginx missing, a port
  held by another process, no run directory);
* :class:`ComponentError` — a component of the lab failed (exited, never became ready); carries
  the component's name and the last lines of its log;
* :class:`NginxConfigError` — ``nginx -t`` refused a rendered config; carries nginx's own words.
"""

from __future__ import annotations


class LabError(Exception):
    """Base of the lab's errors; ``str()`` is one line meant for the user."""

    kind = "lab"


class SpecError(LabError):
    """An invalid lab description; ``problems`` lists (dotted key, message)."""

    kind = "spec"

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        first = "; ".join(f"{key}: {msg}" for key, msg in problems)
        super().__init__(f"{source}: {first}")


class EnvironmentProblem(LabError):
    """Something outside the lab stops it (missing program, port in use, permissions)."""

    kind = "environment"


class ComponentError(LabError):
    """A component exited or did not become ready in time."""

    kind = "component"

    def __init__(self, component: str, message: str, log_tail: list[str] | None = None,
                 log_path: str = "") -> None:
        self.component = component
        self.log_tail = list(log_tail or [])
        self.log_path = log_path
        super().__init__(f"{component}: {message}")

    def details(self) -> str:
        """The message plus the component's last log lines (for a terminal)."""
        lines = [str(self)]
        if self.log_tail:
            where = f" ({self.log_path})" if self.log_path else ""
            lines.append(f"--- last lines of the {self.component} log{where} ---")
            lines.extend(self.log_tail)
        return "\n".join(lines)


class NginxConfigError(LabError):
    """``nginx -t`` rejected a rendered configuration (``nginx_message`` is what nginx said), or
    the template itself could not be rendered (``template`` is true)."""

    kind = "nginx-config"

    def __init__(self, conf: str, nginx_message: str, *, template: bool = False) -> None:
        self.conf = conf
        self.nginx_message = nginx_message
        self.template = template
        super().__init__(f"{conf}: {nginx_message}" if template
                         else f"nginx rejected {conf}: {nginx_message}")

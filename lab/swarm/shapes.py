"""Load shapes as pure functions of elapsed time: ``shape(t) -> (users, spawn_rate) | None``.

``None`` ends the run. ``users`` is the target user count at time ``t`` (seconds since the start)
and ``spawn_rate`` how fast Locust moves toward it (users per second). The locustfile's one
``LoadTestShape`` calls the shape chosen with ``--lab-shape``.

* ``constant``: ``users`` at ``spawn_rate`` for the whole duration (the soak shape is the same
  with a long duration);
* ``ramp``: from 0 to ``users`` linearly over the first half, then held;
* ``spike``: 10 % of ``users`` for the first third, all of them in the middle third (spawned as
  fast as Locust can), 10 % again in the last third;
* ``step``: ``users`` reached in ``steps`` equal steps of equal length (finding a ceiling);
* ``soak``: ``constant`` under its own name, for long runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

Shape = Callable[[float], "tuple[int, float] | None"]
SHAPES = ("constant", "ramp", "spike", "step", "soak")


def make_shape(name: str, users: int, spawn_rate: float, duration: float, steps: int = 5
               ) -> Shape:
    """The shape ``name`` for ``users`` over ``duration`` seconds; ``ValueError`` if unknown."""
    if users < 1 or spawn_rate <= 0 or duration <= 0 or steps < 1:
        raise ValueError("users, spawn rate, duration and steps must be positive")

    def constant(t: float) -> tuple[int, float] | None:
        return (users, spawn_rate) if t < duration else None

    def ramp(t: float) -> tuple[int, float] | None:
        if t >= duration:
            return None
        half = duration / 2
        return (max(1, math.ceil(users * min(1.0, t / half))), max(spawn_rate, users / half))

    def spike(t: float) -> tuple[int, float] | None:
        if t >= duration:
            return None
        base = max(1, users // 10)
        if duration / 3 <= t < 2 * duration / 3:
            return (users, float(max(users, spawn_rate)))
        return (base, float(max(users, spawn_rate)))

    def step(t: float) -> tuple[int, float] | None:
        if t >= duration:
            return None
        k = min(steps, int(t // (duration / steps)) + 1)
        return (max(1, users * k // steps), spawn_rate)

    shapes: dict[str, Shape] = {"constant": constant, "soak": constant, "ramp": ramp,
                                "spike": spike, "step": step}
    if name not in shapes:
        raise ValueError(f"unknown load shape {name!r} (known: {', '.join(SHAPES)})")
    return shapes[name]

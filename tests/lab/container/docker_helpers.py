"""Helpers for container-backend tests: what the engine holds for a run, counted by label."""

from __future__ import annotations

from typing import Any

from lab.container import engine


def client() -> Any:
    return engine.connect(timeout_s=30)


def left_by_label(run_id: str) -> dict[str, list[str]]:
    """Containers, networks and volumes on the engine carrying the run's label."""
    c = client()
    try:
        label = f"{engine.RUN_LABEL}={run_id}"
        return {
            "containers": [x["Names"][0] for x in c.api.containers(all=True,
                                                                   filters={"label": label})],
            "networks": [n["Name"] for n in c.api.networks(filters={"label": label})],
            "volumes": [v["Name"] for v in (c.api.volumes(filters={"label": label})
                                            .get("Volumes") or [])],
        }
    finally:
        c.close()


def nothing_left(run_id: str) -> bool:
    return not any(left_by_label(run_id).values())

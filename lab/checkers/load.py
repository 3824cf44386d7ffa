"""The I/O side of the checkers: log offsets of a lab run, log slices, histories, records.

Everything else in :mod:`lab.checkers` is pure; this module reads and writes files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from lab.checkers.record import LogSpan, problems


class ResultFileError(Exception):
    """A history or record file that cannot be used: names the file and what is wrong."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def log_files(run_dir: Path) -> dict[str, str]:
    """Name -> path (relative to ``run_dir``) of every log of a lab run: ``logs/<c>.log`` as
    ``<c>``, nginx's as ``nginx_error`` and ``nginx_access``, the node's audit log as
    ``node_audit``."""
    out = {p.stem: f"logs/{p.name}" for p in sorted((run_dir / "logs").glob("*.log"))}
    for name, rel in (("nginx_error", "nginx/error.log"), ("nginx_access", "nginx/access.log"),
                      ("node_audit", "node/audit.jsonl")):
        if (run_dir / rel).exists() or (run_dir / rel).parent.is_dir():
            out[name] = rel
    return out


def log_sizes(run_dir: Path) -> dict[str, tuple[str, int]]:
    """Name -> (relative path, current size in bytes); a missing file counts as 0."""
    out = {}
    for name, rel in log_files(run_dir).items():
        try:
            size = (run_dir / rel).stat().st_size
        except FileNotFoundError:
            size = 0
        out[name] = (rel, size)
    return out


def spans(before: Mapping[str, tuple[str, int]], after: Mapping[str, tuple[str, int]]
          ) -> dict[str, LogSpan]:
    """Offsets of what each log gained between two :func:`log_sizes` snapshots."""
    out = {}
    for name, (rel, end) in after.items():
        begin = before.get(name, (rel, 0))[1]
        out[name] = LogSpan(rel, min(begin, end), end)
    return out


def read_span(run_dir: Path, span: LogSpan) -> list[str]:
    """The lines of a log between two offsets (decoded leniently)."""
    try:
        with (run_dir / span.path).open("rb") as f:
            f.seek(span.begin)
            data = f.read(max(0, span.end - span.begin))
    except FileNotFoundError:
        return []
    return data.decode(errors="replace").splitlines()


def load_history(path: Path) -> list[dict[str, Any]]:
    """A JSON-lines history; a bad line raises :class:`ResultFileError` naming file and line."""
    events = []
    try:
        with path.open("rb") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    e = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ResultFileError(path, f"line {i}: not JSON ({exc})") from None
                if not isinstance(e, dict) or "ev" not in e or "client" not in e:
                    raise ResultFileError(path, f"line {i}: not a history event "
                                                "(needs 'ev' and 'client')")
                events.append(e)
    except FileNotFoundError:
        raise ResultFileError(path, "no such file") from None
    return events


def write_record(path: Path, record: Mapping[str, Any]) -> None:
    """Write a record whole (temporary name, then rename); refuses an invalid one."""
    bad = problems(dict(record))
    if bad:
        raise ValueError(f"refusing to write an invalid record: {'; '.join(bad)}")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=_jsonable) + "\n")
    tmp.replace(path)


def load_record(path: Path) -> dict[str, Any]:
    """A result record, validated; :class:`ResultFileError` names the file and the keys."""
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultFileError(path, "no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultFileError(path, f"not JSON ({exc})") from None
    bad = problems(record)
    if bad:
        raise ResultFileError(path, "; ".join(bad))
    assert isinstance(record, dict)
    return record


def append_listing(path: Path, record: Mapping[str, Any], record_path: str) -> None:
    """One line per record in the results directory's ``listing.jsonl`` (hive's listing)."""
    line = {"name": record["name"], "pass": record["pass"], "start": record["start"],
            "duration_s": record["duration_s"], "summary": record["summary"],
            "file": record_path}
    with path.open("ab") as f:
        f.write(orjson.dumps(line) + b"\n")


def _jsonable(o: Any) -> Any:
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "as_dict"):
        return o.as_dict()
    if isinstance(o, float):
        return o
    raise TypeError(f"not JSON-able: {type(o).__name__}")


def iter_lines(run_dir: Path, spans_: Mapping[str, LogSpan], name: str) -> Iterable[str]:
    span = spans_.get(name)
    return read_span(run_dir, span) if span is not None else []


__all__ = ["ResultFileError", "append_listing", "iter_lines", "load_history", "load_record",
           "log_files", "log_sizes", "read_span", "spans", "write_record"]

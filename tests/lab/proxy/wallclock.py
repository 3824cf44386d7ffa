"""Helpers for wall-clock tests: scheduling priority and kernel receive timestamps.

On a shared, loaded machine a wall-clock measurement mostly measures the machine: a process
woken by its timer may wait a whole scheduler slice (several ms, more with many busy processes)
before it runs. The wall-clock tests want the proxy's loop, so:

* :func:`raise_priority` puts a process (the proxy under test) or the calling thread (while it
  sends the bytes it times) in the real-time class ``SCHED_FIFO`` at priority 1 when allowed
  (root, or CAP_SYS_NICE), else at nice -20 when allowed, else leaves it; it returns what it got,
  for the assertion message;
* :class:`StampedSocket` reads with ``SO_TIMESTAMPNS``, so the time a byte arrived is the
  kernel's, not the moment the test process got round to reading it.

``SO_TIMESTAMPNS`` stamps with ``CLOCK_REALTIME``: compare with ``time.time()``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections.abc import Iterator

_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_SCM_TIMESTAMPNS = _SO_TIMESTAMPNS
_TIMESPEC = struct.Struct("@qq")


def raise_priority(pid: int = 0) -> str:
    """SCHED_FIFO 1, else nice -20, for ``pid`` (0: the calling thread); returns which."""
    try:
        os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(1))
        return "SCHED_FIFO"
    except (OSError, AttributeError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, pid, -20)
        return "nice -20"
    except OSError:
        return "normal priority"


@contextlib.contextmanager
def priority() -> Iterator[str]:
    """The calling thread at raised priority (see :func:`raise_priority`) for the block."""
    policy = os.sched_getscheduler(0)
    param = os.sched_getparam(0)
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    got = raise_priority()
    try:
        yield got
    finally:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, policy, param)
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, nice)


class StampedSocket:
    """A blocking TCP socket whose reads report when the kernel received the data."""

    def __init__(self, sock: socket.socket, timeout_s: float = 10.0) -> None:
        self.sock = sock
        sock.settimeout(timeout_s)
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)

    def recv_stamped(self, size: int = 1 << 20) -> tuple[bytes, float | None]:
        """(data, arrival time in ``time.time()`` seconds of the newest byte read, or None)."""
        data, ancdata, _, _ = self.sock.recvmsg(size, 1024)
        stamp = None
        for level, kind, raw in ancdata:
            if level == socket.SOL_SOCKET and kind == _SCM_TIMESTAMPNS:
                sec, nsec = _TIMESPEC.unpack(raw[: _TIMESPEC.size])
                stamp = sec + nsec / 1e9
        return data, stamp

    def recv_exactly_stamped(self, n: int) -> tuple[bytes, float]:
        """Read ``n`` bytes; returns them and the arrival time of the last one."""
        out = bytearray()
        last: float | None = None
        while len(out) < n:
            data, stamp = self.recv_stamped(n - len(out))
            if not data:
                raise ConnectionError(f"EOF after {len(out)} of {n} bytes")
            out += data
            last = stamp if stamp is not None else last
        assert last is not None, "the kernel gave no receive timestamp"
        return bytes(out), last

    def close(self) -> None:
        self.sock.close()

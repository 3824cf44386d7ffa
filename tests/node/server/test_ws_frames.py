"""RFC 6455 client-frame checks (node.server.ws_frames), byte by byte: any split of the stream
gives the same verdict and the same number of bytes passed on. Plus the small pure parts of the
connection guard (peer log limiter, per-address table, linked buckets)."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.server.conn_guard import ConnTable, PeerLogLimiter, networks
from node.server.security import LinkedBucket, TokenBucket
from node.server.ws_frames import ClientFrameCheck, close_frame


def frame(opcode: int, payload: bytes, *, masked: bool = True) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, (0x80 if masked else 0) | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, (0x80 if masked else 0) | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, (0x80 if masked else 0) | 127)) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def run(stream: bytes, cuts: list[int]) -> tuple[int, str | None]:
    """Feed ``stream`` split at ``cuts``; returns (bytes passed on, problem)."""
    c = ClientFrameCheck()
    passed, problem = 0, None
    bounds = [0, *sorted(set(cuts)), len(stream)]
    for a, b in itertools.pairwise(bounds):
        ok, problem = c.feed(stream[a:b])
        passed += ok
        if problem:
            break
    return passed, problem


GOOD = frame(1, b"x" * 10) + frame(2, b"y" * 300) + frame(9, b"") + frame(1, b"z" * 70_000)


@given(st.lists(st.integers(0, len(GOOD)), max_size=20))
def test_valid_frames_pass_whole_under_any_split(cuts: list[int]) -> None:
    assert run(GOOD, cuts) == (len(GOOD), None)


@given(st.lists(st.integers(0, len(GOOD) + 200), max_size=10))
def test_an_unmasked_frame_stops_at_its_first_byte(cuts: list[int]) -> None:
    stream = GOOD + frame(1, b"a" * 150, masked=False) + frame(1, b"never")
    passed, problem = run(stream, cuts)
    assert problem is not None and "not masked" in problem
    assert passed <= len(GOOD)  # nothing of the bad frame reaches the parser from its chunk


@pytest.mark.parametrize("code", [1005, 1006, 1015])
@given(cuts=st.lists(st.integers(0, len(GOOD) + 20), max_size=10))
def test_reserved_close_codes_fail(code: int, cuts: list[int]) -> None:
    _passed, problem = run(GOOD + frame(8, code.to_bytes(2, "big") + b"r"), cuts)
    assert problem is not None and str(code) in problem


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1011, 3000, 4999])
def test_other_close_codes_pass(code: int) -> None:
    stream = frame(8, code.to_bytes(2, "big"))
    assert run(stream, [1, 3, 6]) == (len(stream), None)


def test_an_empty_close_frame_passes() -> None:
    assert run(frame(8, b""), []) == (6, None)


def test_after_a_problem_nothing_more_passes() -> None:
    c = ClientFrameCheck()
    assert c.feed(frame(1, b"a", masked=False))[1]
    assert c.feed(frame(1, b"b"))[0] == 0


def test_close_frame_encoding() -> None:
    f = close_frame(1002, "x" * 200)
    assert f[0] == 0x88 and f[1] == 125 and int.from_bytes(f[2:4], "big") == 1002


# -- conn_guard's pure parts ------------------------------------------------------------------
def test_peer_log_limiter_counts_what_it_suppressed() -> None:
    now = [0.0]
    lim = PeerLogLimiter(60, clock=lambda: now[0])
    assert lim.allow("a") == 0
    assert lim.allow("a") is None and lim.allow("a") is None
    assert lim.allow("b") == 0
    now[0] = 61
    assert lim.allow("a") == 2


def test_conn_table_caps_addresses_outside_the_exempt_networks() -> None:
    t = ConnTable(2, networks(["127.0.0.1", "10.0.0.0/8"]))
    assert t.admit("192.0.2.1") and t.admit("192.0.2.1") and not t.admit("192.0.2.1")
    assert all(t.admit("10.1.2.3") for _ in range(5))
    assert all(t.admit("127.0.0.1") for _ in range(5))
    t.release("192.0.2.1")
    assert t.admit("192.0.2.1")
    assert ConnTable(0, ()).admit("x") and ConnTable(0, ()).max_per_ip == 0


def test_linked_bucket_needs_both_and_refunds() -> None:
    conn, ip = TokenBucket(0.0001, 3), TokenBucket(0.0001, 2)
    b = LinkedBucket(conn, ip)
    assert b.take() and b.take() and not b.take()  # the address's 2 run out first
    assert conn.tokens == pytest.approx(1, abs=0.01) and b.violations == 1
    other = LinkedBucket(TokenBucket(0.0001, 5), ip)  # a second connection, same address
    assert not other.take()
    conn2, ip2 = TokenBucket(0.0001, 1), TokenBucket(0.0001, 10)
    assert LinkedBucket(conn2, ip2).take_up_to(5) == 1
    assert ip2.tokens == pytest.approx(9, abs=0.01)  # the 4 the connection could not use

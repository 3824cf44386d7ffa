"""Block-STM's multi-version memory and scheduler, driven by hand (one thread, no timing): what a
read sees, ESTIMATE markers, read-set validation, a re-incarnation that writes fewer keys, and the
scheduler's task order, dependencies and re-incarnations (the paper's Algorithms 2-5)."""

from __future__ import annotations

import pytest

from node.scheduler.blockstm import (
    ABORTING,
    EXECUTE,
    EXECUTED,
    EXECUTING,
    READY_TO_EXECUTE,
    VALIDATE,
    MVMemory,
    ReadError,
    Scheduler,
)


def test_a_read_sees_the_highest_write_below_it() -> None:
    mv = MVMemory(6)
    assert mv.read(b"k", 3) is None  # nobody wrote k: storage
    assert mv.record(1, 0, [], {b"k": b"one"}) is True
    assert mv.record(4, 2, [], {b"k": None}) is True  # a delete is a write too
    assert mv.read(b"k", 0) is None and mv.read(b"k", 1) is None  # only below, never itself
    assert mv.read(b"k", 2) == ((1, 0), b"one") and mv.read(b"k", 4) == ((1, 0), b"one")
    assert mv.read(b"k", 5) == ((4, 2), None)
    assert mv.read(b"other", 5) is None


def test_estimates_block_readers_above_and_name_the_writer() -> None:
    mv = MVMemory(4)
    mv.record(1, 0, [], {b"a": b"1", b"b": b"2"})
    mv.convert_writes_to_estimates(1)
    for key in (b"a", b"b"):
        with pytest.raises(ReadError) as e:
            mv.read(key, 3)
        assert e.value.blocking == 1
    assert mv.read(b"a", 1) is None  # below the aborted writer: unaffected
    assert mv.record(1, 1, [], {b"a": b"3", b"b": b"4"}) is False  # same keys: nothing new
    assert mv.read(b"a", 2) == ((1, 1), b"3")


def test_a_re_incarnation_writing_fewer_keys_withdraws_the_others() -> None:
    mv = MVMemory(3)
    mv.record(0, 0, [], {b"a": b"1", b"b": b"2"})
    assert mv.record(0, 1, [], {b"a": b"5"}) is False  # a subset of before
    assert mv.read(b"b", 2) is None and mv.read(b"a", 2) == ((0, 1), b"5")
    assert mv.record(0, 2, [], {b"a": b"6", b"c": b"7"}) is True  # c is new
    assert mv.read(b"c", 1) == ((0, 2), b"7")


def test_validation_compares_every_read_with_what_it_would_see_now() -> None:
    mv = MVMemory(4)
    mv.record(0, 0, [], {b"x": b"0"})
    mv.record(2, 0, [(b"x", (0, 0)), (b"y", None)], {})
    assert mv.validate_read_set(2)
    mv.record(1, 0, [], {b"y": b"1"})  # a lower transaction now writes y
    assert not mv.validate_read_set(2)
    mv.record(2, 1, [(b"x", (0, 0)), (b"y", (1, 0))], {})
    assert mv.validate_read_set(2)
    mv.record(0, 1, [], {b"x": b"new"})  # x rewritten by a new incarnation: another version
    assert not mv.validate_read_set(2)
    mv.record(2, 2, [(b"x", (0, 1)), (b"y", (1, 0))], {})
    mv.convert_writes_to_estimates(1)
    assert not mv.validate_read_set(2)  # an ESTIMATE in the read set: invalid
    mv.record(3, 0, [(b"z", None)], {})
    assert mv.validate_read_set(3) and MVMemory(1).validate_read_set(0)


def test_the_scheduler_validates_before_executing_further() -> None:
    s = Scheduler(3)  # no window: the paper as is
    assert s.next_task() == (EXECUTE, 0, 0) and s.status[0] == EXECUTING
    assert s.next_task() == (EXECUTE, 1, 0)  # 0 is still executing: nothing to validate yet
    assert s.finish_execution(0, 0, True) is None and s.status[0] == EXECUTED
    assert s.next_task() == (VALIDATE, 0, 0)  # validation comes first
    assert s.finish_validation(0, False) is None
    assert s.finish_execution(1, 0, False) is None
    assert s.next_task() == (VALIDATE, 1, 0)
    assert s.finish_validation(1, False) is None
    assert s.next_task() == (EXECUTE, 2, 0)
    assert s.finish_execution(2, 0, False) is None
    assert s.next_task() == (VALIDATE, 2, 0)
    assert s.finish_validation(2, False) is None
    assert s.next_task() is None and s.done_marker and s.aborts == 0


def test_a_failed_validation_re_incarnates_and_revalidates_above() -> None:
    s = Scheduler(3)
    assert [s.next_task() for _ in range(3)] == [(EXECUTE, i, 0) for i in range(3)]
    # validation went past them while they ran: each comes back with its own validation
    assert s.finish_execution(0, 0, False) == (VALIDATE, 0, 0)
    assert s.finish_validation(0, False) is None
    assert s.finish_execution(1, 0, False) == (VALIDATE, 1, 0)
    assert s.try_validation_abort(1, 0) and s.status[1] == ABORTING and s.aborts == 1
    # the aborted one is re-executed at once, as incarnation 1, by the same worker
    assert s.finish_validation(1, True) == (EXECUTE, 1, 1)
    assert s.incarnation[1] == 1 and s.status[1] == EXECUTING and s.validation_idx == 2
    assert s.finish_execution(2, 0, False) is None
    assert s.next_task() == (VALIDATE, 2, 0)
    assert s.finish_validation(2, False) is None
    # the new incarnation wrote a new key: everything from it up is validated again
    assert s.finish_execution(1, 1, True) is None and s.validation_idx == 1
    assert s.next_task() == (VALIDATE, 1, 1)
    assert s.finish_validation(1, False) is None
    assert s.next_task() == (VALIDATE, 2, 0)
    assert s.finish_validation(2, False) is None
    assert s.next_task() is None and s.aborts == 1


def test_a_dependency_parks_a_transaction_until_its_blocker_finishes() -> None:
    s = Scheduler(3)
    assert [s.next_task() for _ in range(3)] == [(EXECUTE, i, 0) for i in range(3)]
    assert s.add_dependency(2, 1) is True  # tx 2 read an ESTIMATE of tx 1
    assert s.status[2] == ABORTING and s.aborts == 1 and s.dependencies[1] == [2]
    assert s.finish_execution(0, 0, False) == (VALIDATE, 0, 0)
    assert s.finish_execution(1, 0, False) == (VALIDATE, 1, 0)  # tx 1 done: tx 2 is ready
    assert s.status[2] == READY_TO_EXECUTE and s.incarnation[2] == 1
    assert s.dependencies[1] == [] and s.execution_idx == 2
    assert s.add_dependency(0, 1) is False  # tx 1 already finished: retry at once
    assert s.aborts == 1


def test_a_block_of_nothing_is_done_at_once() -> None:
    s = Scheduler(0, window=4)
    assert s.done_marker and s.next_task() is None


def test_each_re_incarnation_counts_up() -> None:
    s = Scheduler(2)
    assert [s.next_task() for _ in range(2)] == [(EXECUTE, 0, 0), (EXECUTE, 1, 0)]
    s.finish_execution(0, 0, False)
    s.finish_execution(1, 0, False)
    for incarnation in (0, 1, 2):
        s.status[1] = EXECUTED
        assert s.try_validation_abort(1, incarnation)
        assert s.finish_validation(1, True) == (EXECUTE, 1, incarnation + 1)
        s.finish_execution(1, incarnation + 1, False)
    assert s.incarnation[1] == 3 and s.aborts == 3


@pytest.mark.parametrize(("window", "after"), [(8, 4), (5, 2), (2, 1), (1, 1)])
def test_an_abort_halves_the_window_down_to_1(window: int, after: int) -> None:
    s = Scheduler(100, window=window)
    s.status[3] = EXECUTED
    assert s.try_validation_abort(3, 0)
    assert s.window == after and type(s.window) is int


def test_the_fallback_needs_the_frontier_in_the_first_quarter() -> None:
    for n, abandoned in ((9, False), (12, True)):  # 2 < 9 // 4 is false; 2 < 12 // 4 is not
        s = Scheduler(n, window=8, fallback_after=1)
        s.status[2] = EXECUTED
        s.frontier = 3
        assert s.try_validation_abort(2, 0) and s.frontier == 2
        assert s.abandoned is abandoned


def test_an_abort_sends_validation_back_to_just_above_the_aborted_one() -> None:
    """Validation had passed tx 2 when tx 1 aborts: everything above 1 (2, 3) is validated
    again, since it may have read what 1 wrote (the paper's ``decrease_validation_idx(i + 1)``)."""
    s = Scheduler(4)
    assert [s.next_task() for _ in range(4)] == [(EXECUTE, i, 0) for i in range(4)]
    assert s.validation_idx == 3
    assert s.finish_execution(0, 0, False) == (VALIDATE, 0, 0)
    assert s.finish_validation(0, False) is None
    assert s.finish_execution(1, 0, False) == (VALIDATE, 1, 0)
    assert s.try_validation_abort(1, 0)
    assert s.finish_validation(1, True) == (EXECUTE, 1, 1)
    assert s.validation_idx == 2


class _RacyDict(dict):  # type: ignore[type-arg]
    """A dict whose first lookup fails as if an entry were being removed at that moment."""

    def __init__(self, *a: object) -> None:
        super().__init__(*a)
        self.raced = False

    def __getitem__(self, key: object) -> object:
        if not self.raced:
            self.raced = True
            raise KeyError(key)
        return super().__getitem__(key)


def test_a_lock_free_read_that_races_a_removal_tries_again() -> None:
    mv = MVMemory(3)
    mv.record(0, 0, [], {b"k": b"v0"})
    racy = _RacyDict(mv._data)
    mv._data = racy
    assert mv.read(b"k", 2) == ((0, 0), b"v0")
    assert racy.raced


@pytest.mark.parametrize(("n", "threshold"), [(100, 32), (6400, 32), (6599, 32), (6600, 33),
                                              (20_000, 100)])
def test_the_default_fallback_threshold_is_half_a_percent_and_at_least_32(
    n: int, threshold: int,
) -> None:
    s = Scheduler(n, window=8)
    assert s.fallback_after == threshold and type(s.fallback_after) is int


def test_a_window_of_one_hands_out_one_execution_beyond_the_frontier() -> None:
    """With the window at 1 a second worker gets nothing while tx 0 runs; once tx 0 is
    executed (the frontier moves) it gets the next task at once."""
    import threading
    import time

    s = Scheduler(4, window=1)
    assert s.window == s.max_window == 1
    assert s.next_task() == (EXECUTE, 0, 0)
    got: list[object] = []
    second = threading.Thread(target=lambda: got.append(s.next_task()), daemon=True)
    second.start()
    deadline = time.monotonic() + 10
    while s.validation_idx < 1 and time.monotonic() < deadline:
        time.sleep(0.001)  # until it has looked (it moves validation past tx 0 first)
    second.join(0.05)
    assert second.is_alive() and got == []  # held by the window (a fresh scheduler: frontier 0)
    # the waiting worker had moved validation past tx 0: its validation comes back to us
    assert s.finish_execution(0, 0, False) == (VALIDATE, 0, 0)
    second.join(10)
    assert got == [(EXECUTE, 1, 0)] and s.frontier == 1

"""The one clock: monotonic nanoseconds; the manual clock moves only when told to."""

from __future__ import annotations

import threading

import pytest

from genxr.platform.clock import MONOTONIC, Clock, ManualClock, MonotonicClock


def test_monotonic_clock_never_goes_back():
    readings = [MONOTONIC.now_ns() for _ in range(1000)]
    assert readings == sorted(readings)
    assert isinstance(MonotonicClock(), Clock) and isinstance(ManualClock(), Clock)


def test_monotonic_sleep_until_reaches_the_deadline():
    deadline = MONOTONIC.now_ns() + 2_000_000
    MONOTONIC.sleep_until_ns(deadline)
    assert MONOTONIC.now_ns() >= deadline


def test_manual_clock_moves_only_when_told():
    clock = ManualClock(start_ns=100)
    assert clock.now_ns() == 100
    assert clock.advance_ns(50) == 150
    clock.sleep_until_ns(1_000)
    assert clock.now_ns() == 1_000
    clock.sleep_until_ns(10)  # already past: no change
    assert clock.now_ns() == 1_000


def test_manual_clock_refuses_to_go_back():
    with pytest.raises(ValueError, match="cannot go back"):
        ManualClock().advance_ns(-1)
    with pytest.raises(ValueError, match="start_ns must be >= 0"):
        ManualClock(start_ns=-5)


def test_manual_clock_wakes_a_waiting_thread():
    clock = ManualClock()
    woke = []
    waiter = threading.Thread(target=lambda: woke.append(clock.wait_until_ns(500, timeout_s=5)))
    waiter.start()
    clock.advance_ns(499)
    clock.advance_ns(1)
    waiter.join(5)
    assert woke == [True]
    assert clock.wait_until_ns(10_000, timeout_s=0.01) is False

"""Model requests keep their rate on a display grid that does not divide their period: a
7.5 Hz avatar (133 ms chunks) at 90 Hz is asked 7.5 times a second, not every 13th frame."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from genxr.platform.bus import PendingResponse
from genxr.platform.clock import ManualClock
from tests.helpers.frame_loop import TurningHead, answer, make_loop


class AnsweringBus:
    """Answers every request at once, on the caller's thread: the loop's cadence alone decides
    when requests go out."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.sent_ns: list[int] = []

    def request_async(self, service, request, timeout_s: float) -> PendingResponse:
        self.sent_ns.append(self.clock.now_ns())
        future: Future = Future()
        future.set_result(answer(request))
        return PendingResponse(service, future, timeout_s, self.clock)


@pytest.mark.parametrize(("display_hz", "rate_hz"), [(90.0, 7.5), (90.0, 30.0), (72.0, 7.5), (120.0, 7.5)])
def test_requests_average_their_rate_on_any_display_grid(display_hz, rate_hz):
    clock = ManualClock()
    bus = AnsweringBus(clock)
    seconds = 20
    loop, _ = make_loop(TurningHead(clock), bus, clock, rate_hz=display_hz, world_rate_hz=rate_hz)
    loop.run(max_frames=round(seconds * display_hz))
    assert abs(len(bus.sent_ns) - seconds * rate_hz) <= 1


def test_a_slot_that_fell_behind_starts_again_from_now_without_a_burst():
    clock = ManualClock()
    bus = AnsweringBus(clock)
    loop, _ = make_loop(TurningHead(clock), bus, clock, rate_hz=90.0, world_rate_hz=7.5)
    loop.run(max_frames=30)
    clock.advance_ns(2_000_000_000)  # the loop stalled for 2 s
    before = len(bus.sent_ns)
    loop.run(max_frames=32)
    assert len(bus.sent_ns) - before == 1, "one request after the stall, not the 15 it missed"

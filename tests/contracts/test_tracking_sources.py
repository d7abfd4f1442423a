"""Every tracking source keeps the :class:`~genxr.xr_runtime.sources.TrackingSource` contract.

One suite, run against the simulated user, a recording replayed at its original timing and
as fast as read, and the OpenXR source on the spec-enforcing fake runtime
(:class:`tests.helpers.fake_openxr.TrackingRuntime`: a whole runtime with reference
spaces, hand trackers, ``xrLocateSpace``, ``xrLocateHandJointsEXT`` and the timespec
conversions, on its own XrTime base; the source's real entering and leaving run on it).
All run on a :class:`ManualClock`, so nothing here depends on how fast the machine is.

The contract, from :mod:`genxr.xr_runtime.sources`, :mod:`genxr.xr_runtime.timing` and the
:class:`~genxr.platform.messages.TrackingFrame` docs:

* a source is a ``TrackingSource`` and a context manager;
* ``wait_frame`` (called when ``paces_display``) gives frame ids and predicted display times
  that increase, on the source's clock, woken at the clock's now; a pacing source blocks to
  its display period;
* ``read(timing)`` gives the frame for that timing (its id and predicted display time),
  sampled during the frame (wake <= sample <= now <= predicted display time);
* frames are valid messages (they cross the bus): finite unit poses, 26-joint hands labelled
  with their side; ids and sample times increase along the stream (``StreamOrder``);
* ``read`` returns None once the source has ended, and keeps doing so;
* leaving the ``with`` block never swallows the loop's error, may be repeated, and gives back
  what entering took even in the middle of a frame;
* NaN poses from a runtime become lost tracking (flags cleared, ``head_tracked`` False), never
  an invalid frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from genxr.platform.clock import NS_PER_S, ManualClock
from genxr.platform.messages import HAND_JOINT_COUNT, StreamOrder, TrackingFrame, decode, encode
from genxr.xr_runtime.recording.writer import Recorder
from genxr.xr_runtime.replay_source import ReplaySource
from genxr.xr_runtime.sim_source import SimulatedSource
from genxr.xr_runtime.sources import TrackingSource
from genxr.xr_runtime.timing import DisplayClock, FrameTiming
from tests.helpers.fake_openxr import BAD_JOINT, FakeHeadsetSource, TrackingRuntime

START_NS = 10 * NS_PER_S
"""Where every source's clock starts (recordings are made on another clock, starting at 1 s)."""
RECORDED_FRAMES = 40
MAX_FRAMES = 400
"""More frames than any source here has before it ends."""


# -- the implementations under test ---------------------------------------------------------------


@dataclass
class Case:
    name: str
    clock: ManualClock
    source: TrackingSource
    finish: Callable[[], None]
    """Makes the source's content end (the script or recording runs out, the runtime asks to exit)."""
    released: Callable[[], None] = lambda: None
    """Asserts that leaving the ``with`` block gave back what entering took (where observable)."""
    runtime: TrackingRuntime | None = None
    display_clock: DisplayClock | None = None

    def timing(self) -> FrameTiming:
        """The frame loop's wait: the source's own when it paces the display, else a DisplayClock's."""
        if self.source.paces_display:
            return self.source.wait_frame()
        if self.display_clock is None:
            self.display_clock = DisplayClock(90.0, self.clock)
        return self.display_clock.wait_frame()

    def frame(self) -> tuple[FrameTiming, TrackingFrame | None]:
        timing = self.timing()
        return timing, self.source.read(timing)


def record_session(folder) -> None:
    """A simulated user's first frames recorded to ``folder``, on a clock of its own."""
    clock = ManualClock(start_ns=NS_PER_S)
    with SimulatedSource(behaviour="look_around", seed=2, rate_hz=90.0, clock=clock, loop=False) as user, \
            Recorder(folder, metadata={"source": "contract"}, clock=clock) as recorder:
        for _ in range(RECORDED_FRAMES):
            recorder.add_frame(user.read(user.wait_frame()))


def simulated(tmp_path, clock: ManualClock) -> Case:
    return Case("simulated", clock, SimulatedSource(behaviour="idle", seed=1, rate_hz=90.0, clock=clock, loop=False),
                finish=lambda: None)


def replay(timing: str) -> Callable[..., Case]:
    def make(tmp_path, clock: ManualClock) -> Case:
        record_session(tmp_path / "recording")
        source = ReplaySource(tmp_path / "recording", timing=timing, clock=clock)

        def released() -> None:
            assert source.recording is None, "the recording is let go"

        return Case(f"replay-{timing}", clock, source, finish=lambda: None, released=released)

    return make


def openxr(tmp_path, clock: ManualClock) -> Case:
    runtime = TrackingRuntime(clock)

    source = FakeHeadsetSource(runtime, clock=clock, fallback_rate_hz=90.0)

    def released() -> None:
        assert runtime.frame == "none", "the frame wait_frame opened was ended"
        assert sorted(runtime.destroyed_trackers) == sorted(runtime.trackers) and len(runtime.trackers) == 2
        assert runtime.live() == [], "trackers, spaces, the session and the instance were destroyed"
        assert [gl.destroyed for gl in source.gl_contexts] == [1], "the graphics context was closed once"

    return Case("openxr", clock, source, finish=runtime.runtime_exit, released=released, runtime=runtime)


FACTORIES: dict[str, Callable[..., Case]] = {
    "simulated": simulated,
    "replay-original": replay("original"),
    "replay-fast": replay("fast"),
    "openxr": openxr,
}

def each_source(*, only: tuple[str, ...] | None = None, xfail: dict[str, str] | None = None):
    """Parametrises a test over the sources (``case`` fixture); ``xfail``: name -> the defect (strict)."""
    xfail = xfail or {}
    params = [pytest.param(name, id=name, marks=[pytest.mark.xfail(strict=True, reason=xfail[name])]
                           if name in xfail else []) for name in FACTORIES if only is None or name in only]
    return pytest.mark.parametrize("case", params, indirect=True)


@pytest.fixture
def case(request, tmp_path) -> Case:
    made = FACTORIES[request.param](tmp_path, ManualClock(start_ns=START_NS))
    yield made
    if made.runtime is not None:
        assert made.runtime.violations == [], "the source broke the OpenXR spec inside a runtime call"


def frames(case: Case, count: int) -> list[tuple[FrameTiming, TrackingFrame]]:
    out = []
    for _ in range(count):
        timing, frame = case.frame()
        assert frame is not None, f"{case.name} ended after {len(out)} frames"
        out.append((timing, frame))
    return out


# -- the contract ---------------------------------------------------------------------------------


@each_source()
def test_is_a_tracking_source_and_a_context_manager(case):
    assert isinstance(case.source, TrackingSource)
    assert isinstance(case.source.paces_display, bool)
    with case.source as entered:
        assert isinstance(entered, TrackingSource)
        assert entered.read(case.timing()) is not None, "the entered object is the one that reads"


@each_source()
def test_wait_frame_ids_and_display_times_increase_on_the_sources_clock(case):
    with case.source:
        timings = []
        for _ in range(12):
            timing = case.timing()
            assert isinstance(timing, FrameTiming)
            now = case.clock.now_ns()
            assert timing.wake_time_ns == now, "woken at the clock's now: the source's clock is the loop's"
            assert now <= timing.predicted_display_time_ns <= now + NS_PER_S, \
                "the predicted display time is ahead of now on the source's clock (not another time base)"
            assert timing.display_period_ns > 0 and timing.missed_frames >= 0
            case.source.read(timing)
            timings.append(timing)
    ids = [t.frame_id for t in timings]
    displays = [t.predicted_display_time_ns for t in timings]
    assert all(b > a for a, b in zip(ids, ids[1:])), ids
    assert all(b > a for a, b in zip(displays, displays[1:])), displays


@each_source()
def test_a_pacing_source_blocks_to_its_display_period(case):
    if not case.source.paces_display:
        pytest.skip("the frame loop's DisplayClock paces this source")
    with case.source:
        timings = [timing for timing, _ in frames(case, 10)]
    for before, after in zip(timings, timings[1:]):
        period = after.display_period_ns
        assert abs((after.wake_time_ns - before.wake_time_ns) - period) <= period // 100, \
            "wait_frame released the loop once per display period"
        assert abs((after.predicted_display_time_ns - before.predicted_display_time_ns) - period) <= period // 100, \
            "an unhurried loop is shown at every refresh"


@each_source()
def test_read_gives_the_frame_for_the_timing_sampled_during_that_frame(case):
    with case.source:
        for timing, frame in frames(case, 12):
            assert isinstance(frame, TrackingFrame)
            assert frame.frame_id == timing.frame_id
            assert frame.predicted_display_time_ns == timing.predicted_display_time_ns, \
                "head and hands predicted for the timing's display time"
            assert timing.wake_time_ns <= frame.sample_time_ns <= case.clock.now_ns(), \
                "sampled after the loop woke for the frame, and not in the future"
            assert frame.sample_time_ns <= frame.predicted_display_time_ns


@each_source()
def test_frames_are_valid_messages_with_26_joint_hands(case):
    with case.source:
        for _, frame in frames(case, 12):
            wire = decode(encode(frame), expected=TrackingFrame)  # validates everything a bus hop would
            assert wire.model_dump_json() == frame.model_dump_json()
            assert frame.head_tracked
            assert np.isfinite(frame.head.position).all()
            assert np.linalg.norm(frame.head.orientation) == pytest.approx(1.0, abs=1e-6)
            for side in ("left", "right"):
                hand = getattr(frame, f"{side}_hand")
                assert hand is not None, f"every source here tracks hands; no {side} hand"
                assert hand.hand == side
                assert hand.positions.shape == (HAND_JOINT_COUNT, 3)
                assert hand.orientations.shape == (HAND_JOINT_COUNT, 4)
                assert hand.radii.shape == hand.location_flags.shape == (HAND_JOINT_COUNT,)
                assert np.isfinite(hand.positions).all() and np.isfinite(hand.orientations).all()


@each_source()
def test_frame_ids_and_sample_times_increase_along_the_stream(case):
    order = StreamOrder(case.name)
    with case.source:
        stream = [order.check(frame) for _, frame in frames(case, 20)]
    displays = [frame.predicted_display_time_ns for frame in stream]
    assert all(b > a for a, b in zip(displays, displays[1:]))


@each_source()
def test_read_returns_none_once_the_source_has_ended_and_stays_ended(case):
    order = StreamOrder(case.name)
    with case.source:
        frames(case, 3)
        case.finish()
        for _ in range(MAX_FRAMES):
            timing, frame = case.frame()
            if frame is None:
                break
            order.check(frame)
        else:
            pytest.fail(f"{case.name} did not end within {MAX_FRAMES} frames")
        for _ in range(3):
            timing = case.timing()
            assert isinstance(timing, FrameTiming), "the loop may still wait once the source has ended"
            assert case.source.read(timing) is None


@each_source()
def test_leaving_never_swallows_the_loops_error_and_may_be_repeated(case):
    with pytest.raises(RuntimeError, match="the loop failed"):
        with case.source:
            case.frame()
            raise RuntimeError("the loop failed")
    case.released()
    assert not case.source.__exit__(None, None, None), "a second exit is harmless"
    case.released()


@each_source()
def test_leaving_in_the_middle_of_a_frame_gives_back_what_entering_took(case):
    with case.source:
        case.frame()
        case.timing()  # the loop stops between wait_frame and read
    case.released()


@each_source(only=("openxr",))
def test_nan_poses_from_the_runtime_become_lost_tracking_not_invalid_frames(case):
    with case.source:
        _, good = frames(case, 2)[-1]
        assert good.head_tracked and good.left_hand.tracked.all()
        case.runtime.bad_poses = True
        _, lost = frames(case, 1)[0]
        decode(encode(lost), expected=TrackingFrame)
        assert not lost.head_tracked
        assert np.isfinite(lost.head.position).all()
        for hand in (lost.left_hand, lost.right_hand):
            assert hand.location_flags[BAD_JOINT] == 0, "the NaN joint's flags are cleared"
            assert np.isfinite(hand.positions).all()
            assert hand.tracked.sum() == HAND_JOINT_COUNT - 1, "the other joints stay tracked"
        case.runtime.bad_poses = False
        _, regained = frames(case, 1)[0]
        assert regained.head_tracked and regained.left_hand.tracked.all()

"""Every tracking source keeps the :class:`~genxr.xr_runtime.sources.TrackingSource` contract.

One suite, run against the simulated user, a recording replayed at its original timing and
as fast as read, and the OpenXR source on the spec-enforcing fake runtime
(:mod:`tests.helpers.fake_openxr`, extended here with what tracking needs: reference
spaces, hand trackers, ``xrLocateSpace``, ``xrLocateHandJointsEXT`` and the timespec
conversions, on its own XrTime base). All run on a :class:`ManualClock`, so nothing here
depends on how fast the machine is.

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

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
import xr

from genxr.platform.clock import NS_PER_S, ManualClock
from genxr.platform.messages import HAND_JOINT_COUNT, StreamOrder, TrackingFrame, decode, encode
from genxr.xr_runtime.openxr.convert import FULLY_LOCATED
from genxr.xr_runtime.openxr.source import OpenXRSource
from genxr.xr_runtime.recording.writer import Recorder
from genxr.xr_runtime.replay_source import ReplaySource
from genxr.xr_runtime.sim_source import SimulatedSource
from genxr.xr_runtime.sources import TrackingSource
from genxr.xr_runtime.timing import DisplayClock, FrameTiming
from tests.helpers.fake_openxr import PERIOD_NS, FakeRuntime, address, handle

START_NS = 10 * NS_PER_S
"""Where every source's clock starts (recordings are made on another clock, starting at 1 s)."""
XR_TIME_OFFSET_NS = 3 * NS_PER_S
"""The fake runtime's XrTime is the genxr time minus this: a source that forgets to convert is off by 3 s."""
RECORDED_FRAMES = 40
MAX_FRAMES = 400
"""More frames than any source here has before it ends."""
VIEW_SPACE = 0x31
BAD_JOINT = 9


def to_xr(genxr_ns: int) -> int:
    return genxr_ns - XR_TIME_OFFSET_NS


def from_xr(xr_time: int) -> int:
    return int(xr_time) + XR_TIME_OFFSET_NS


# -- the OpenXR runtime side of tracking ------------------------------------------------------------


class TrackingRuntime(FakeRuntime):
    """:class:`FakeRuntime` (frames, call order, views) plus tracking: it throttles ``xrWaitFrame``
    to one display period on ``clock`` (the frame's wake time is one period before its predicted
    display time), locates the head and the hands only at the open frame's predicted display time
    (anything else is a violation), and poses go NaN while ``bad_poses`` is set."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self.clock = clock
        self.predicted_ns = to_xr(clock.now_ns())
        self.bad_poses = False
        self.trackers: list[int] = []
        self.destroyed_trackers: list[int] = []
        self.context_exits = 0
        self.violations: list[str] = []
        """Spec violations seen where raising is impossible (inside a C callback)."""
        self._locate_hand = xr.PFN_xrLocateHandJointsEXT(self._locate_hand_joints)  # kept alive here

    # frames: a runtime that blocks to its display
    def wait_frame(self, session, frame_wait_info=None):
        self.predicted_ns = max(self.predicted_ns, to_xr(self.clock.now_ns()))
        state = super().wait_frame(session, frame_wait_info)
        self.clock.sleep_until_ns(from_xr(self.predicted_ns) - PERIOD_NS)
        return state

    # instance, system, spaces, trackers
    def get_system_properties(self, instance, system_id):
        return xr.SystemProperties(system_id=system_id, system_name="genxr fake headset")

    def get_instance_properties(self, instance):
        return xr.InstanceProperties(runtime_name="genxr fake runtime")

    def xrGetSystemProperties(self, instance, system_id, properties_ref):  # noqa: N802 - the raw function's name
        chained = ctypes.cast(properties_ref._obj.next, ctypes.POINTER(xr.SystemHandTrackingPropertiesEXT))
        chained.contents.supports_hand_tracking = True
        return xr.Result.SUCCESS

    def create_reference_space(self, session, create_info):
        kind = xr.ReferenceSpaceType(create_info.reference_space_type)
        return handle(xr.Space, VIEW_SPACE) if kind == xr.ReferenceSpaceType.VIEW else self.space

    def create_hand_tracker_ext(self, session, create_info):
        value = 0x40 + int(create_info.hand)
        self.trackers.append(value)
        return handle(xr.HandTrackerEXT, value)

    def destroy_hand_tracker_ext(self, tracker):
        self.destroyed_trackers.append(address(tracker))

    def get_instance_proc_addr(self, instance, name):
        assert name == "xrLocateHandJointsEXT", name
        return self._locate_hand

    # time
    def convert_timespec_time_to_time_khr(self, instance, spec):
        return to_xr(spec.tv_sec * NS_PER_S + spec.tv_nsec)

    def convert_time_to_timespec_time_khr(self, instance, xr_time):
        ns = from_xr(xr_time)
        return xr.timespec(tv_sec=ns // NS_PER_S, tv_nsec=ns % NS_PER_S)

    # tracking
    def _check_time(self, what: str, xr_time: int) -> None:
        if self.frame != "begun":
            raise AssertionError(f"{what} outside a frame (frame {self.frame})")
        if int(xr_time) != self.predicted_ns:
            raise AssertionError(f"{what} at XrTime {int(xr_time)}, not the frame's predicted display time "
                                 f"{self.predicted_ns}")

    def _posef(self, x: float, bad: bool) -> xr.Posef:
        position = xr.Vector3f(float("nan") if bad else x, 1.6, -0.3)
        return xr.Posef(orientation=xr.Quaternionf(0.0, 0.0, 0.0, 1.0), position=position)

    def locate_space(self, space, base_space, time):
        assert address(space) == VIEW_SPACE and address(base_space) == address(self.space), "VIEW in the reference"
        self._check_time("xrLocateSpace", time)
        moved = (self.predicted_ns % NS_PER_S) / NS_PER_S  # the head moves with time
        location = xr.SpaceLocation(pose=self._posef(0.1 * moved, self.bad_poses))
        location.location_flags = FULLY_LOCATED
        return location

    def _locate_hand_joints(self, tracker, info, locations) -> int:
        try:
            info, locations = info.contents, locations.contents
            if address(tracker) not in self.trackers or address(tracker) in self.destroyed_trackers:
                raise AssertionError(f"xrLocateHandJointsEXT with tracker {address(tracker)}")
            assert address(info.base_space) == address(self.space), "hands located in the reference space"
            self._check_time("xrLocateHandJointsEXT", info.time)
            if locations.joint_count != HAND_JOINT_COUNT:
                raise AssertionError(f"xrLocateHandJointsEXT with {locations.joint_count} joints")
            locations.is_active = True
            for index in range(HAND_JOINT_COUNT):
                joint = locations._joint_locations[index]
                joint.pose = self._posef(0.01 * index, self.bad_poses and index == BAD_JOINT)
                joint.radius = 0.01
                joint.location_flags = FULLY_LOCATED
            return int(xr.Result.SUCCESS)
        except Exception as err:  # an exception cannot cross the C callback: record it, fail the call
            self.violations.append(f"{type(err).__name__}: {err}")
            return int(xr.Result.ERROR_RUNTIME_FAILURE)


class XrFunctions:
    """The ``xr`` module as the source sees it: pyopenxr's structs and enums, the runtime's
    functions answered by the fake (no real runtime is ever called with its fake handles)."""

    RUNTIME = frozenset({
        "poll_event", "begin_session", "end_session", "wait_frame", "begin_frame", "end_frame", "locate_views",
        "get_system_properties", "get_instance_properties", "create_reference_space", "create_hand_tracker_ext",
        "destroy_hand_tracker_ext", "get_instance_proc_addr", "locate_space",
        "convert_timespec_time_to_time_khr", "convert_time_to_timespec_time_khr",
    })

    def __init__(self, runtime: TrackingRuntime) -> None:
        self._runtime = runtime
        self.raw_functions = SimpleNamespace(xrGetSystemProperties=runtime.xrGetSystemProperties)

    def __getattr__(self, name: str):
        return getattr(self._runtime if name in self.RUNTIME else xr, name)


class FakeGraphicsContext:
    """Stands for pyopenxr's EGL ``ContextObject``, which owns (and on exit destroys) the session."""

    def __init__(self, runtime: TrackingRuntime) -> None:
        self.runtime = runtime

    def __exit__(self, *exc: object) -> None:
        self.runtime.context_exits += 1


class FakeHeadsetSource(OpenXRSource):
    """The OpenXR source with a graphics session on the fake runtime. Only what needs a real
    loader is replaced (creating the instance and the EGL session); everything after the runtime
    hands them over - ``_after_session`` (system properties, spaces, hand trackers, the frame
    cycle), ``wait_frame``, ``read`` and ``__exit__`` - is the real code."""

    def __init__(self, runtime: TrackingRuntime, **kwargs) -> None:
        super().__init__(**kwargs)
        self.runtime = runtime

    def __enter__(self) -> FakeHeadsetSource:
        self._xr = XrFunctions(self.runtime)
        self._gl_context = FakeGraphicsContext(self.runtime)
        self._instance, self._session = self.runtime.instance, self.runtime.session
        self._after_session(1, ["XR_EXT_hand_tracking", "XR_KHR_convert_timespec_time"], headless=False)
        self.runtime.queue("READY", "SYNCHRONIZED", "VISIBLE", "FOCUSED")  # as a runtime does once a session exists
        return self


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

    def released() -> None:
        assert runtime.frame == "none", "the frame wait_frame opened was ended"
        assert sorted(runtime.destroyed_trackers) == sorted(runtime.trackers) and len(runtime.trackers) == 2
        assert runtime.context_exits == 1, "the session (owned by the graphics context) was closed once"

    return Case("openxr", clock, FakeHeadsetSource(runtime, clock=clock, fallback_rate_hz=90.0),
                finish=lambda: runtime.queue("STOPPING", "IDLE", "EXITING"), released=released, runtime=runtime)


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

"""Issue #18, D8: a tracking stream's frame ids and sample times strictly increase
(``StreamOrder``). A recording whose frames go backwards or repeat is refused by the replay
source, naming the frame, before anything plays or is re-recorded; the frame loop refuses such
frames from any source and keeps what it passes on (requests, the recording) in order."""

from __future__ import annotations

import pytest

from genxr.platform.bus import InProcessBus
from genxr.platform.clock import ManualClock
from genxr.platform.messages import Pose, StreamOrder, TrackingFrame
from genxr.platform.units import NS_PER_S
from genxr.xr_runtime.recording.format import RecordingError
from genxr.xr_runtime.recording.reader import read_recording
from genxr.xr_runtime.recording.writer import Recorder
from genxr.xr_runtime.replay_source import ReplaySource
from genxr.xr_runtime.timing import DisplayClock, FrameTiming
from tests.helpers.frame_loop import WORLD, TurningHead, answer, make_loop
from tests.helpers.tracking import PERIOD_NS, paced_frames

HALF_SECOND_NS = NS_PER_S // 2


def write(folder, frames: list[TrackingFrame]) -> None:
    clock = ManualClock(start_ns=1_000_000)
    with Recorder(folder, clock=clock) as recorder:
        for frame in frames:
            recorder.add_frame(frame)
            clock.advance_ns(PERIOD_NS)


def shifted(frame: TrackingFrame, ns: int) -> TrackingFrame:
    return frame.model_copy(update={"sample_time_ns": frame.sample_time_ns + ns,
                                    "predicted_display_time_ns": frame.predicted_display_time_ns + ns})


def backwards_recording(count: int = 60, at: int = 50) -> list[TrackingFrame]:
    """``count`` frames whose sample times jump 0.5 s back at frame ``at`` (ids still increase)."""
    frames = paced_frames(count)
    return frames[:at] + [shifted(f, -HALF_SECOND_NS) for f in frames[at:]]


def replay_all(source: ReplaySource) -> list[TrackingFrame]:
    played = []
    with source:
        while (frame := source.read(source.wait_frame())) is not None:
            played.append(frame)
    return played


@pytest.mark.parametrize("timing", ["original", "fast"])
def test_a_recording_that_jumps_back_half_a_second_is_refused_naming_the_frame(tmp_path, timing):
    frames = backwards_recording()
    write(tmp_path / "rec", frames)
    source = ReplaySource(tmp_path / "rec", timing=timing, clock=ManualClock(start_ns=10 * NS_PER_S))
    with pytest.raises(RecordingError) as excinfo:
        replay_all(source)
    message = str(excinfo.value)
    assert str(tmp_path / "rec") in message
    assert "tracking frame 50" in message and "frame_id 50" in message
    assert f"sample_time_ns {frames[50].sample_time_ns}" in message
    assert f"past {frames[49].sample_time_ns} of frame 49" in message


def test_a_recording_with_a_repeated_frame_id_is_refused(tmp_path):
    frames = paced_frames(10)
    frames[6] = frames[6].model_copy(update={"frame_id": 5})
    write(tmp_path / "rec", frames)
    with pytest.raises(RecordingError, match=r"tracking frame 6 \(frame_id 5.*frame_id 5 does not increase past 5"):
        replay_all(ReplaySource(tmp_path / "rec", clock=ManualClock()))


def test_a_refused_recording_plays_nothing_and_nothing_is_re_recorded(tmp_path):
    write(tmp_path / "rec", backwards_recording())
    clock = ManualClock()
    with InProcessBus() as bus:
        bus.serve(WORLD, answer)
        with Recorder(tmp_path / "again", clock=clock) as recorder:
            loop, sink = make_loop(ReplaySource(tmp_path / "rec", clock=clock), bus, clock,
                                   on_frame=recorder.add_frame)
            with pytest.raises(RecordingError, match="tracking frame 50"):
                with loop.source:
                    loop.run()
    assert sink.count == 0
    assert read_recording(tmp_path / "again").frames == []


def test_an_ordered_recording_still_replays_every_frame(tmp_path):
    frames = paced_frames(12)
    write(tmp_path / "rec", frames)
    played = replay_all(ReplaySource(tmp_path / "rec", timing="fast", clock=ManualClock()))
    assert [f.frame_id for f in played] == [f.frame_id for f in frames]
    order = StreamOrder()
    for frame in played:
        order.check(frame)


# --- the frame loop, the consumer of every source ----------------------------------------------


class UnorderedHead(TurningHead):
    """A :class:`TurningHead` (the loop's display clock paces it) whose frame ``repeat_at`` repeats
    the previous frame id and whose frame ``back_at`` is sampled half a second in the past."""

    def __init__(self, clock, frames: int, repeat_at: int, back_at: int) -> None:
        super().__init__(clock, frames)
        self.repeat_at, self.back_at = repeat_at, back_at

    def read(self, timing: FrameTiming) -> TrackingFrame | None:
        frame = super().read(timing)
        if frame is None:
            return None
        sampled = frame.sample_time_ns - (HALF_SECOND_NS if timing.frame_id == self.back_at else 0)
        return frame.model_copy(update={"frame_id": timing.frame_id - (timing.frame_id == self.repeat_at),
                                        "sample_time_ns": sampled,
                                        "predicted_display_time_ns": max(sampled, timing.predicted_display_time_ns)})


def test_the_frame_loop_refuses_frames_that_do_not_advance_and_passes_on_an_ordered_stream(tmp_path):
    clock = ManualClock(start_ns=NS_PER_S)
    passed_on = []
    with InProcessBus() as bus:
        bus.serve(WORLD, answer)
        loop, sink = make_loop(UnorderedHead(clock, frames=60, repeat_at=20, back_at=40), bus, clock,
                               on_frame=passed_on.append)
        metrics = loop.run()
    assert metrics.frames == 60 and sink.count == 60
    assert not metrics.failures, "every WorldFrameRequest built from the passed-on frames is valid"
    order = StreamOrder()
    for frame in passed_on:
        order.check(frame)
    assert [f.frame_id for f in passed_on] == list(range(60))
    assert not passed_on[20].head_tracked and not passed_on[40].head_tracked, "held in place of the refused frames"
    lost = [e.detail for e in loop.events if e.kind == "tracking_lost"]
    assert any("frame_id: frame_id 19 does not increase past the previous frame's 19" in d for d in lost)
    assert any("sample_time_ns" in d and "does not increase" in d for d in lost)


class RepeatingTimings:
    """A display-pacing source whose runtime hands out frame id 7 twice (a held frame cannot advance)."""

    paces_display = True

    def __init__(self, clock, frames: int = 20) -> None:
        self.display = DisplayClock(90.0, clock)
        self.clock, self.frames = clock, frames

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def wait_frame(self) -> FrameTiming:
        timing = self.display.wait_frame()
        return FrameTiming(timing.frame_id - (timing.frame_id > 7), timing.wake_time_ns,
                           timing.predicted_display_time_ns, timing.display_period_ns)

    def read(self, timing: FrameTiming) -> TrackingFrame | None:
        if timing.frame_id >= self.frames:
            return None
        now = self.clock.now_ns()
        return TrackingFrame(frame_id=timing.frame_id, sample_time_ns=now,
                             predicted_display_time_ns=max(now, timing.predicted_display_time_ns), head=Pose())


def test_a_frame_the_loop_cannot_keep_in_order_is_shown_but_not_passed_on():
    clock = ManualClock(start_ns=NS_PER_S)
    passed_on = []
    with InProcessBus() as bus:
        bus.serve(WORLD, answer)
        loop, sink = make_loop(RepeatingTimings(clock), bus, clock, on_frame=passed_on.append)
        metrics = loop.run()
    assert metrics.frames == 21 and sink.count == 21, "the repeated refresh is still displayed"
    assert [f.frame_id for f in passed_on] == list(range(20))
    assert not metrics.failures

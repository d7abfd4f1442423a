"""The frame loop's latency measures and study conditions on a manual clock: content age on every
frame with content (the HUD's number too), added display latency through the tracking delay line,
the warm-up request before the first frame, and the first ``warmup_s`` seconds left out of the summary."""

from __future__ import annotations

import math

import pytest

from genxr.platform.bus import InProcessBus
from genxr.platform.clock import ManualClock
from genxr.platform.tracing import Tracer
from genxr.platform.units import NS_PER_MS, NS_PER_S
from genxr.xr_runtime.frame_loop import WARM_UP_FRAME_ID, warm_up, warm_up_session_id
from genxr.xr_runtime.metrics import LoopMetrics
from tests.helpers.frame_loop import WORLD, TurningHead, answer, make_loop

PERIOD_NS = round(NS_PER_S / 90)


class ShownFrames:
    """A sink keeping every display frame."""

    name = "shown"

    def __init__(self) -> None:
        self.frames = []

    def submit(self, frame) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        return None


class AnsweredHead(TurningHead):
    """A TurningHead that reads its next frame only once the world has answered the request in
    flight (real time, at most 5 s): on a manual clock the loop would otherwise outrun the
    handler thread on a busy machine and never see an answer."""

    loop = None

    def read(self, timing):
        pending = self.loop.world.pending if self.loop is not None else None
        if pending is not None:
            pending._future.exception(timeout=5)  # waits until done, whatever the outcome
        return super().read(timing)


def test_content_age_is_measured_on_every_frame_from_the_sample_time_of_the_content_shown():
    clock = ManualClock()
    recorded, shown = [], ShownFrames()
    with InProcessBus(workers=1) as bus:
        bus.serve(WORLD, answer)
        source = AnsweredHead(clock)
        loop, _ = make_loop(source, bus, clock, on_frame=recorded.append)
        source.loop = loop
        loop.sinks.append(shown)
        metrics = loop.run(max_frames=60)
    sampled = {frame.frame_id: frame.sample_time_ns for frame in recorded}
    with_content = [frame for frame in shown.frames if frame.world_frame_id is not None]
    assert with_content, "the world answered within 60 frames"
    expected = [frame.display_time_ns - sampled[frame.world_frame_id] for frame in with_content]
    assert [frame.content_age_ns for frame in with_content] == expected, "what the HUD shows is the metric"
    assert metrics.content_age_ns == expected
    firsts = [age for index, (frame, age) in enumerate(zip(with_content, expected))
              if index == 0 or frame.world_frame_id != with_content[index - 1].world_frame_id]
    assert metrics.content_latency_ns == firsts, "content latency: the first frame showing each world frame"
    summary = metrics.summary()
    assert summary["content_age_ms_p50"] >= summary["content_latency_ms_p50"] > 0


def test_added_latency_reprojects_and_requests_with_tracking_sampled_that_long_before():
    clock = ManualClock()
    tracer = Tracer(clock=clock)
    recorded, newest_requested = [], []

    def spy(request):
        newest_requested.append(request.tracking[-1].frame_id)
        return answer(request)

    with InProcessBus(workers=1) as bus:
        bus.serve(WORLD, spy)
        loop, _ = make_loop(TurningHead(clock), bus, clock, tracer=tracer, on_frame=recorded.append,
                            added_latency_ms=100.0)
        metrics = loop.run(max_frames=60)
    delay = 9  # 100 ms at 90 Hz: 9 periods are 99.99999 ms, the sample closest to 100 ms before
    assert [frame.frame_id for frame in recorded] == list(range(60)), "the recording gets every frame at once"
    assert all(math.isclose(frame.head.orientation[1], math.sin(math.radians(frame.frame_id) / 2), abs_tol=1e-9)
               for frame in recorded), "as the source gave it"
    assert metrics.rotational_m2p_ns[:delay] == [PERIOD_NS + k * PERIOD_NS for k in range(delay)], \
        "the oldest frame until the line holds 100 ms"
    assert set(metrics.rotational_m2p_ns[delay:]) == {PERIOD_NS + delay * PERIOD_NS}
    composites = [span for span in tracer.spans() if span.name == "composite"]
    assert [span.source_frame_ids[0] for span in composites] == [max(0, k - delay) for k in range(60)]
    sent_at = [span.frame_id for span in tracer.spans() if span.name == "request world_model"]
    assert newest_requested and all(newest == max(0, k - delay) for k, newest in zip(sent_at, newest_requested))


def test_without_added_latency_the_newest_frame_is_used():
    clock = ManualClock()
    with InProcessBus(workers=1) as bus:
        bus.serve(WORLD, answer)
        loop, _ = make_loop(TurningHead(clock), bus, clock)
        metrics = loop.run(max_frames=20)
    assert set(metrics.rotational_m2p_ns) == {PERIOD_NS}


def test_the_first_warmup_seconds_are_shown_but_left_out_of_the_summary():
    clock = ManualClock()
    recorded = []
    with InProcessBus(workers=1) as bus:
        bus.serve(WORLD, answer)
        loop, sink = make_loop(TurningHead(clock), bus, clock, on_frame=recorded.append, warmup_s=0.5)
        metrics = loop.run(max_frames=90)
    warm = math.ceil(0.5 * NS_PER_S / PERIOD_NS)  # frames woken before 0.5 s
    summary = metrics.summary()
    assert sink.count == len(recorded) == metrics.frames == 90, "warm-up frames are displayed and recorded"
    assert summary["warmup_frames"] == warm and summary["frames"] == 90 - warm
    # the run's time from the first measured frame's wake-up to the last one's (the loop stops there)
    assert summary["duration_s"] == (89 - warm) * PERIOD_NS / NS_PER_S


def test_a_run_ending_within_its_warmup_measures_nothing():
    clock = ManualClock()
    with InProcessBus(workers=1) as bus:
        bus.serve(WORLD, answer)
        loop, _ = make_loop(TurningHead(clock), bus, clock, warmup_s=5.0)
        summary = loop.run(max_frames=30).summary()
    assert summary["frames"] == 0 and summary["warmup_frames"] == 30
    assert summary["frame_time_ms_p50"] is None and summary["deadline_miss_rate"] == 0.0


def test_end_warmup_leaves_earlier_samples_counts_and_time_out_of_the_summary():
    metrics = LoopMetrics(frames=10, missed_frames=5, world_updates=3, timeouts={"world_model": 2},
                          frame_time_ns=[90 * NS_PER_MS] * 10, rotational_m2p_ns=[500 * NS_PER_MS] * 10)
    metrics.end_warmup(elapsed_ns=NS_PER_S)
    metrics.frames += 20
    metrics.missed_frames += 1
    metrics.world_updates += 6
    metrics.timeouts["world_model"] += 1
    metrics.timeouts["avatar"] = 1
    metrics.frame_time_ns += [5 * NS_PER_MS] * 20
    metrics.rotational_m2p_ns += [11 * NS_PER_MS] * 20
    metrics.duration_ns = 3 * NS_PER_S
    summary = metrics.summary()
    assert summary["frames"] == 20 and summary["warmup_frames"] == 10 and summary["duration_s"] == 2.0
    assert summary["frame_time_ms_p99"] == 5.0 and summary["rotational_m2p_ms_p50"] == 11.0
    assert summary["deadline_miss_rate"] == 1 / 21 and summary["world_model_hz"] == 3.0
    assert summary["timeouts"] == {"world_model": 1, "avatar": 1}
    assert len(metrics.frame_time_ns) == 30, "the HUD still reads every frame"


def test_warm_up_asks_each_service_once_under_its_own_session_id():
    clock = ManualClock(start_ns=5 * NS_PER_S)
    tracer = Tracer(clock=clock)
    asked = []

    def spy(request):
        asked.append(request)
        return answer(request)

    with InProcessBus(tracer=tracer) as bus:
        bus.serve(WORLD, spy)
        result = warm_up(bus, clock, tracer, "trial-7", world_service=WORLD)
    assert [request.session_id for request in asked] == [warm_up_session_id("trial-7")] != ["trial-7"]
    assert asked[0].tracking[0].frame_id == WARM_UP_FRAME_ID and asked[0].tracking[0].sample_time_ns == 5 * NS_PER_S
    assert result == {"world_model": {"ms": 0.0, "error": None}}
    assert [span.name for span in tracer.spans()] == ["serve world_model", "warm_up world_model"]
    assert len(warm_up_session_id("x" * 128)) <= 128


def test_a_failing_warm_up_is_reported_not_raised():
    def broken(request):
        raise RuntimeError("no weights")

    clock = ManualClock()
    with InProcessBus() as bus:
        bus.serve(WORLD, broken)
        result = warm_up(bus, clock, Tracer(clock=clock), "s", world_service=WORLD)
    assert "no weights" in result["world_model"]["error"]


@pytest.mark.parametrize("field, value", [("added_latency_ms", -1.0), ("added_latency_ms", math.nan),
                                          ("added_latency_ms", 1001.0), ("warmup_s", -0.5),
                                          ("warmup_s", math.inf)])
def test_bad_loop_settings_are_refused_naming_them(field, value):
    clock = ManualClock()
    with InProcessBus() as bus, pytest.raises(ValueError, match=field):
        make_loop(TurningHead(clock), bus, clock, **{field: value})

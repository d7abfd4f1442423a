"""The simulated user as a live source: paced by its own schedule, one refresh of
prediction, overruns skip refreshes without breaking the world, scripts loop on."""

from __future__ import annotations

from genxr.platform.clock import ManualClock
from genxr.platform.messages import StreamOrder
from genxr.xr_runtime.sim_source import SimulatedSource
from genxr.xr_runtime.sources import TrackingSource


def test_is_a_tracking_source_paced_on_its_own_schedule():
    clock = ManualClock(start_ns=1_000)
    with SimulatedSource(behaviour="idle", seed=1, rate_hz=90.0, clock=clock) as source:
        assert isinstance(source, TrackingSource)
        order = StreamOrder()
        for expected in range(5):
            timing = source.wait_frame()
            frame = order.check(source.read(timing))
            assert frame.frame_id == expected == timing.frame_id
            assert clock.now_ns() == frame.sample_time_ns
            assert frame.predicted_display_time_ns - frame.sample_time_ns == round(1e9 / 90)
        assert source.latest.frame.frame_id == 4, "ground truth of the newest frame is at hand"


def test_overrun_skips_refreshes_but_keeps_the_world_stepping():
    clock = ManualClock()
    with SimulatedSource(behaviour="idle", seed=2, rate_hz=100.0, clock=clock) as source:
        source.read(source.wait_frame())
        clock.advance_ns(55_000_000)  # the loop stalled for 5.5 refreshes
        timing = source.wait_frame()
        frame = source.read(timing)
    assert timing.missed_frames == 4 and frame.frame_id == 5
    assert frame.sample_time_ns >= clock.now_ns() - 10_000_000


def test_script_loops_with_the_next_seed_and_ids_keep_increasing():
    clock = ManualClock()
    with SimulatedSource(behaviour="idle", seed=3, rate_hz=30.0, clock=clock) as source:
        first_length = source.user.frame_count
        order = StreamOrder()
        for _ in range(first_length + 3):
            frame = order.check(source.read(source.wait_frame()))
        assert source.user.seed == 4 and frame.frame_id == first_length + 2


def test_without_looping_the_source_ends():
    clock = ManualClock()
    with SimulatedSource(behaviour="idle", seed=3, rate_hz=30.0, clock=clock, loop=False) as source:
        frames = []
        while (frame := source.read(source.wait_frame())) is not None:
            frames.append(frame)
        assert len(frames) == source.user.frame_count

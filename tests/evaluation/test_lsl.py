"""A session is published over Lab Streaming Layer with its own timestamps: tracking,
latency spans and events arrive at real LSL inlets as recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genxr.evaluation.lsl import TRACKING_CHANNELS, LslPublisher, follow_session
from genxr.platform.clock import ManualClock
from genxr.platform.messages import SessionEvent
from genxr.platform.tracing import Tracer
from genxr.xr_runtime.recording.writer import Recorder
from tests.helpers.tracking import two_handed_frame

pylsl = pytest.importorskip("pylsl")


def test_a_finished_session_arrives_at_lsl_inlets_with_its_own_timestamps(tmp_path):
    clock = ManualClock(start_ns=5_000_000_000)
    tracer = Tracer(clock=clock)
    frames = []
    with Recorder(tmp_path / "recording", clock=clock) as recorder:
        recorder.add_event(SessionEvent(session_id="s", time_ns=clock.now_ns(), kind="started", detail="sim"))
        for i in range(40):
            frame = two_handed_frame(i).model_copy(update={"sample_time_ns": clock.now_ns(),
                                                          "predicted_display_time_ns": clock.now_ns() + 1})
            frames.append(frame)
            recorder.add_frame(frame)
            with tracer.span("composite", track="compositor", frame_id=i):
                clock.advance_ns(2_000_000)
            clock.advance_ns(9_111_111)
    tracer.write_chrome_trace(tmp_path / "trace.json")

    publisher = LslPublisher(f"test-{tmp_path.name}")
    inlets = {}
    for stream in ("tracking", "latency", "events"):
        found = pylsl.resolve_byprop("source_id", f"genxr-test-{tmp_path.name}-{stream}", timeout=10)
        assert found, f"the {stream} outlet is discoverable"
        inlets[stream] = pylsl.StreamInlet(found[0])
        inlets[stream].open_stream(timeout=10)
    assert publisher.wait_for_consumers(10)
    assert follow_session(tmp_path, publisher) == {"tracking": 40, "latency": 40, "events": 1}

    def pull(stream, count):
        samples, stamps = [], []
        while len(samples) < count:
            sample, stamp = inlets[stream].pull_sample(timeout=10.0)
            assert sample is not None, f"{stream}: {len(samples)} of {count} samples arrived"
            samples.append(sample)
            stamps.append(stamp)
        return samples, stamps

    tracking, stamps = pull("tracking", 40)
    assert inlets["tracking"].info().channel_count() == len(TRACKING_CHANNELS)
    assert stamps == pytest.approx([f.sample_time_ns / 1e9 for f in frames], abs=1e-6)
    assert np.allclose([s[TRACKING_CHANNELS.index("right_index_tip_x")] for s in tracking],
                       [float(f.right_hand.positions[10, 0]) for f in frames], atol=1e-6)
    spans, span_stamps = pull("latency", 40)
    first = json.loads(spans[0][0])
    assert first == {"name": "composite", "track": "compositor", "dur_ms": pytest.approx(2.0), "frame_id": 0}
    assert span_stamps[0] == pytest.approx(5.0)
    events, _ = pull("events", 1)
    assert events == [["started: sim"]]

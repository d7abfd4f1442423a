"""Recordings lose nothing on a crash, report damage instead of hiding it, and replay at
their original timing or as fast as possible."""

from __future__ import annotations

import json

import pytest

from genxr.evaluation.benchmarks.bus import two_handed_frame
from genxr.platform.clock import ManualClock
from genxr.platform.messages import SessionEvent, TrackingFrame
from genxr.xr_runtime.recording import (
    EVENTS_FILE,
    MANIFEST_FILE,
    TRACKING_FILE,
    Recorder,
    RecordingError,
    ReplaySource,
    read_recording,
)

PERIOD = 11_111_111


def frames(count: int) -> list[TrackingFrame]:
    out = []
    for i in range(count):
        frame = two_handed_frame(i)
        out.append(frame.model_copy(update={"sample_time_ns": 1_000_000 + i * PERIOD,
                                            "predicted_display_time_ns": 1_000_000 + i * PERIOD + 2 * PERIOD}))
    return out


def record(folder, count: int = 10) -> list[TrackingFrame]:
    recorded = frames(count)
    with Recorder(folder, metadata={"source": "test"}) as recorder:
        for frame in recorded:
            recorder.add_frame(frame)
        recorder.add_event(SessionEvent(session_id="s", time_ns=5, kind="tracking_lost", detail="left"))
    return recorded


def test_round_trip_is_exact_and_the_manifest_says_complete(tmp_path):
    recorded = record(tmp_path / "rec")
    recording = read_recording(tmp_path / "rec")
    assert recording.complete and not recording.notes
    assert [f.model_dump_json() for f in recording.frames] == [f.model_dump_json() for f in recorded]
    assert recording.events[0].kind == "tracking_lost"
    manifest = json.loads((tmp_path / "rec" / MANIFEST_FILE).read_text())
    assert manifest == {"complete": True, "source": "test", "tracking_frames": 10, "events": 1, "ended_by": None}


def test_a_crash_mid_session_keeps_every_whole_frame(tmp_path):
    folder = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        with Recorder(folder) as recorder:
            for frame in frames(5):
                recorder.add_frame(frame)
            raise KeyboardInterrupt
    recording = read_recording(folder)
    assert len(recording.frames) == 5
    assert recording.manifest["ended_by"] == "KeyboardInterrupt"


def test_half_written_last_record_is_reported_and_skipped(tmp_path):
    folder = tmp_path / "torn"
    record(folder, count=6)
    path = folder / TRACKING_FILE
    data = path.read_bytes()
    path.write_bytes(data[:-50])  # the process died while writing the last frame
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    (folder / MANIFEST_FILE).write_text(json.dumps({**manifest, "complete": False}))
    recording = read_recording(folder)
    assert len(recording.frames) == 5
    assert recording.truncated_bytes > 0 and not recording.complete
    assert any("half-written" in note for note in recording.notes)
    assert any("did not close cleanly" in note for note in recording.notes)


def test_corrupt_record_in_the_middle_names_the_byte_offset(tmp_path):
    folder = tmp_path / "corrupt"
    record(folder, count=3)
    path = folder / TRACKING_FILE
    data = bytearray(path.read_bytes())
    data[10:30] = b"\xc1" * 20
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingError, match=r"record at byte 0 is corrupt"):
        read_recording(folder)


def test_not_a_recording_and_unwritable_folder_fail_clearly(tmp_path):
    with pytest.raises(RecordingError, match="tracking.msgpack is missing"):
        read_recording(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="cannot write the recording folder"):
        with Recorder(blocker / "rec"):
            pass


def test_unreadable_event_line_is_skipped_with_a_note(tmp_path):
    folder = tmp_path / "rec"
    record(folder, count=2)
    with open(folder / EVENTS_FILE, "a") as handle:
        handle.write('{"session_id": "s", "ti')
    recording = read_recording(folder)
    assert len(recording.events) == 1
    assert any(":2: skipped an unreadable event" in note for note in recording.notes)


def test_replay_at_original_timing_paces_by_recorded_times(tmp_path):
    recorded = record(tmp_path / "rec", count=4)
    clock = ManualClock(start_ns=50_000_000_000)
    with ReplaySource(tmp_path / "rec", clock=clock) as source:
        replayed = []
        while (frame := source.read(source.wait_frame())) is not None:
            replayed.append((clock.now_ns(), frame))
    assert [f.frame_id for _, f in replayed] == [f.frame_id for f in recorded]
    starts = [t for t, _ in replayed]
    assert [b - a for a, b in zip(starts, starts[1:])] == [PERIOD] * 3, "the clock slept one period per frame"
    offset = replayed[0][1].sample_time_ns - recorded[0].sample_time_ns
    assert all(f.sample_time_ns - r.sample_time_ns == offset for (_, f), r in zip(replayed, recorded))


def test_replay_fast_does_not_wait_and_stays_monotonic(tmp_path):
    record(tmp_path / "rec", count=5)
    clock = ManualClock(start_ns=7)
    with ReplaySource(tmp_path / "rec", timing="fast", clock=clock) as source:
        times = []
        while (frame := source.read(source.wait_frame())) is not None:
            times.append(frame.sample_time_ns)
            clock.advance_ns(PERIOD * 3)  # a slow loop: replay re-stamps instead of lagging
    assert len(times) == 5 and clock.now_ns() == 7 + 15 * PERIOD
    assert times == sorted(set(times))


def test_replay_of_an_empty_recording_and_bad_timing_are_refused(tmp_path):
    with Recorder(tmp_path / "empty"):
        pass
    with pytest.raises(RecordingError, match="no tracking frames"):
        with ReplaySource(tmp_path / "empty"):
            pass
    with pytest.raises(ValueError, match="timing must be 'original' or 'fast'"):
        ReplaySource(tmp_path, timing="slow")

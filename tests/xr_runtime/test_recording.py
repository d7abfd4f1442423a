"""Recordings lose at most the last flush interval on a crash or SIGKILL, report damage
instead of hiding it, are repaired without dropping intact chunks, and replay at their
original timing or as fast as possible."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from genxr.platform.clock import ManualClock
from genxr.platform.messages import DisplayFrame, SessionEvent, TrackingFrame
from genxr.xr_runtime.recording.format import CHUNKS_FILE, HEADER_BYTES, MANIFEST_FILE, RecordingError, scan_chunks
from genxr.xr_runtime.recording.reader import read_recording, recover_recording, tail_recording, verify_recording
from genxr.xr_runtime.recording.writer import Recorder
from genxr.xr_runtime.replay_source import ReplaySource
from tests.helpers.tracking import PERIOD_NS, paced_frames

PERIOD = PERIOD_NS
ROOT = Path(__file__).resolve().parents[2]
"""The repository root: the recorder's child processes import the test helpers from it."""


def record(folder, count: int = 10, clock: ManualClock | None = None) -> list[TrackingFrame]:
    """Records ``count`` frames one display period apart on ``clock`` (a chunk every 0.5 s = 45 frames)."""
    clock = clock or ManualClock(start_ns=1_000_000)
    recorded = paced_frames(count)
    with Recorder(folder, metadata={"source": "test"}, clock=clock) as recorder:
        for frame in recorded:
            recorder.add_frame(frame)
            clock.advance_ns(PERIOD)
        recorder.add_event(SessionEvent(session_id="s", time_ns=5, kind="tracking_lost", detail="left"))
    return recorded


def test_round_trip_is_exact_and_the_manifest_says_complete(tmp_path):
    recorded = record(tmp_path / "rec", count=100)
    recording = read_recording(tmp_path / "rec")
    assert recording.complete and not recording.notes
    assert [f.model_dump_json() for f in recording.frames] == [f.model_dump_json() for f in recorded]
    assert recording.events[0].kind == "tracking_lost"
    assert recording.chunks == 3, "0.5 s of session time per chunk: 45 + 45 + the rest at close"
    manifest = json.loads((tmp_path / "rec" / MANIFEST_FILE).read_text())
    assert manifest == {"complete": True, "source": "test", "tracking_frames": 100, "events": 1, "chunks": 3,
                        "ended_by": None}


def test_images_are_a_second_stream_of_the_same_recording(tmp_path):
    clock = ManualClock()
    with Recorder(tmp_path / "rec", clock=clock) as recorder:
        for i in range(3):
            recorder.add_frame(paced_frames(3)[i])
            recorder.add_image(DisplayFrame(frame_id=i, display_time_ns=i, image=np.full((64, 64, 3), i, np.uint8)))
    recording = read_recording(tmp_path / "rec")
    assert [f.frame_id for f in recording.frames] == [0, 1, 2]
    assert [int(image.image[0, 0, 0]) for image in recording.images] == [0, 1, 2]
    assert recording.manifest["images"] == 3


def test_chunks_are_fsynced_at_least_every_flush_interval(tmp_path):
    clock = ManualClock()
    with Recorder(tmp_path / "rec", clock=clock, flush_interval_s=1.0) as recorder:
        for frame in paced_frames(200):
            recorder.add_frame(frame)
            clock.advance_ns(PERIOD)
            on_disk = verify_recording(tmp_path / "rec").records
            assert recorder.frames - on_disk <= 91, "never more than one second (90 periods) only in memory"
        assert recorder.fsync_ns > 0 and recorder.chunks == 2
    with pytest.raises(ValueError, match=r"flush_interval_s must be in \(0, 1\] seconds"):
        Recorder(tmp_path / "x", flush_interval_s=2.0)


def test_a_crash_mid_session_keeps_every_whole_frame(tmp_path):
    folder = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        with Recorder(folder) as recorder:
            for frame in paced_frames(5):
                recorder.add_frame(frame)
            raise KeyboardInterrupt
    recording = read_recording(folder)
    assert len(recording.frames) == 5
    assert recording.manifest["ended_by"] == "KeyboardInterrupt"


def tear(folder, keep_bytes_less: int) -> None:
    """The process died while writing the last chunk: cut it short and leave the manifest unclosed."""
    path = folder / CHUNKS_FILE
    path.write_bytes(path.read_bytes()[:-keep_bytes_less])
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    (folder / MANIFEST_FILE).write_text(json.dumps({**manifest, "complete": False}))


def test_torn_last_chunk_is_reported_and_skipped_and_recover_saves_it(tmp_path):
    folder = tmp_path / "torn"
    record(folder, count=100)
    tear(folder, 50)
    recording = read_recording(folder)
    kept = len(recording.frames)
    assert 80 < kept < 100 and recording.events == [], "the two intact chunks (~0.5 s each), not the torn third"
    assert recording.truncated_bytes > 0 and not recording.complete
    assert any("torn last chunk" in note and "chunk 2 at byte" in note for note in recording.notes)
    assert any("did not close cleanly" in note for note in recording.notes)
    before = verify_recording(folder)
    assert not before.ok and not before.corrupt and before.chunks == 2 and before.records == kept
    size = (folder / CHUNKS_FILE).stat().st_size
    after = recover_recording(folder)
    assert after.ok and after.chunks == 2 and after.good_bytes == before.good_bytes
    side = folder / f"{CHUNKS_FILE}.torn-at-{before.good_bytes}"
    assert side.stat().st_size == size - before.good_bytes, "the cut bytes are kept beside the recording"
    assert read_recording(folder).manifest["recovered"][0]["torn_bytes"] == before.torn_bytes
    assert [f.frame_id for f in read_recording(folder).frames] == list(range(kept))


def test_a_torn_header_is_a_torn_tail_too(tmp_path):
    folder = tmp_path / "torn"
    record(folder, count=100)
    path = folder / CHUNKS_FILE
    last = scan_chunks(path).chunks[-1][0]
    path.write_bytes(path.read_bytes()[:last + HEADER_BYTES - 3])
    assert len(read_recording(folder).frames) == verify_recording(folder).records > 80
    assert verify_recording(folder).torn_bytes == HEADER_BYTES - 3


def test_corrupt_chunk_in_the_middle_names_the_byte_offset_and_is_never_cut(tmp_path):
    folder = tmp_path / "corrupt"
    record(folder, count=100)
    path = folder / CHUNKS_FILE
    data = bytearray(path.read_bytes())
    second = scan_chunks(path).chunks[1][0]
    data[second + 100:second + 120] = b"\xc1" * 20
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingError, match=rf"chunk 1 at byte {second}: the chunk payload fails its checksum"):
        read_recording(folder)
    report = verify_recording(folder)
    assert report.corrupt and report.chunks == 1
    with pytest.raises(RecordingError, match="not repaired"):
        recover_recording(folder)
    assert path.read_bytes() == bytes(data), "recover changed nothing"


def test_not_a_recording_and_unwritable_folder_fail_clearly(tmp_path):
    with pytest.raises(RecordingError, match="records.chunks is missing"):
        read_recording(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="cannot write the recording folder"):
        with Recorder(blocker / "rec"):
            pass


CHILD = textwrap.dedent("""
    import resource, signal, sys
    sys.path.insert(0, sys.argv[3])
    from genxr.platform.clock import ManualClock
    from tests.helpers.tracking import two_handed_frame
    from genxr.xr_runtime.recording.writer import Recorder
    if sys.argv[2] == "full":  # a disk that fills up after ~40 kB
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))
    clock = ManualClock(start_ns=1)
    with Recorder(sys.argv[1], clock=clock, flush_interval_s=0.1) as recorder:
        for i in range(1_000_000):
            recorder.add_frame(two_handed_frame(i))
            clock.advance_ns(11_111_111)
            print(i, flush=True)
""")


def test_sigkill_at_random_points_leaves_every_complete_chunk_intact(tmp_path):
    rng = random.Random(9)
    for attempt in range(20):
        folder = tmp_path / f"kill{attempt}"
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(folder), "kill", str(ROOT)],
                                 stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        target = rng.randrange(1, 400)
        seen = -1
        for line in child.stdout:
            seen = int(line)
            if seen >= target:
                break
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        report = verify_recording(folder)
        assert not report.corrupt, report.problem
        recording = read_recording(folder)
        ids = [f.frame_id for f in recording.frames]
        assert ids == list(range(len(ids))), "an unbroken prefix of the session"
        assert seen - len(ids) < 10, "at most one flush interval (0.1 s = 9 frames) lost"
        assert recover_recording(folder).ok
        assert [f.frame_id for f in read_recording(folder).frames] == ids


def test_a_full_disk_fails_clearly_and_keeps_the_chunks_written(tmp_path):
    folder = tmp_path / "full"
    child = subprocess.run([sys.executable, "-c", CHILD, str(folder), "full", str(ROOT)], capture_output=True,
                           text=True, timeout=60)
    assert child.returncode != 0
    assert "cannot append to the recording" in child.stderr and "chunks written before are intact" in child.stderr
    report = verify_recording(folder)
    assert not report.corrupt and report.chunks > 0
    written = int(child.stdout.split()[-1])
    assert written + 1 - report.records < 10


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


def test_tail_follows_a_recording_while_it_is_written_reading_only_new_chunks(tmp_path):
    clock = ManualClock()
    seen, offset, chunk = [], 0, 0
    with Recorder(tmp_path / "rec", clock=clock) as recorder:
        for frame in paced_frames(100):
            recorder.add_frame(frame)
            clock.advance_ns(PERIOD)
            if frame.frame_id % 30 == 0:
                messages, offset, chunk = tail_recording(tmp_path / "rec", offset, chunk)
                seen += [m.frame_id for m in messages]
                assert seen == list(range(len(seen))) and len(seen) <= frame.frame_id + 1
    messages, offset, chunk = tail_recording(tmp_path / "rec", offset, chunk)
    assert seen + [m.frame_id for m in messages] == list(range(100))
    with open(tmp_path / "rec" / CHUNKS_FILE, "ab") as handle:
        handle.write(b"GXRC\x05")  # a chunk being written right now is left for the next call
    assert tail_recording(tmp_path / "rec", offset, chunk) == ([], offset, chunk)


def test_first_format_recordings_are_still_read(tmp_path):
    import struct

    from genxr.platform.messages import encode

    folder = tmp_path / "old"
    folder.mkdir()
    recorded = paced_frames(3)
    data = b"".join(struct.pack("<I", len(encode(f))) + encode(f) for f in recorded)
    (folder / "tracking.msgpack").write_bytes(data + b"\x07\x00")  # and a half-written length prefix
    (folder / "events.jsonl").write_text(SessionEvent(session_id="s", time_ns=1, kind="started").model_dump_json() + "\n")
    (folder / MANIFEST_FILE).write_text(json.dumps({"complete": False}))
    recording = read_recording(folder)
    assert [f.model_dump_json() for f in recording.frames] == [f.model_dump_json() for f in recorded]
    assert recording.events[0].kind == "started" and recording.truncated_bytes == 2
    assert any("first-format recording" in note for note in recording.notes)
    with pytest.raises(RecordingError, match="first-format recording"):
        verify_recording(folder)

"""Sinks write real files: an mp4 that decodes back with the right frame count and size,
PNG frames; an unwritable destination is a clear SinkError."""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from genxr.platform.messages import DisplayFrame
from genxr.xr_runtime.sinks import LatestFrameSink, PngSink, SinkError, VideoSink


def display(frame_id: int, size: int = 32) -> DisplayFrame:
    image = np.zeros((size, size, 3), np.uint8)
    image[..., 0] = frame_id * 10 % 256
    return DisplayFrame(frame_id=frame_id, display_time_ns=frame_id * 11_111_111, image=image)


def test_video_sink_writes_an_mp4_that_decodes_back(tmp_path):
    path = tmp_path / "session.mp4"
    with VideoSink(path, fps=30) as sink:
        for frame_id in range(12):
            sink.submit(display(frame_id))
        assert not path.exists(), "the file only appears complete on close"
    with av.open(str(path)) as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(decoded) == 12 and decoded[0].shape == (32, 32, 3)
    assert abs(int(decoded[11][..., 0].mean()) - 110) <= 6, "content survives H.264 within a few levels"
    assert not (tmp_path / "session.mp4.partial").exists()


def test_video_sink_with_no_frames_leaves_no_file(tmp_path):
    with VideoSink(tmp_path / "empty.mp4"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_video_sink_to_an_unwritable_place_names_the_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SinkError, match="cannot write video"):
        VideoSink(blocker / "session.mp4")


def test_png_sink_writes_every_nth_frame(tmp_path):
    with PngSink(tmp_path / "frames", every=3) as sink:
        for frame_id in range(7):
            sink.submit(display(frame_id))
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == ["frame_000000.png", "frame_000003.png", "frame_000006.png"]
    assert np.asarray(Image.open(tmp_path / "frames" / "frame_000003.png"))[0, 0, 0] == 30


def test_png_sink_refuses_bad_arguments_and_places(tmp_path):
    with pytest.raises(ValueError, match="every must be >= 1"):
        PngSink(tmp_path, every=0)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SinkError, match="cannot create PNG folder"):
        PngSink(blocker / "frames")


def test_latest_frame_sink_keeps_the_newest():
    sink = LatestFrameSink()
    for frame_id in range(3):
        sink.submit(display(frame_id))
    assert sink.latest.frame_id == 2 and sink.count == 3


def test_video_sink_encodes_in_a_child_process_outside_the_terminals_process_group(tmp_path):
    import os

    path = tmp_path / "session.mp4"
    with VideoSink(path, fps=30) as sink:
        assert sink._writer._process.pid != os.getpid()
        # Ctrl-C signals the terminal's foreground process group: the encoder is not in it
        assert os.getpgid(sink._writer._process.pid) != os.getpgid(0)
        for frame_id in range(6):
            sink.submit(display(frame_id))
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 6


def test_video_sink_drops_and_counts_frames_when_the_encoder_falls_behind(tmp_path):
    import os
    import signal

    sink = VideoSink(tmp_path / "session.mp4", fps=30, max_queued_bytes=3 * 32 * 32 * 3)
    os.kill(sink._writer._process.pid, signal.SIGSTOP)  # an encoder starved of CPU
    try:
        for frame_id in range(40):
            sink.submit(display(frame_id))
    finally:
        os.kill(sink._writer._process.pid, signal.SIGCONT)
    sink.close()
    assert sink.dropped_frames > 0 and sink.frames + sink.dropped_frames == 40
    with av.open(str(tmp_path / "session.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == sink.frames


def test_a_dead_encoder_is_a_sink_error_naming_the_file_and_leaves_only_a_partial(tmp_path):
    import os
    import signal

    path = tmp_path / "session.mp4"
    sink = VideoSink(path, fps=30)
    sink.submit(display(0))
    os.kill(sink._writer._process.pid, signal.SIGKILL)
    sink._writer._process.wait()
    import time

    sink.submit(display(1))  # the writer thread finds the pipe broken when it writes this one
    deadline = time.monotonic() + 30
    while sink._writer._error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(SinkError, match="session.mp4"):
        sink.submit(display(2))
    with pytest.raises(SinkError, match="session.mp4"):
        sink.close()
    assert not path.exists()


def test_video_sink_refuses_a_frame_of_another_size(tmp_path):
    with VideoSink(tmp_path / "session.mp4", fps=30) as sink:
        sink.submit(display(0, size=32))
        with pytest.raises(SinkError, match="64x64, the video is 32x32"):
            sink.submit(display(1, size=64))

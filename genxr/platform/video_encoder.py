"""The video encoder's child process: raw RGB frames on stdin -> an H.264 mp4 (PyAV, libx264).

:class:`~genxr.platform.video.VideoWriter` runs this module as a separate, niced process
because encoding in the session's process cost the frame loop its deadline: PyAV holds the
GIL while libx264 encodes, and x264's own threads run at normal priority (what each cost:
docs/xr_runtime.md, "Measured"). In a child process at nice 10 the encoder uses only the
CPU the frame loop leaves over.

Protocol (stdin, binary): one header ``struct "<II"`` = (width, height) in pixels, then
frames, each a ``struct "<q"`` time in ns (any origin) followed by exactly ``width * height * 3``
bytes (rgb24, rows top to bottom), then EOF. Each frame is shown from its time on: the mp4's
time axis is the caller's (a display's refreshes, however the runtime paced them), in
:data:`TIME_BASE_HZ` ticks; a frame less than a tick after the previous one is moved one tick
later, since a container's timestamps must increase. The
container is finalised on EOF; exit status 0 means the file at ``path`` is complete. Errors
go to stderr as one line and exit status 1. SIGINT is ignored: Ctrl-C in the terminal reaches
the whole process group, and the parent closes stdin when it has shut the session down, so
the file still gets finished.

Usage: ``python -m genxr.platform.video_encoder PATH FPS CRF PRESET NICE``.
"""

from __future__ import annotations

import os
import signal
import struct
import sys

from genxr.platform.units import NS_PER_S

HEADER = struct.Struct("<II")
FRAME_TIME = struct.Struct("<q")
TIME_BASE_HZ = 90_000
"""Timestamp ticks per second in the mp4 (MPEG's 90 kHz clock)."""


def _read_exactly(stream, size: int) -> bytes | None:
    """``size`` bytes from ``stream``, or None at a clean EOF before the first byte."""
    chunks, remaining = [], size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            if remaining == size:
                return None
            raise EOFError(f"input ended inside a frame ({size - remaining} of {size} bytes)")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def encode(path: str, fps: float, crf: int, preset: str, stdin) -> int:
    """Encodes the frames on ``stdin`` into ``path``; returns the number of frames. ``fps`` is the
    nominal rate the encoder plans for; each frame's time comes with it."""
    from fractions import Fraction

    import av
    import numpy as np

    header = _read_exactly(stdin, HEADER.size)
    if header is None:
        return 0
    width, height = HEADER.unpack(header)
    frames = 0
    with av.open(path, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=round(fps),
                                      options={"crf": str(crf), "preset": preset, "tune": "zerolatency"})
        stream.pix_fmt = "yuv420p"
        stream.width, stream.height = width, height
        stream.time_base = stream.codec_context.time_base = Fraction(1, TIME_BASE_HZ)  # both, or x264 re-times at fps
        stream.codec_context.thread_count = 1  # one core's worth at most, beside the frame loop
        first_ns, last_pts = None, -1
        while (stamp := _read_exactly(stdin, FRAME_TIME.size)) is not None:
            (time_ns,) = FRAME_TIME.unpack(stamp)
            data = _read_exactly(stdin, width * height * 3)
            if data is None:
                raise EOFError("input ended after a frame's time, before its pixels")
            first_ns = time_ns if first_ns is None else first_ns
            last_pts = max(last_pts + 1, round((time_ns - first_ns) * TIME_BASE_HZ / NS_PER_S))
            frame = av.VideoFrame.from_ndarray(np.frombuffer(data, np.uint8).reshape(height, width, 3),
                                               format="rgb24")
            frame.pts, frame.time_base = last_pts, stream.time_base
            for packet in stream.encode(frame):
                container.mux(packet)
            frames += 1
        for packet in stream.encode():
            container.mux(packet)
    return frames


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    path, fps, crf, preset, nice = argv[0], float(argv[1]), int(argv[2]), argv[3], int(argv[4])
    if nice:
        os.nice(nice)
    try:
        encode(path, fps, crf, preset, sys.stdin.buffer)
    except Exception as err:  # reported to the parent, which raises SinkError with it
        print(f"{type(err).__name__}: {err}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

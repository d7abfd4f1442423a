"""The video encoder's child process: raw RGB frames on stdin -> an H.264 mp4 (PyAV, libx264).

:class:`~genxr.platform.video.VideoWriter` runs this module as a separate, niced process
because encoding in the session's process cost the frame loop its deadline: PyAV holds the
GIL while libx264 encodes, and x264's own threads run at normal priority (what each cost:
docs/xr_runtime.md, "Measured"). In a child process at nice 10 the encoder uses only the
CPU the frame loop leaves over.

Protocol (stdin, binary): one header ``struct "<II"`` = (width, height) in pixels, then
frames of exactly ``width * height * 3`` bytes (rgb24, rows top to bottom), then EOF. The
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

HEADER = struct.Struct("<II")


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
    """Encodes the frames on ``stdin`` into ``path``; returns the number of frames."""
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
        stream.codec_context.thread_count = 1  # one core's worth at most, beside the frame loop
        while (data := _read_exactly(stdin, width * height * 3)) is not None:
            image = np.frombuffer(data, np.uint8).reshape(height, width, 3)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
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

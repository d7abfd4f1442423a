"""``genxr bench worldmodel``: streamed student frames per second vs the many-step teacher.

Both run the shipped checkpoints at 64x64 on the same held-out tracking. The student
streams chunks through :class:`WorldModelStream` (``steps`` Euler steps + one cache write
per chunk, then decoding); timed: ``step`` calls only, after ``warmup_chunks`` chunks
(the cache is full and rolling from then on). A chunk's latency is the wall time from its
tracking frames going in to its decoded frames coming out (hand-to-frame compute latency).
The teacher generates windows of 6 frames anchored on the observed frame with
``teacher_steps`` Euler steps (:func:`teacher_rollout`), as in the evaluation. Both include
reprojecting the anchor to each frame's head pose (:mod:`.reprojection`). Frames per
second = frames returned / wall seconds, measured one after the other in the same process.

World model v2 (:mod:`.pixel_unet`, keys ``pixel_*``, when ``checkpoints/pixel`` is shipped):
:class:`PixelWorldStream` at ``pixel_steps`` Euler steps per frame (the streaming model)
against the same network sampled with ``pixel_teacher_steps`` steps (the many-step model it
would be distilled from), frame by frame on the same tracking; ``pixel_frame_latency_ms_p50``
is one frame's tracking in to its image out. Engine: torch on the CPU (``pixel_engine``).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from genxr.components import flow_matching as fm
from genxr.components.sim.dataset import DatasetConfig, write_dataset
from genxr.components.worldmodel.checkpoint import load_model, shipped
from genxr.components.worldmodel.conditioning import tracking_from_arrays
from genxr.components.worldmodel.data import images_of, load_episodes
from genxr.components.worldmodel.pixel_stream import PixelWorldStream
from genxr.components.worldmodel.reprojection import attach_prior, frames_from
from genxr.components.worldmodel.stream import WorldModelStream
from genxr.components.worldmodel.teacher import teacher_rollout
from genxr.platform.stats import percentiles
from genxr.platform.units import MS_PER_S

PIXEL_TEACHER_STEPS = 8


def pixel_speed(clip: dict, tracking, frames: int, warmup: int, steps: int, teacher_steps: int, directory=None
                ) -> dict:
    """``pixel_*`` keys: world model v2 (``directory``, default the shipped one) streamed at ``steps`` and
    ``teacher_steps`` steps per frame over ``clip`` (a :meth:`Episodes.clip` of ``frames + warmup + 1`` frames)."""
    model, _ = load_model(directory if directory is not None else shipped("pixel"))
    timings = {}
    for name, count in (("student", steps), ("teacher", teacher_steps)):
        stream = PixelWorldStream(model, count)
        stream.reset(clip["rgb"][0], tracking.frames(0, 1))
        latencies = []
        for k in range(frames + warmup):
            started = time.perf_counter()
            stream.step(tracking.frames(1 + k, 2 + k))
            if k >= warmup:
                latencies.append(time.perf_counter() - started)
            if name == "teacher" and k >= warmup + frames // 4:
                break
        timings[name] = np.array(latencies) * MS_PER_S
    fps = {name: len(ms) / (ms.sum() / MS_PER_S) for name, ms in timings.items()}
    p50, p90 = percentiles(timings["student"], (50, 90))
    return {"pixel_fps": round(float(fps["student"]), 1), "pixel_teacher_fps": round(float(fps["teacher"]), 2),
            "pixel_speedup": round(float(fps["student"] / fps["teacher"]), 1),
            "pixel_frame_latency_ms_p50": round(p50, 2), "pixel_frame_latency_ms_p90": round(p90, 2),
            "pixel_steps": steps, "pixel_teacher_steps": teacher_steps, "pixel_engine": "torch-cpu",
            "pixel_frames_timed": len(timings["student"])}


def run(threads: int = 1, chunks: int = 48, warmup_chunks: int = 8, teacher_steps: int = 32, student_steps: int = 1,
        data_dir=None, pixel_steps: int = 1) -> dict:
    """The benchmark's JSON-able result (keys in the module docstring and docs/worldmodel.md)."""
    import tempfile
    from pathlib import Path

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        codec, _ = load_model(shipped("codec"))
        student, _ = load_model(shipped("student"))
        teacher, _ = load_model(shipped("teacher"))
        chunk = student.config.chunk_frames
        frames = (chunks + warmup_chunks) * chunk + 1
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(data_dir) if data_dir is not None else Path(tmp) / "heldout"
            if not (root / "manifest.json").is_file():
                write_dataset(root, DatasetConfig(episodes=1, frames=3 * frames, split="heldout"))
            episodes = load_episodes(root)
        clip = episodes.clip(0, 0, frames, 3)
        tracking = tracking_from_arrays(clip["head_pose"], clip["hand_positions"], clip["hand_flags"], clip["hand_active"])
        stream = WorldModelStream(student, codec, student_steps)
        stream.reset(clip["rgb"][0], tracking.frames(0, 1))
        latencies = []
        with torch.no_grad():
            for k in range(chunks + warmup_chunks):
                part = tracking.frames(1 + k * chunk, 1 + (k + 1) * chunk)
                started = time.perf_counter()
                stream.step(part)
                if k >= warmup_chunks:
                    latencies.append(time.perf_counter() - started)
            anchor_image = images_of(clip["rgb"][:1])
            anchor = codec.encode(anchor_image)[:, None]
            teacher_frames = 12
            sigmas = fm.euler_sigmas(teacher_steps, 3.0)
            started = time.perf_counter()
            anchored, prior_pixels = attach_prior(codec, anchor_image, tracking.frames(0, teacher_frames + 1),
                                                  teacher.config.conditioning)
            corrections = teacher_rollout(teacher, anchor, anchored, 6, sigmas)
            frames_from(codec, corrections, prior_pixels[:, 1:])
            teacher_seconds = time.perf_counter() - started
            pixel = pixel_speed(clip, tracking, chunks * chunk, warmup_chunks, pixel_steps, PIXEL_TEACHER_STEPS) \
                if (shipped("pixel") / "config.json").is_file() else {}
    finally:
        torch.set_num_threads(before)
    latencies_ms = np.array(latencies) * MS_PER_S
    student_fps = chunk * len(latencies) / (latencies_ms.sum() / MS_PER_S)
    latency_ms_p50, latency_ms_p90 = percentiles(latencies_ms, (50, 90))
    teacher_fps = teacher_frames / teacher_seconds
    return {"student_fps": round(float(student_fps), 1), "teacher_fps": round(float(teacher_fps), 2),
            "student_speedup": round(float(student_fps / teacher_fps), 1),
            "chunk_latency_ms_p50": round(latency_ms_p50, 2), "chunk_latency_ms_p90": round(latency_ms_p90, 2),
            "chunk_frames": chunk, "student_steps": student_steps, "teacher_steps": teacher_steps,
            "chunks_timed": len(latencies), "threads": threads, "resolution": codec.config.resolution,
            "cache_frames_max": student.config.sink_frames + student.config.window_frames, **pixel}

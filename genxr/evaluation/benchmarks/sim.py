"""``genxr bench sim``: throughput of the simulator's renderer and scripted user.

Renderer figures are frames per second over the frames of a fixed episode
(``press_button+wave``, seed 0): at 64x64 in batches of 64 and one frame at a time, and at
256x256 one frame at a time (the preview and compositor case) and in batches of 16. Each
is measured with one torch thread and with torch's default thread count; the top-level
keys hold the better of the two and ``by_threads`` both (on a shared machine one thread
often wins: OpenMP threads wait on each other when cores are oversubscribed).
``tracking_frames_per_s`` is a :class:`~genxr.components.sim.user.ScriptedUser` producing
TrackingFrames unpaced (kinematics, contacts, noise, message validation). Targets on 2 CPU
cores: >= 500 frames/s at 64x64 batched, >= 30 frames/s at 256x256 single-frame.
"""

from __future__ import annotations

import os
import time

import torch

from genxr.components.sim.episode import render_batch
from genxr.components.sim.renderer import Renderer, RendererConfig
from genxr.components.sim.user import ScriptedUser
from genxr.platform.clock import ManualClock

BEHAVIOUR = "press_button+wave"


def _render_fps(steps: list, scene, resolution: int, batch_size: int, repeats: int = 2) -> float:
    renderer = Renderer(RendererConfig(width=resolution, height=resolution))
    batches = [render_batch(scene, steps[k:k + batch_size]) for k in range(0, len(steps), batch_size)]
    renderer.render(batches[0])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            renderer.render(batch)
        best = min(best, time.perf_counter() - start)
    return len(steps) / best


def run(frames: int = 128, tracking_frames: int = 270) -> dict:
    """Frames/s of the renderer (see module docstring) over ``frames`` frames, and TrackingFrames/s
    over ``tracking_frames`` frames."""
    if frames < 1 or tracking_frames < 1:
        raise ValueError(f"frames and tracking_frames must be >= 1, got {frames} and {tracking_frames}")
    user = ScriptedUser(BEHAVIOUR, seed=0, clock=ManualClock(0))
    start = time.perf_counter()
    steps = list(user.steps(max(frames, tracking_frames)))
    tracking_fps = len(steps) / (time.perf_counter() - start)
    steps = steps[:frames]
    default_threads = torch.get_num_threads()
    by_threads: dict[str, dict[str, float]] = {}
    try:
        for threads in sorted({1, default_threads}):
            torch.set_num_threads(threads)
            by_threads[str(threads)] = {
                "render_fps_64_batched": _render_fps(steps, user.scene, 64, 64),
                "render_fps_64_single": _render_fps(steps[:32], user.scene, 64, 1),
                "render_fps_256_single": _render_fps(steps[:16], user.scene, 256, 1),
                "render_fps_256_batched": _render_fps(steps[:32], user.scene, 256, 16, repeats=1),
            }
    finally:
        torch.set_num_threads(default_threads)
    keys = next(iter(by_threads.values())).keys()
    best = {key: max(result[key] for result in by_threads.values()) for key in keys}
    return {
        **best,
        "tracking_frames_per_s": tracking_fps,
        "frames": frames,
        "by_threads": by_threads,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "target_render_fps_64_batched": 500.0,
        "target_render_fps_256_single": 30.0,
    }

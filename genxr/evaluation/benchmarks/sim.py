"""``genxr bench sim``: throughput of the simulator's renderer and scripted user.

Renderer figures are frames per second over the frames of a fixed episode
(``press_button+wave``, seed 0): at 64x64 in batches of 64 and one frame at a time, and at
256x256 one frame at a time (the preview and compositor case) and in batches of 16. Each
is measured with one torch thread and with torch's default thread count; the top-level
keys hold the better of the two and ``by_threads`` both (on a shared machine one thread
often wins: OpenMP threads wait on each other when cores are oversubscribed). The
``*_per_cpu_s_1thread`` keys divide by the process's CPU time instead of wall time with
one thread: what an uncontended core delivers, comparable across loaded and idle machines.
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


def _render_fps(steps: list, scene, resolution: int, batch_size: int, repeats: int = 2) -> tuple[float, float]:
    """Frames per wall-clock second and per CPU second of this process (best of ``repeats``)."""
    renderer = Renderer(RendererConfig(width=resolution, height=resolution))
    batches = [render_batch(scene, steps[k:k + batch_size]) for k in range(0, len(steps), batch_size)]
    renderer.render(batches[0])
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for batch in batches:
            renderer.render(batch)
        wall, cpu = min(wall, time.perf_counter() - start), min(cpu, time.process_time() - start_cpu)
    return len(steps) / wall, len(steps) / max(cpu, 1e-9)


def run(frames: int = 128, tracking_frames: int = 270) -> dict:
    """Frames/s of the renderer (see module docstring) over ``frames`` frames, and TrackingFrames/s
    over ``tracking_frames`` frames."""
    if frames < 1 or tracking_frames < 1:
        raise ValueError(f"frames and tracking_frames must be >= 1, got {frames} and {tracking_frames}")
    user = ScriptedUser(BEHAVIOUR, seed=0, clock=ManualClock(0))
    start, start_cpu = time.perf_counter(), time.process_time()
    steps = list(user.steps(max(frames, tracking_frames)))
    tracking_fps = len(steps) / (time.perf_counter() - start)
    tracking_cpu_fps = len(steps) / max(time.process_time() - start_cpu, 1e-9)
    steps = steps[:frames]
    default_threads = torch.get_num_threads()
    by_threads: dict[str, dict[str, float]] = {}
    try:
        for threads in sorted({1, default_threads}):
            torch.set_num_threads(threads)
            cases = {"64_batched": (steps, 64, 64), "64_single": (steps[:32], 64, 1),
                     "256_single": (steps[:16], 256, 1), "256_batched": (steps[:32], 256, 16)}
            result = {}
            for name, (subset, resolution, batch_size) in cases.items():
                wall, cpu = _render_fps(subset, user.scene, resolution, batch_size)
                result[f"render_fps_{name}"] = wall
                result[f"render_fps_{name}_per_cpu_s"] = cpu
            by_threads[str(threads)] = result
    finally:
        torch.set_num_threads(default_threads)
    keys = [key for key in next(iter(by_threads.values())) if not key.endswith("_per_cpu_s")]
    best = {key: max(result[key] for result in by_threads.values()) for key in keys}
    single = by_threads["1"]
    return {
        **best,
        **{f"{key}_per_cpu_s_1thread": single[f"{key}_per_cpu_s"] for key in keys},
        "tracking_frames_per_s": tracking_fps,
        "tracking_frames_per_cpu_s": tracking_cpu_fps,
        "frames": frames,
        "by_threads": by_threads,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "target_render_fps_64_batched": 500.0,
        "target_render_fps_256_single": 30.0,
    }

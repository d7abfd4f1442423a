"""``genxr bench hud``: per-frame cost of the latency HUD and of the preview window.

Baseline, measured in the same run: the compositor's timewarp of a 64x64 world frame to
the display resolution (the stage the HUD follows, with its <= 3 ms target at 256x256).

* HUD: ``frames`` display frames at 90 Hz display time, the HUD fed live loop metrics
  (frame times that change every frame, world and avatar updates) and drawn into each
  composited frame; p50/p99 per frame in microseconds, how often the patch was laid out
  and what one layout costs, and the HUD's p50 as a share of the compositor's.
* Preview (``preview=True``, needs a display: run under ``xvfb-run -a`` on a headless
  machine): the same frames submitted to a :class:`~genxr.xr_runtime.preview.PreviewWindowSink`
  at 90 Hz; ``submit`` is what the frame loop pays, ``draw`` what the render thread pays
  (upload + blit + swap), i.e. what drawing on the loop's thread would cost it.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext

import numpy as np

from genxr.platform.messages import Pose, WorldFrame
from genxr.platform.stats import percentile, percentiles
from genxr.platform.units import NS_PER_S, NS_PER_US
from genxr.xr_runtime.compositor import Compositor, CompositorConfig
from genxr.xr_runtime.hud import Hud, hud_lines, render_patch
from genxr.xr_runtime.metrics import LoopMetrics

FRAME_NS = round(NS_PER_S / 90)


def _yaw(degrees: float) -> Pose:
    half = math.radians(degrees) / 2
    return Pose(position=(0.0, 1.6, 0.0), orientation=(0.0, math.sin(half), 0.0, math.cos(half)))


def run(frames: int = 900, resolution: int = 256, preview: bool = False, threads: int = 1) -> dict:
    """HUD (and optionally preview window) cost per frame against the compositor's, same run;
    ``threads``: torch intra-op threads of the compositor (1, as the default preset runs it).

    Each frame is composited (one 64x64 world frame re-projected to a head turning 0.5 degrees
    per frame), then the HUD is drawn into it while it is fresh in the cache, as in the loop.
    """
    if frames < 2:
        raise ValueError(f"frames must be >= 2, got {frames}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    import torch

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    world = WorldFrame(session_id="bench", request_id=0, frame_id=0, head=_yaw(0.0), generated_for_time_ns=0,
                       vertical_fov_deg=90.0, image=rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    compositor = Compositor(CompositorConfig(width=resolution, height=resolution))
    hud, metrics = Hud(), LoopMetrics()
    composite_ns, hud_ns, submit_ns = [], [], []
    with _preview_window(resolution) if preview else nullcontext() as window:
        next_ns = time.perf_counter_ns()
        for frame_id in range(frames):
            start = time.perf_counter_ns()
            shown = compositor.composite(frame_id, (frame_id + 1) * FRAME_NS, _yaw(0.5 * (frame_id % 60)), world)
            middle = time.perf_counter_ns()
            shown = hud.apply(shown, metrics, tracking_lost=False)
            end = time.perf_counter_ns()
            composite_ns.append(middle - start)
            hud_ns.append(end - middle)
            metrics.frames += 1
            metrics.frame_time_ns.append(int(rng.integers(3_000_000, 9_000_000)))
            metrics.rotational_m2p_ns.append(FRAME_NS)
            metrics.world_updates += frame_id % 25 == 0
            metrics.avatar_updates += frame_id % 12 == 0
            if window is not None:  # paced at 90 Hz like the loop: the render thread gets the rest of each period
                window.submit(shown)
                submit_ns.append(time.perf_counter_ns() - end)
                next_ns += FRAME_NS
                time.sleep(max(0.0, (next_ns - time.perf_counter_ns()) / NS_PER_S))
        preview_result = _preview_result(window, submit_ns, frames) if window is not None else {}
    lines = hud_lines(hud.stats(metrics, (frames + 1) * FRAME_NS, 150_000_000, False, False), hud.config.items)
    layout_ns = []
    for _ in range(50):
        start = time.perf_counter_ns()
        render_patch(lines, max(1, resolution // 256))
        layout_ns.append(time.perf_counter_ns() - start)
    composite_p50, composite_p99 = percentiles(composite_ns, (50, 99), per=NS_PER_US)
    hud_p50, hud_p99 = percentiles(hud_ns, (50, 99), per=NS_PER_US)
    result = {
        "frames": frames, "resolution": resolution, "threads": threads,
        "compositor_us_p50": composite_p50, "compositor_us_p99": composite_p99,
        "hud_us_p50": hud_p50, "hud_us_p99": hud_p99,
        "hud_layouts": hud.renders, "hud_layout_us_p50": percentile(layout_ns, 50, per=NS_PER_US),
        "hud_over_compositor_p50": hud_p50 / composite_p50,
        "hud_frame_budget_share_p50": hud_p50 / (FRAME_NS / NS_PER_US),
    }
    result.update(preview_result)
    return result


def _preview_window(resolution: int):
    from genxr.xr_runtime.preview import PreviewWindowSink

    return PreviewWindowSink(resolution, resolution)


def _preview_result(window, submit_ns: list[int], frames: int) -> dict:
    window.read_window()  # waits until the render thread has drawn the newest frame
    submit_p50, submit_p99 = percentiles(submit_ns, (50, 99), per=NS_PER_US)
    draw_p50, draw_p99 = percentiles(list(window.draw_ns), (50, 99), per=NS_PER_US)
    return {
        "preview_renderer": window.renderer, "preview_window": list(window.framebuffer_size()),
        "preview_submit_us_p50": submit_p50, "preview_submit_us_p99": submit_p99,
        "preview_draw_us_p50": draw_p50, "preview_draw_us_p99": draw_p99,
        "preview_submit_over_draw_p50": submit_p50 / draw_p50,
        "preview_frames_drawn_share": window.frames_drawn / frames,
    }

"""``genxr bench frameloop``: the end-to-end session's timing on this machine.

Runs the default session (simulated user at 90 Hz, in-process world service, 256x256
timewarp, mp4 sink) for ``seconds``, then the same session with a *frozen* world service as
the baseline measured in the same run: it renders once and answers every later request
with that image at once, so the loop composites and encodes the same amount while no
model computes. The ratios show what the world service costs the loop. Keys: ``frame_time_ms_p99``, ``deadline_miss_rate``, ``compositor_ms_p50``,
``rotational_m2p_ms_p99``, ``content_latency_ms_p50``, ``world_model_hz``, ``avatar_hz``
(the avatar's chunks per second in the session; 0 when it is off or has no checkpoint),
``world_model`` (which world service ran), and ``baseline_*`` / ``*_over_baseline`` for the
frozen-world run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from genxr.platform.config import load_config
from genxr.platform.messages import WorldFrame, WorldFrameRequest
from genxr.xr_runtime.session import make_world, run_session

KEYS = ("frame_time_ms_p50", "frame_time_ms_p99", "deadline_miss_rate", "compositor_ms_p50", "compositor_ms_p99",
        "rotational_m2p_ms_p50", "rotational_m2p_ms_p99", "content_latency_ms_p50", "content_latency_ms_p99",
        "world_model_hz", "avatar_hz")


class FrozenWorld:
    """Answers every request with the world service's first image, re-addressed to the request."""

    def __init__(self, world) -> None:
        self.world = world
        self.first: WorldFrame | None = None

    def __call__(self, request: WorldFrameRequest) -> WorldFrame:
        if self.first is None:
            self.first = self.world(request)
        newest = request.tracking[-1]
        return self.first.model_copy(update={"request_id": request.request_id, "frame_id": newest.frame_id,
                                             "head": newest.head,
                                             "generated_for_time_ns": newest.predicted_display_time_ns,
                                             "model": "frozen"})


def run(seconds: float = 10.0, rate_hz: float = 90.0, resolution: int = 256) -> dict[str, float | int | str | None]:
    """Session and no-model baseline, ``seconds`` each; see the module docstring."""
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    config = load_config(session={"display_rate_hz": rate_hz},
                         display={"width": resolution, "height": resolution})
    with tempfile.TemporaryDirectory(prefix="genxr-bench-") as tmp:
        session = run_session(config, Path(tmp) / "session", seconds=seconds)
        name, world = make_world(config)
        baseline = run_session(config, Path(tmp) / "baseline", seconds=seconds,
                               world=(f"frozen {name}", FrozenWorld(world)))
    result: dict[str, float | int | str | None] = {key: session.metrics[key] for key in KEYS}
    result["avatar_hz"] = session.metrics["avatar_hz"]
    result.update(world_model=session.world_model, frames=session.metrics["frames"], seconds=seconds,
                  rate_hz=rate_hz, resolution=resolution)
    for key in ("frame_time_ms_p50", "frame_time_ms_p99", "deadline_miss_rate", "compositor_ms_p50"):
        result[f"baseline_{key}"] = baseline.metrics[key]
        base = baseline.metrics[key]
        result[f"{key}_over_baseline"] = session.metrics[key] / base if base else None
    return result

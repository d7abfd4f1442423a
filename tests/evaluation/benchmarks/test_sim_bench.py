"""genxr bench sim: the required keys, measured on a tiny run."""

from __future__ import annotations

from genxr.evaluation.benchmarks.sim import run


def test_bench_reports_the_required_keys():
    result = run(frames=2, tracking_frames=10)
    for key in ("render_fps_64_batched", "render_fps_256_single", "tracking_frames_per_s"):
        assert result[key] > 0
    assert set(result["by_threads"]) >= {"1"}

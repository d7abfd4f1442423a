"""``genxr bench hud`` measures the HUD against the compositor in the same run and lays the
text out a few times a second, not every frame."""

from __future__ import annotations

import pytest

from genxr.evaluation.benchmarks.hud import run


def test_hud_bench_reports_the_hud_against_the_compositor():
    result = run(frames=180, resolution=64)
    assert result["frames"] == 180 and result["compositor_us_p50"] > 0 and result["hud_us_p50"] > 0
    assert 8 <= result["hud_layouts"] <= 10, "two seconds of display time at 4 layouts a second"
    assert "preview_submit_us_p50" not in result, "the preview is measured only when asked for"


def test_hud_bench_refuses_too_few_frames():
    with pytest.raises(ValueError, match="frames must be >= 2, got 1"):
        run(frames=1)

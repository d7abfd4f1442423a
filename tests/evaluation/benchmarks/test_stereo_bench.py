"""``genxr bench stereo``: the eyes it renders are a headset's, and it reports both cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genxr.evaluation.benchmarks.stereo import EYE_SEPARATION_M, _head, headset_views, run


def test_the_benchmark_eyes_sit_64_mm_apart_along_the_turned_head_and_look_outwards():
    head = _head(90.0)  # turned left (+90 degrees about +Y): its right axis is the reference frame's -Z
    left, right = headset_views(head)
    offset = np.subtract(right.pose.position, left.pose.position)
    np.testing.assert_allclose(offset, [0.0, 0.0, -EYE_SEPARATION_M], atol=1e-9)
    assert left.fov.angle_left == pytest.approx(-math.radians(47.0))
    assert right.fov.angle_right == pytest.approx(math.radians(47.0))


def test_a_tiny_run_reports_mono_and_stereo():
    result = run(frames=3, resolution=32)
    assert result["frames"] == 3 and result["views"] == 2 and result["resolution"] == 32
    assert result["stereo_compositor_ms_p50"] > 0 and result["mono_compositor_ms_p50"] > 0
    assert "upload_both_eyes_ms_p50" not in result, "GL only when asked for"
    with pytest.raises(ValueError, match="frames must be >= 2, got 1"):
        run(frames=1)

"""The GL compositor against the CPU one it must agree with (Mesa llvmpipe through EGL, surfaceless).

Each check runs in a child process with the EGL environment (PyOpenGL fixes EGL or GLX at its
first import, and the preview's tests use GLX) and reports JSON; see tests/xr_runtime/openxr/test_gl.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.xr_runtime.openxr.test_gl import ROOT, run_gl

PRELUDE = textwrap.dedent("""
    import json, math
    import numpy as np
    from genxr.evaluation.benchmarks.stereo import offscreen_gl_context
    context = offscreen_gl_context()
    from genxr.evaluation.benchmarks.stereo import headset_views
    from genxr.platform.messages import Pose, WorldFrame
    from genxr.xr_runtime.avatar_body import EYE_COLOUR
    from genxr.xr_runtime.compositor import Compositor, CompositorConfig
    from genxr.xr_runtime.gl_compositor import GLCompositor, mono_view
    from genxr.xr_runtime.openxr import sink
    from tests.xr_runtime.test_avatar_overlay import turned

    def head(yaw_deg):
        half = math.radians(yaw_deg) / 2
        return Pose(position=(0.0, 1.6, 0.0), orientation=(0.0, math.sin(half), 0.0, math.cos(half)))

    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8).repeat(8, axis=0).repeat(8, axis=1)
    world = WorldFrame(session_id="s", request_id=0, frame_id=1, head=head(0.0), generated_for_time_ns=0,
                       vertical_fov_deg=90.0, image=blocks)
    config = CompositorConfig(width=160, height=144)
    cpu = Compositor(config)
""")

WORLD = PRELUDE + textwrap.dedent("""
    gl = GLCompositor(config)
    target = gl.texture()
    worst = []
    for yaw in (0.0, 12.0, 40.0, 100.0, 170.0):  # 100 and 170: rays behind the generation camera
        for view in [mono_view(head(yaw), config)] + headset_views(head(yaw)):
            want = cpu.composite(1, 0, view.pose, world, views=[view]).image.astype(int)
            angle = gl.render(target, world, view)
            got = gl.read(target).astype(int)
            worst.append(int(np.abs(want - got).max()))
    print(json.dumps({"worst": worst, "angle_40": gl.render(target, world, mono_view(head(40.0), config))}))
""")

AVATAR = PRELUDE + textwrap.dedent("""
    config = CompositorConfig(width=256, height=256)  # limbs several pixels wide: outlines decide less
    cpu = Compositor(config)
    gl = GLCompositor(config)
    target = gl.texture()
    result = {}
    for yaw in (0.0, 180.0):
        motion = turned(yaw)
        view = mono_view(head(0.0), config)
        want = cpu.composite(1, 10**9, view.pose, None, motion).image
        gl.render(target, None, view, motion, 10**9)
        got = gl.read(target)
        drawn_cpu, drawn_gl = want.any(axis=-1), got.any(axis=-1)
        dark_eyes = (got.max(axis=-1) < 60) & drawn_gl  # the eyes, whatever their shading
        result[str(int(yaw))] = {"iou": float((drawn_cpu & drawn_gl).sum() / (drawn_cpu | drawn_gl).sum()),
                                 "eye_pixels": int(dark_eyes.sum()), "body_pixels": int(drawn_gl.sum())}
    print(json.dumps(result))
""")

LINEAR = PRELUDE + textwrap.dedent("""
    view = mono_view(head(20.0), config)
    shown = cpu.composite(1, 0, view.pose, world, views=[view]).image
    want = sink.SRGB_TO_LINEAR[shown] * 255.0
    gl = GLCompositor(config, target_format=sink.GL_RGBA16F)
    target = gl.texture()
    gl.render(target, world, view)
    got = gl.read(target).astype(float)  # the linear values, as 8-bit
    # GL filters in linear light (an sRGB texture), the CPU in sRGB bytes: compare inside the blocks
    flat = np.ones(shown.shape[:2], bool)
    for axis in (0, 1):
        for shift in (-1, 1):
            flat &= np.all(np.roll(shown, shift, axis=axis) == shown, axis=-1)
    error = np.abs(want - got)[flat]
    print(json.dumps({"flat_share": float(flat.mean()), "max_error": float(error.max())}))
""")


def test_the_gl_timewarp_agrees_with_the_cpu_compositor_in_every_view():
    """Issue #17, Build 2: same pose -> the same image, within one 8-bit level (bilinear rounding),
    mono and both asymmetric eyes, rays behind the generation camera included."""
    result = run_gl(WORLD)
    assert max(result["worst"]) <= 1, result
    assert result["angle_40"] == pytest.approx(40.0, abs=1e-3)


def test_the_gl_avatar_is_the_cpu_avatars_body_and_its_eyes_show_where_it_looks():
    result = run_gl(AVATAR)
    facing, behind = result["0"], result["180"]
    assert facing["iou"] > 0.7 and behind["iou"] > 0.7, ("the same body where the CPU compositor draws it", result)
    assert facing["eye_pixels"] >= 4, "looking at the user: the eyes show"
    assert behind["eye_pixels"] == 0 and behind["body_pixels"] > 100, "from behind: the body, no eyes"


def test_a_linear_swapchain_gets_linear_light():
    result = run_gl(LINEAR)
    assert result["flat_share"] > 0.3 and result["max_error"] <= 1.0, result


def test_bench_compositor_prints_cpu_and_gl_per_eye_times():
    env = {**os.environ, "PYOPENGL_PLATFORM": "egl", "EGL_PLATFORM": "surfaceless"}
    env.pop("DISPLAY", None)
    done = subprocess.run([str(Path(sys.executable).with_name("genxr")), "bench", "compositor", "--json", "--frames", "3",
                           "--size", "256"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for key in ("cpu_ms_p50_256", "gl_ms_p50_256", "cpu_composite_ms_p50_256", "gl_speedup_p50_256"):
        assert result[key] > 0, key
    assert "cpu_ms_p50_1024" not in result, "only the sizes asked for"

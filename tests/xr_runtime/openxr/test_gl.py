"""The swapchain upload with real OpenGL (Mesa llvmpipe through EGL, surfaceless, on the CPU).

PyOpenGL fixes its platform (EGL or GLX) at its first import in a process, and the preview
window's tests use GLX, so every GL check here runs in a child process with the EGL
environment set and reports JSON. Each texture is created with the swapchain's internal
format, filled through genxr's upload, read back with ``glGetTexImage`` and compared exactly
with what was uploaded, row order included (GL's origin is the bottom-left corner)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

PRELUDE = textwrap.dedent("""
    import json
    import numpy as np
    from OpenGL import GL
    from xr.utils.gl.egl_util import EGLOffscreenContextProvider
    from genxr.xr_runtime.openxr import sink as sink_module

    context = EGLOffscreenContextProvider()
    context.make_current()

    def texture(swapchain_format, width, height):
        name = int(GL.glGenTextures(1))
        GL.glBindTexture(GL.GL_TEXTURE_2D, name)
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, swapchain_format, width, height, 0, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, None)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        return name

    def read_back(name, width, height, as_float):
        GL.glBindTexture(GL.GL_TEXTURE_2D, name)
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        kind, dtype = (GL.GL_FLOAT, np.float32) if as_float else (GL.GL_UNSIGNED_BYTE, np.uint8)
        data = GL.glGetTexImage(GL.GL_TEXTURE_2D, 0, GL.GL_RGB, kind)
        return np.frombuffer(data, dtype).reshape(height, width, 3)
""")

UPLOAD_EACH_FORMAT = PRELUDE + textwrap.dedent("""
    image = np.random.default_rng(0).integers(0, 256, (23, 37, 3), dtype=np.uint8)  # odd width: unaligned rows
    result = {"renderer": GL.glGetString(GL.GL_RENDERER).decode()}
    lut = sink_module.SRGB_TO_LINEAR
    expected = {  # what each internal format must hold, top image row in the last texture row
        sink_module.GL_SRGB8_ALPHA8: (False, image[::-1].astype(np.float64)),
        sink_module.GL_RGBA8: (False, np.round(lut * 255.0)[image[::-1]]),
        sink_module.GL_RGBA16F: (True, lut.astype(np.float16).astype(np.float64)[image[::-1]]),
        sink_module.GL_RGB10_A2: (True, (np.round(lut.astype(np.float64) * 1023) / 1023)[image[::-1]]),
    }
    for swapchain_format, (as_float, want) in expected.items():
        name = texture(swapchain_format, 37, 23)
        sink_module.upload_rgb(name, image, swapchain_format)
        got = read_back(name, 37, 23, as_float).astype(np.float64)
        result[sink_module.FORMAT_NAMES[swapchain_format]] = {
            "max_error": float(np.abs(got - want).max()), "gl_error": int(GL.glGetError()),
            "top_row_last": bool(np.array_equal(got[-1], want[-1])),
        }
    print(json.dumps(result))
""")

SINK_INTO_REAL_TEXTURES = PRELUDE + textwrap.dedent("""
    import xr
    from genxr.platform.messages import DisplayFrame
    from genxr.xr_runtime.openxr.frames import OpenXRFrameCycle
    from tests.helpers.fake_openxr import FakeRuntime, address

    class GLRuntime(FakeRuntime):
        # The fake runtime whose swapchain images are real GL textures, as a runtime's are.
        def enumerate_swapchain_images(self, swapchain, element_type):
            width, height, swapchain_format, _ = self.swapchains[address(swapchain)]["info"]
            images = (xr.SwapchainImageOpenGLKHR * 3)()
            for image in images:
                image.image = texture(swapchain_format, width, height)
            return images

    runtime = GLRuntime()
    cycle = OpenXRFrameCycle(runtime, instance=runtime.instance, session=runtime.session,
                             reference_space=runtime.space, view_configuration="PRIMARY_STEREO")
    sink = sink_module.OpenXRSwapchainSink(cycle, system_id=1, width=40, height=30)
    runtime.queue("READY")
    rng = np.random.default_rng(1)
    eyes = [rng.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(2)]
    cycle.begin(1)
    sink.submit(DisplayFrame(frame_id=1, display_time_ns=0, image=eyes[0], view_images=eyes))
    shown = [read_back(chain.textures[0], 40, 30, False) for chain in sink.swapchains]
    print(json.dumps({"format": sink_module.FORMAT_NAMES[sink.format], "layers": len(runtime.layers[0]),
                      "eyes_exact": [bool(np.array_equal(s[::-1], e)) for s, e in zip(shown, eyes)],
                      "gl_error": int(GL.glGetError())}))
    sink.close()
""")


def run_gl(script: str) -> dict:
    env = {**os.environ, "PYOPENGL_PLATFORM": "egl", "EGL_PLATFORM": "surfaceless"}
    env.pop("DISPLAY", None)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    if done.returncode != 0 and "EGL" in done.stderr and "display" in done.stderr.lower():
        pytest.skip(f"no EGL display (install libegl1 and libgl1-mesa-dri): {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_upload_into_each_swapchain_format_reads_back_exactly_with_rows_flipped():
    result = run_gl(UPLOAD_EACH_FORMAT)
    for name in ("GL_SRGB8_ALPHA8", "GL_RGBA8", "GL_RGBA16F"):
        assert result[name] == {"max_error": 0.0, "gl_error": 0, "top_row_last": True}, (name, result)
    # 10-bit unsigned normalised: read back as float, exact up to float32 rounding of k / 1023.
    assert result["GL_RGB10_A2"]["max_error"] < 1e-6 and result["GL_RGB10_A2"]["gl_error"] == 0


def test_the_sink_uploads_each_eye_into_its_acquired_swapchain_texture():
    result = run_gl(SINK_INTO_REAL_TEXTURES)
    assert result == {"format": "GL_SRGB8_ALPHA8", "layers": 1, "eyes_exact": [True, True], "gl_error": 0}

"""``genxr bench stereo``: what the headset path costs per frame on top of the mono display.

Baseline, measured in the same run and interleaved frame by frame with the stereo case
(so both see the same machine load): the mono compositor - the timewarp of a 64x64 world
frame to one ``resolution`` x ``resolution`` display, the stage with the <= 3 ms target at
256x256 (docs/xr_runtime.md, "Measured").

* stereo: the same world frame re-projected into two views with a headset's asymmetric
  fields of view (a Valve Index-like eye: 2 degrees more outwards than inwards) and
  orientations, one image per eye;
* with ``gl=True``, the swapchain upload of both eyes (``glTexSubImage2D`` into sRGB
  textures, :func:`~genxr.xr_runtime.openxr.sink.upload_rgb`, finished with ``glFinish``)
  with the GL this process gets through EGL - Mesa's llvmpipe on a machine without a GPU,
  which is a CPU copy, not what a headset PC's driver costs.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from genxr.platform.messages import Pose, WorldFrame
from genxr.platform.stats import percentiles
from genxr.platform.units import NS_PER_MS, NS_PER_S
from genxr.xr_runtime.compositor import Compositor, CompositorConfig
from genxr.xr_runtime.views import DisplayView, ViewFov

FRAME_NS = round(NS_PER_S / 90)
EYE_SEPARATION_M = 0.064


def _head(yaw_deg: float) -> Pose:
    half = math.radians(yaw_deg) / 2
    return Pose(position=(0.0, 1.6, 0.0), orientation=(0.0, math.sin(half), 0.0, math.cos(half)))


def headset_views(head: Pose) -> list[DisplayView]:
    """Two eyes of ``head`` (reference space), 64 mm apart, each seeing 2 degrees more outwards."""
    outward, inward, vertical = math.radians(47.0), math.radians(45.0), math.radians(46.0)
    right_axis = head.rotation_matrix()[:, 0]
    eyes = []
    for side, fov in ((-1, ViewFov(-outward, inward, vertical, -vertical)),
                      (1, ViewFov(-inward, outward, vertical, -vertical))):
        position = tuple(float(v) for v in np.asarray(head.position) + side * EYE_SEPARATION_M / 2 * right_axis)
        eyes.append(DisplayView(pose=Pose(position=position, orientation=head.orientation), fov=fov))
    return eyes


def run(frames: int = 300, resolution: int = 256, gl: bool = False, threads: int = 1) -> dict:
    """Mono vs stereo compositor (and optionally the GL upload) per frame, same run, with
    ``threads`` torch threads (a session's compositor shares two cores with the models)."""
    if frames < 2:
        raise ValueError(f"frames must be >= 2, got {frames}")
    import torch

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    world = WorldFrame(session_id="bench", request_id=0, frame_id=0, head=_head(0.0), generated_for_time_ns=0,
                       vertical_fov_deg=90.0, image=rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    compositor = Compositor(CompositorConfig(width=resolution, height=resolution))
    upload = _gl_upload(resolution) if gl else None
    mono_ns, stereo_ns, upload_ns = [], [], []
    for frame_id in range(frames):
        head, display_ns = _head(0.5 * (frame_id % 60)), (frame_id + 1) * FRAME_NS
        start = time.perf_counter_ns()
        compositor.composite(frame_id, display_ns, head, world)
        mono_ns.append(time.perf_counter_ns() - start)
        start = time.perf_counter_ns()
        shown = compositor.composite(frame_id, display_ns, head, world, views=headset_views(head))
        stereo_ns.append(time.perf_counter_ns() - start)
        if upload is not None:
            upload_ns.append(upload(shown.view_images))
    mono_p50, mono_p99 = percentiles(mono_ns, (50, 99), per=NS_PER_MS)
    stereo_p50, stereo_p99 = percentiles(stereo_ns, (50, 99), per=NS_PER_MS)
    result = {
        "frames": frames, "resolution": resolution, "views": 2, "threads": threads,
        "mono_compositor_ms_p50": mono_p50, "mono_compositor_ms_p99": mono_p99,
        "stereo_compositor_ms_p50": stereo_p50, "stereo_compositor_ms_p99": stereo_p99,
        "stereo_over_mono_p50": stereo_p50 / mono_p50,
        "stereo_per_view_over_mono_p50": stereo_p50 / 2 / mono_p50,
    }
    if upload is not None:
        upload_p50, upload_p99 = percentiles(upload_ns, (50, 99), per=NS_PER_MS)
        result.update({"gl_renderer": upload.renderer, "upload_both_eyes_ms_p50": upload_p50,
                       "upload_both_eyes_ms_p99": upload_p99, "upload_over_mono_p50": upload_p50 / mono_p50})
    return result


def offscreen_gl_context():
    """An EGL context (surfaceless where there is no display) made current in this process;
    keep it referenced while GL is used."""
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")  # before OpenGL's first import in this process
    os.environ.setdefault("EGL_PLATFORM", "surfaceless")
    from xr.utils.gl.egl_util import EGLOffscreenContextProvider

    context = EGLOffscreenContextProvider()
    context.make_current()
    return context


def _gl_upload(resolution: int):
    """A callable timing the upload of a list of eye images into two sRGB textures (ns)."""
    context = offscreen_gl_context()
    from OpenGL import GL

    from genxr.xr_runtime.openxr.sink import GL_SRGB8_ALPHA8, upload_rgb

    textures = [int(name) for name in GL.glGenTextures(2)]
    for name in textures:
        GL.glBindTexture(GL.GL_TEXTURE_2D, name)
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL_SRGB8_ALPHA8, resolution, resolution, 0, GL.GL_RGBA,
                        GL.GL_UNSIGNED_BYTE, None)

    def upload(images) -> int:
        start = time.perf_counter_ns()
        for name, image in zip(textures, images):
            upload_rgb(name, image, GL_SRGB8_ALPHA8)
        GL.glFinish()
        return time.perf_counter_ns() - start

    upload.renderer = GL.glGetString(GL.GL_RENDERER).decode()
    upload.context = context  # kept alive with the callable
    return upload

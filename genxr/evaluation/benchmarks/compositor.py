"""``genxr bench compositor``: the CPU compositor vs the GL one, per eye, at headset sizes.

Both build what a headset is shown for one eye: the newest 64x64 world frame re-projected
to the eye's pose and asymmetric frustum, with the avatar's body over it, in the eye's
swapchain texture. Frames alternate between the two (so both see the same machine load), a
stereo pair each, the head turning; per-eye times are the pair's time over two.

* baseline, ``cpu``: :class:`~genxr.xr_runtime.compositor.Compositor` (OpenCV warp, Pillow
  body) and the upload of each eye into an sRGB texture (:func:`~genxr.xr_runtime.openxr.sink.upload_rgb`),
  what the headset path costs without a GPU compositor; ``cpu_composite`` is the first part alone;
* ``gl``: :class:`~genxr.xr_runtime.gl_compositor.GLCompositor` rendering into the texture.

Both end with ``glFinish``. The GL is what this process gets through EGL: Mesa's llvmpipe on a
machine without a GPU (a CPU rasteriser on all cores), a GPU's driver where there is one;
``gl_renderer`` says which. Sizes: 256^2, 1024^2 and ``headset`` (a Quest 3 over Link
recommends 2064x2208 per eye).
"""

from __future__ import annotations

import math
import time

import numpy as np

from genxr.evaluation.benchmarks.stereo import headset_views, offscreen_gl_context
from genxr.platform.messages import Pose, WorldFrame
from genxr.platform.stats import percentiles
from genxr.platform.units import NS_PER_MS, NS_PER_S

HEADSET_SIZE = (2064, 2208)
"""(width, height) per eye a Quest 3 over Link recommends, pixels."""
SIZES = {"256": (256, 256), "1024": (1024, 1024), "headset": HEADSET_SIZE}
FRAME_NS = round(NS_PER_S / 90)
AVATAR_DISTANCE_M = 1.5
"""How far in front of the user the avatar stands, metres."""


def _avatar(frames: int):
    """A standing avatar facing the user from :data:`AVATAR_DISTANCE_M`, motion for the whole run."""
    from genxr.components.avatar import skeleton as sk
    from genxr.platform.messages import AvatarMotion

    rest = np.broadcast_to(sk.matrix_to_rot6d(np.eye(3)), (frames, 22, 6)).astype(np.float32)
    roots = np.tile(np.asarray((0.0, sk.PELVIS_HEIGHT, -AVATAR_DISTANCE_M), np.float32), (frames, 1))
    return AvatarMotion(session_id="bench", request_id=0, start_time_ns=0, fps=NS_PER_S / FRAME_NS,
                        rotations_6d=rest, root_translation=roots)


def _head(frame_id: int) -> Pose:
    half = math.radians(0.5 * (frame_id % 60)) / 2
    return Pose(position=(0.0, 1.6, 0.0), orientation=(0.0, math.sin(half), 0.0, math.cos(half)))


def run(frames: int = 60, sizes: tuple[str, ...] = tuple(SIZES)) -> dict:
    """Per-eye p50/p99 ms of the CPU and the GL compositor at each of ``sizes`` (keys of :data:`SIZES`)."""
    if frames < 2:
        raise ValueError(f"frames must be >= 2, got {frames}")
    unknown = [size for size in sizes if size not in SIZES]
    if unknown or not sizes:
        raise ValueError(f"sizes must be some of {', '.join(SIZES)}, got {list(sizes)}")
    context = offscreen_gl_context()
    from OpenGL import GL

    from genxr.xr_runtime.compositor import Compositor, CompositorConfig
    from genxr.xr_runtime.gl_compositor import GLCompositor
    from genxr.xr_runtime.openxr.sink import GL_SRGB8_ALPHA8, upload_rgb

    rng = np.random.default_rng(0)
    world = WorldFrame(session_id="bench", request_id=0, frame_id=0, head=_head(0), generated_for_time_ns=0,
                       vertical_fov_deg=90.0, image=rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    avatar = _avatar(frames)
    result: dict = {"frames": frames, "views": 2, "gl_renderer": GL.glGetString(GL.GL_RENDERER).decode(),
                    "headset_size": list(HEADSET_SIZE)}
    for size in sizes:
        width, height = SIZES[size]
        config = CompositorConfig(width=width, height=height)
        cpu, gl = Compositor(config), GLCompositor(config, GL_SRGB8_ALPHA8)
        textures = [gl.texture() for _ in range(2)]
        cpu_ns, composite_ns, gl_ns = [], [], []
        for frame_id in range(frames):
            display_ns = (frame_id + 1) * FRAME_NS
            views = headset_views(_head(frame_id))
            start = time.perf_counter_ns()
            shown = cpu.composite(frame_id, display_ns, views[0].pose, world, avatar, views=views)
            composited = time.perf_counter_ns()
            for texture, image in zip(textures, shown.view_images):
                upload_rgb(texture, image, GL_SRGB8_ALPHA8)
            GL.glFinish()
            cpu_ns.append((time.perf_counter_ns() - start) / len(views))
            composite_ns.append((composited - start) / len(views))
            start = time.perf_counter_ns()
            for texture, view in zip(textures, views):
                gl.render(texture, world, view, avatar, display_ns)
            GL.glFinish()
            gl_ns.append((time.perf_counter_ns() - start) / len(views))
        gl.close()
        GL.glDeleteTextures(len(textures), textures)
        for name, values in (("cpu", cpu_ns), ("cpu_composite", composite_ns), ("gl", gl_ns)):
            p50, p99 = percentiles(values, (50, 99), per=NS_PER_MS)
            result[f"{name}_ms_p50_{size}"], result[f"{name}_ms_p99_{size}"] = p50, p99
        result[f"gl_speedup_p50_{size}"] = result[f"cpu_ms_p50_{size}"] / result[f"gl_ms_p50_{size}"]
    del context
    return result

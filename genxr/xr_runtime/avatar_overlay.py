"""Draw the avatar into a display frame: its newest motion, seen from the display pose.

:class:`~genxr.platform.messages.AvatarMotion` holds local joint rotations (6D) and the
root translation in the session's reference space. For the display time the overlay
picks the motion frame (holding the last one past the chunk's end), runs forward
kinematics on the 22-joint skeleton, projects the joints with the display camera
(OpenXR view space: +X right, +Y up, -Z forward; a pinhole with the display's vertical FOV,
or a headset eye's asymmetric frustum) and draws bones as thick lines and the head as a disc with Pillow. Joints behind the
camera are not drawn.

Hand-drawn rather than rasterised by the simulator's renderer: the renderer draws the
world model's training scenes; the overlay has to cost well under a millisecond per frame.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from genxr.components.avatar import skeleton as sk
from genxr.platform.messages import AvatarMotion, Pose
from genxr.xr_runtime.views import ViewFov

BODY_COLOUR = (70, 130, 220)
HEAD_COLOUR = (240, 200, 160)


def joints_at(motion: AvatarMotion, time_ns: int) -> np.ndarray:
    """(22, 3) float64 joint positions, metres, reference space, of ``motion`` at ``time_ns``."""
    index = round((time_ns - motion.start_time_ns) * motion.fps / 1e9)
    index = min(max(index, 0), motion.rotations_6d.shape[0] - 1)
    positions, _ = sk.forward_kinematics_6d(motion.rotations_6d[index].astype(np.float64),
                                            motion.root_translation[index].astype(np.float64))
    return positions


def _frustum(fov: float | ViewFov, width: int, height: int) -> ViewFov:
    """A vertical FOV in degrees (the mono display) as its symmetric frustum; a ViewFov as is."""
    return fov if isinstance(fov, ViewFov) else ViewFov.symmetric(fov, width, height)


def project(points: np.ndarray, head: Pose, width: int, height: int, fov: float | ViewFov) -> np.ndarray:
    """(N, 3) reference-space points -> (N, 3): pixel u, v and depth in front of the camera (metres).

    ``head`` is the camera's (eye's) pose in the reference space; ``fov`` the vertical field of
    view in degrees (symmetric, square pixels) or a view's asymmetric :class:`ViewFov`."""
    tan_l, tan_r, tan_u, tan_d = _frustum(fov, width, height).tangents()
    view = np.linalg.inv(head.matrix())
    camera = points @ view[:3, :3].T + view[:3, 3]
    depth = -camera[:, 2]
    safe = np.where(depth > 1e-6, depth, np.inf)
    u = width * (camera[:, 0] / safe - tan_l) / (tan_r - tan_l)
    v = height * (tan_u - camera[:, 1] / safe) / (tan_u - tan_d)
    return np.stack([u, v, depth], axis=1)


def draw_avatar(image: np.ndarray, motion: AvatarMotion, time_ns: int, head: Pose,
                fov: float | ViewFov) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with the avatar drawn at ``time_ns`` seen from ``head`` through
    ``fov`` (vertical degrees, or a view's :class:`ViewFov`); a new array."""
    height, width = image.shape[:2]
    frustum = _frustum(fov, width, height)
    pixels = project(joints_at(motion, time_ns), head, width, height, frustum)
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    thickness = max(1, round(width / 64))
    for joint, parent in enumerate(sk.PARENTS):
        if parent < 0 or pixels[joint, 2] <= 0.05 or pixels[parent, 2] <= 0.05:
            continue
        draw.line([tuple(pixels[parent, :2]), tuple(pixels[joint, :2])], fill=BODY_COLOUR,
                  width=max(1, round(thickness * 2 / max(pixels[joint, 2], 0.5))))
    head_index = sk.JOINT["head"]
    if pixels[head_index, 2] > 0.05:
        _, _, tan_u, tan_d = frustum.tangents()
        radius = 0.1 * height / (tan_u - tan_d) / pixels[head_index, 2]
        u, v = pixels[head_index, :2]
        draw.ellipse([u - radius, v - radius, u + radius, v + radius], fill=HEAD_COLOUR)
    return np.asarray(canvas)

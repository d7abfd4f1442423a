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
from genxr.platform.units import NS_PER_S
from genxr.xr_runtime.views import ViewFov

BODY_COLOUR = (70, 130, 220)
HEAD_COLOUR = (240, 200, 160)

MIN_DEPTH_M = 1e-6
"""Points less than this in front of the camera, metres, are projected as if at infinity (no divide by depth)."""
NEAR_PLANE_M = 0.05
"""Joints less than this in front of the camera, metres, are not drawn (nor the bones and head disc at them)."""
BONE_THICKNESS_PER_WIDTH = 1 / 64
"""Line width of a bone at :data:`BONE_REFERENCE_DEPTH_M` as a fraction of the image width (at least one pixel)."""
BONE_REFERENCE_DEPTH_M = 2.0
"""Depth at which a bone is drawn at its base thickness, metres; bones are drawn thicker nearer and thinner farther."""
BONE_MIN_DEPTH_M = 0.5
"""Bones nearer than this, metres, are drawn as thick as at this depth (caps the width of a bone next to the eye)."""
HEAD_RADIUS_M = 0.1
"""Radius of the head disc, metres."""
BOX_MARGIN_PX = 2
"""Pixels beyond the widest bone's width added around the avatar's bounding box, the only region redrawn."""


def joints_at(motion: AvatarMotion, time_ns: int) -> np.ndarray:
    """(22, 3) float64 joint positions, metres, reference space, of ``motion`` at ``time_ns``."""
    index = round((time_ns - motion.start_time_ns) * motion.fps / NS_PER_S)
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
    safe = np.where(depth > MIN_DEPTH_M, depth, np.inf)
    u = width * (camera[:, 0] / safe - tan_l) / (tan_r - tan_l)
    v = height * (tan_u - camera[:, 1] / safe) / (tan_u - tan_d)
    return np.stack([u, v, depth], axis=1)


def draw_avatar(image: np.ndarray, motion: AvatarMotion, time_ns: int, head: Pose,
                fov: float | ViewFov, in_place: bool = False) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with the avatar drawn at ``time_ns`` seen from ``head`` through
    ``fov`` (vertical degrees, or a view's :class:`ViewFov`): a new array, or ``image`` itself
    with ``in_place`` (the compositor's own fresh frame: one 256x256 copy less per frame)."""
    height, width = image.shape[:2]
    frustum = _frustum(fov, width, height)
    pixels = project(joints_at(motion, time_ns), head, width, height, frustum)
    thickness = max(1, round(width * BONE_THICKNESS_PER_WIDTH))
    bones = [(parent, joint,
              max(1, round(thickness * BONE_REFERENCE_DEPTH_M / max(pixels[joint, 2], BONE_MIN_DEPTH_M))))
             for joint, parent in enumerate(sk.PARENTS)
             if parent >= 0 and pixels[joint, 2] > NEAR_PLANE_M and pixels[parent, 2] > NEAR_PLANE_M]
    head_index = sk.JOINT["head"]
    disc = None
    if pixels[head_index, 2] > NEAR_PLANE_M:
        _, _, tan_u, tan_d = frustum.tangents()
        disc = (*pixels[head_index, :2], HEAD_RADIUS_M * height / (tan_u - tan_d) / pixels[head_index, 2])
    out = image if in_place else image.copy()
    # Draw only inside the avatar's bounding box: converting the whole frame to and from a
    # Pillow image costs more than the drawing (docs/xr_runtime.md, "Measured").
    drawn = [pixels[j, :2] for bone in bones for j in bone[:2]]
    if disc is not None:
        drawn += [np.array(disc[:2]) - disc[2], np.array(disc[:2]) + disc[2]]
    if not drawn:
        return out
    widest = round(thickness * BONE_REFERENCE_DEPTH_M / BONE_MIN_DEPTH_M)  # a bone at BONE_MIN_DEPTH_M
    margin = widest + BOX_MARGIN_PX
    low = np.floor(np.min(drawn, axis=0)) - margin
    high = np.ceil(np.max(drawn, axis=0)) + margin
    x0, y0 = int(np.clip(low[0], 0, width)), int(np.clip(low[1], 0, height))
    x1, y1 = int(np.clip(high[0], 0, width)), int(np.clip(high[1], 0, height))
    if x1 <= x0 or y1 <= y0:
        return out
    canvas = Image.fromarray(out[y0:y1, x0:x1])
    draw = ImageDraw.Draw(canvas)
    for parent, joint, line_width in bones:
        draw.line([(pixels[parent, 0] - x0, pixels[parent, 1] - y0), (pixels[joint, 0] - x0, pixels[joint, 1] - y0)],
                  fill=BODY_COLOUR, width=line_width)
    if disc is not None:
        u, v, radius = disc[0] - x0, disc[1] - y0, disc[2]
        draw.ellipse([u - radius, v - radius, u + radius, v + radius], fill=HEAD_COLOUR)
    out[y0:y1, x0:x1] = np.asarray(canvas)
    return out

"""Draw the avatar into a display frame: its newest motion, seen from the display pose.

:class:`~genxr.platform.messages.AvatarMotion` holds local joint rotations (6D) and the
root translation in the session's reference space. For the display time the overlay
picks the motion frame (holding the last one past the chunk's end), runs forward
kinematics on the 22-joint skeleton, projects the joints with the display camera
(OpenXR view space: +X right, +Y up, -Z forward; a pinhole with the display's vertical FOV,
or a headset eye's asymmetric frustum) and draws the body of :mod:`genxr.xr_runtime.avatar_body`
with Pillow: bones as lines as thick as their capsules, the head as a disc and the eyes that
face the camera as dark discs on it (so where the avatar looks shows). Joints behind the camera
are not drawn.

Hand-drawn rather than rasterised by the simulator's renderer: the renderer draws the
world model's training scenes; the overlay has to cost well under a millisecond per frame.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from genxr.components.avatar import skeleton as sk
from genxr.platform.messages import AvatarMotion, Pose
from genxr.xr_runtime.avatar_body import (
    BODY_COLOUR,
    BONE_RADIUS_M,
    EYE_COLOUR,
    EYE_RADIUS_M,
    HEAD_COLOUR,
    HEAD_RADIUS_M,
    BodyPose,
    body_pose,
)
from genxr.xr_runtime.views import ViewFov

__all__ = ["BODY_COLOUR", "EYE_COLOUR", "HEAD_COLOUR", "draw_avatar", "joints_at", "project"]

MIN_DEPTH_M = 1e-6
"""Points less than this in front of the camera, metres, are projected as if at infinity (no divide by depth)."""
NEAR_PLANE_M = 0.05
"""Joints less than this in front of the camera, metres, are not drawn (nor the bones and head disc at them)."""
BONE_MIN_DEPTH_M = 0.5
"""Bones nearer than this, metres, are drawn as thick as at this depth (caps the width of a bone next to the eye)."""
BOX_MARGIN_PX = 2
"""Pixels beyond the widest bone's width added around the avatar's bounding box, the only region redrawn."""


def joints_at(motion: AvatarMotion, time_ns: int) -> np.ndarray:
    """(22, 3) float64 joint positions, metres, reference space, of ``motion`` at ``time_ns``."""
    return body_pose(motion, time_ns).joints


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
    with ``in_place`` (the compositor's own fresh frame: one 256x256 copy less per frame).

    The body of :mod:`genxr.xr_runtime.avatar_body` at its sizes: limbs as lines as wide as their
    capsules, the head as a disc, and each eye that faces the camera as a dark disc over it."""
    height, width = image.shape[:2]
    frustum = _frustum(fov, width, height)
    pose = body_pose(motion, time_ns)
    pixels = project(pose.joints, head, width, height, frustum)
    _, _, tan_u, tan_d = frustum.tangents()
    focal_px = height / (tan_u - tan_d)
    bones = [(parent, joint,
              max(1, round(2 * BONE_RADIUS_M * focal_px / max(pixels[joint, 2], BONE_MIN_DEPTH_M))))
             for joint, parent in enumerate(sk.PARENTS)
             if parent >= 0 and pixels[joint, 2] > NEAR_PLANE_M and pixels[parent, 2] > NEAR_PLANE_M]
    head_index = sk.JOINT["head"]
    discs = []
    if pixels[head_index, 2] > NEAR_PLANE_M:
        discs.append((*pixels[head_index, :2], HEAD_RADIUS_M * focal_px / pixels[head_index, 2], HEAD_COLOUR))
        discs += _visible_eyes(pose, head, width, height, frustum, focal_px)
    out = image if in_place else image.copy()
    # Draw only inside the avatar's bounding box: converting the whole frame to and from a
    # Pillow image costs more than the drawing (docs/xr_runtime.md, "Measured").
    drawn = [pixels[j, :2] for bone in bones for j in bone[:2]]
    for u, v, radius, _ in discs:
        drawn += [np.array((u, v)) - radius, np.array((u, v)) + radius]
    if not drawn:
        return out
    widest = round(2 * BONE_RADIUS_M * focal_px / BONE_MIN_DEPTH_M)  # a bone at BONE_MIN_DEPTH_M
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
    for u, v, radius, colour in discs:  # the head, then the eyes over it
        u, v = u - x0, v - y0
        draw.ellipse([u - radius, v - radius, u + radius, v + radius], fill=colour)
    out[y0:y1, x0:x1] = np.asarray(canvas)
    return out


def _visible_eyes(pose: BodyPose, head: Pose, width: int, height: int, frustum: ViewFov,
                  focal_px: float) -> list[tuple[float, float, float, tuple[int, int, int]]]:
    """(u, v, radius px, colour) of each eye whose outward side faces the camera at ``head``."""
    eyes = pose.eyes()
    facing = np.einsum("ij,ij->i", pose.eye_normals(), eyes - np.asarray(head.position)) < 0
    pixels = project(eyes, head, width, height, frustum)
    return [(float(u), float(v), EYE_RADIUS_M * focal_px / depth, EYE_COLOUR)
            for (u, v, depth), seen in zip(pixels, facing) if seen and depth > NEAR_PLANE_M]

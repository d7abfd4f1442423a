"""The avatar's body as both compositors draw it: capsule limbs, a head sphere, and eyes.

One description, two renderers: the GL compositor (:mod:`genxr.xr_runtime.gl_compositor`)
rasterises :func:`body_mesh` - every bone a cylinder with a sphere at each joint (a capsule
chain), the head a sphere, the eyes two dark spheres set into its front - shaded and
depth-tested; the CPU compositor (:mod:`genxr.xr_runtime.avatar_overlay`) draws the same
sizes as thick lines, a head disc and the eyes that face the camera. The eyes make the
avatar's gaze visible (SARAH's eye contact): looking at the user they sit in the middle of
the face; looking away they slide to its edge or out of sight.

Frames: positions in metres in the session's reference space (OpenXR: +Y up). The head's
own frame is its global rotation from forward kinematics: +Z is where it looks
(:func:`~genxr.components.avatar.skeleton.head_forward`), +Y up, +X to the avatar's left.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from genxr.components.avatar import skeleton as sk
from genxr.platform.messages import AvatarMotion
from genxr.platform.units import NS_PER_S

BODY_COLOUR = (70, 130, 220)
HEAD_COLOUR = (240, 200, 160)
EYE_COLOUR = (25, 25, 35)
"""sRGB colours of the limbs, the head and the eyes."""
BONE_RADIUS_M = 0.03
"""Radius of a limb's capsule, metres."""
HEAD_RADIUS_M = 0.1
"""Radius of the head sphere, metres."""
EYE_RADIUS_M = 0.02
"""Radius of an eye sphere, metres; its centre is on the head's surface, so half of it shows."""
EYE_OFFSETS_M = ((0.035, 0.025, 0.09), (-0.035, 0.025, 0.09))
"""Eye centres in the head's frame (+X the avatar's left, +Y up, +Z forward), metres: on the
head sphere's surface (|offset| ~ HEAD_RADIUS_M), 7 cm apart, a little above the centre."""
CYLINDER_SIDES = 8
"""Faces around a limb's cylinder."""
SPHERE_SUBDIVISIONS = 1
"""Icosahedron subdivisions of a sphere (1: 80 triangles)."""


@dataclass(frozen=True)
class BodyPose:
    """The avatar at one instant: ``joints`` (22, 3) float64 metres, reference space, and
    ``head_rotation`` (3, 3), the head's frame -> reference space."""

    joints: np.ndarray
    head_rotation: np.ndarray

    @property
    def head(self) -> np.ndarray:
        """(3,) head centre, metres."""
        return self.joints[sk.JOINT["head"]]

    def eyes(self) -> np.ndarray:
        """(2, 3) eye centres, metres, reference space (the avatar's left eye first)."""
        return self.head + np.asarray(EYE_OFFSETS_M) @ self.head_rotation.T

    def eye_normals(self) -> np.ndarray:
        """(2, 3) unit outward directions of the eyes from the head centre, reference space."""
        offsets = np.asarray(EYE_OFFSETS_M)
        return (offsets / np.linalg.norm(offsets, axis=1, keepdims=True)) @ self.head_rotation.T


def body_pose(motion: AvatarMotion, time_ns: int) -> BodyPose:
    """``motion``'s pose at ``time_ns``: the nearest motion frame, holding the first before the
    chunk's start and the last past its end."""
    index = round((time_ns - motion.start_time_ns) * motion.fps / NS_PER_S)
    index = min(max(index, 0), motion.rotations_6d.shape[0] - 1)
    positions, rotations = sk.forward_kinematics_6d(motion.rotations_6d[index].astype(np.float64),
                                                    motion.root_translation[index].astype(np.float64))
    return BodyPose(joints=positions, head_rotation=rotations[sk.JOINT["head"]])


@lru_cache(maxsize=1)
def unit_sphere() -> np.ndarray:
    """(T, 3, 3) float64 triangles (counter-clockwise seen from outside) of a unit icosphere."""
    phi = (1 + 5 ** 0.5) / 2
    vertices = [(-1, phi, 0), (1, phi, 0), (-1, -phi, 0), (1, -phi, 0), (0, -1, phi), (0, 1, phi), (0, -1, -phi),
                (0, 1, -phi), (phi, 0, -1), (phi, 0, 1), (-phi, 0, -1), (-phi, 0, 1)]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
             (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11),
             (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    points = np.asarray(vertices, np.float64)
    triangles = points[np.asarray(faces)]
    triangles /= np.linalg.norm(triangles, axis=-1, keepdims=True)
    for _ in range(SPHERE_SUBDIVISIONS):
        a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
        ab, bc, ca = (a + b) / 2, (b + c) / 2, (c + a) / 2
        triangles = np.concatenate([np.stack(t, axis=1) for t in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))])
        triangles /= np.linalg.norm(triangles, axis=-1, keepdims=True)
    return triangles


@lru_cache(maxsize=1)
def unit_cylinder() -> np.ndarray:
    """(T, 3, 3) float64 triangles of an open cylinder of radius 1 from z = 0 to z = 1."""
    angles = np.linspace(0, 2 * np.pi, CYLINDER_SIDES + 1)
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    triangles = []
    for k in range(CYLINDER_SIDES):
        (x0, y0), (x1, y1) = ring[k], ring[k + 1]
        low0, low1, high0, high1 = (x0, y0, 0), (x1, y1, 0), (x0, y0, 1), (x1, y1, 1)
        triangles += [(low0, low1, high1), (low0, high1, high0)]
    return np.asarray(triangles, np.float64)


def _bone_frames(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B, 3) unit u, v perpendicular to each bone and (B, 3) the bone vector end - start."""
    axis = ends - starts
    length = np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), 1e-9)
    direction = axis / length
    helper = np.where(np.abs(direction[:, 1:2]) < 0.9, [[0.0, 1.0, 0.0]], [[1.0, 0.0, 0.0]])
    u = np.cross(direction, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return u, np.cross(direction, u), axis


def body_mesh(pose: BodyPose) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangles of the body at ``pose``: positions (N, 3) and unit normals (N, 3) float32 in
    metres / reference space, colours (N, 3) uint8 sRGB, N = 3 x triangles (unindexed)."""
    bones = [(parent, joint) for joint, parent in enumerate(sk.PARENTS) if parent >= 0]
    starts = pose.joints[[p for p, _ in bones]]
    ends = pose.joints[[j for _, j in bones]]
    u, v, axis = _bone_frames(starts, ends)
    cylinder = unit_cylinder().reshape(-1, 3)  # (V, 3)
    radial = cylinder[None, :, 0:1] * u[:, None] + cylinder[None, :, 1:2] * v[:, None]  # (B, V, 3)
    limb_points = starts[:, None] + BONE_RADIUS_M * radial + cylinder[None, :, 2:3] * axis[:, None]
    parts = [(limb_points.reshape(-1, 3), radial.reshape(-1, 3), BODY_COLOUR)]
    sphere = unit_sphere().reshape(-1, 3)
    head_index = sk.JOINT["head"]
    joint_centres = np.delete(pose.joints, head_index, axis=0)
    parts.append(((joint_centres[:, None] + BONE_RADIUS_M * sphere[None]).reshape(-1, 3),
                  np.broadcast_to(sphere, (len(joint_centres), *sphere.shape)).reshape(-1, 3), BODY_COLOUR))
    parts.append((pose.head + HEAD_RADIUS_M * sphere, sphere, HEAD_COLOUR))
    for eye in pose.eyes():
        parts.append((eye + EYE_RADIUS_M * sphere, sphere, EYE_COLOUR))
    positions = np.concatenate([p for p, _, _ in parts]).astype(np.float32)
    normals = np.concatenate([n for _, n, _ in parts]).astype(np.float32)
    colours = np.concatenate([np.broadcast_to(np.asarray(c, np.uint8), (len(p), 3)) for p, _, c in parts])
    return positions, normals, colours

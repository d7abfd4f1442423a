"""The avatar's 22-joint SMPL-compatible body skeleton (HumanML3D joint order) in numpy.

Frame ("avatar frame"): right-handed, metres, +Y up, the rest pose faces +Z and its left
side is +X (HumanML3D / SMPL convention). OpenXR's reference spaces are also +Y up but
look down -Z; :mod:`genxr.components.avatar.frames` converts between the two.

Rotations: ``(..., 3, 3)`` matrices acting on column vectors. Local joint rotations are
relative to the parent joint; forward kinematics composes ``R_global = R_parent_global
R_local`` and ``p = p_parent + R_parent_global offset`` (the joint's offset is expressed in
its parent's frame, so a joint's own rotation moves its children, never itself). The 6D
representation (Zhou et al. 2019) is the first two COLUMNS of the matrix,
``(r00, r10, r20, r01, r11, r21)``, as :class:`genxr.platform.messages.AvatarMotion`
documents; decoding is Gram-Schmidt plus a cross product.

Heading ``theta`` (radians) is the rotation about +Y; a body with heading ``theta`` faces
``(sin theta, 0, cos theta)``. Pitch is positive when looking up.

Hand-written rather than taken from pytorch3d / smplx: neither is installable here
(pytorch3d has no CPU wheel for this torch, smplx needs the licensed SMPL files), and the
tree is 22 joints.
"""

from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)
AVATAR_JOINTS = 22
PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
JOINT = {name: index for index, name in enumerate(JOINT_NAMES)}
UPPER_BODY: tuple[int, ...] = tuple(JOINT[n] for n in (
    "spine3", "neck", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist"))

REST_OFFSETS = np.array([
    [0.0, 0.0, 0.0],        # pelvis (placed by the root translation)
    [0.06, -0.09, 0.0],     # left_hip
    [-0.06, -0.09, 0.0],    # right_hip
    [0.0, 0.11, -0.01],     # spine1
    [0.04, -0.38, 0.0],     # left_knee
    [-0.04, -0.38, 0.0],    # right_knee
    [0.0, 0.135, 0.0],      # spine2
    [0.0, -0.40, -0.04],    # left_ankle
    [0.0, -0.40, -0.04],    # right_ankle
    [0.0, 0.055, 0.02],     # spine3
    [0.0, -0.06, 0.12],     # left_foot
    [0.0, -0.06, 0.12],     # right_foot
    [0.0, 0.21, -0.03],     # neck
    [0.07, 0.12, -0.02],    # left_collar
    [-0.07, 0.12, -0.02],   # right_collar
    [0.0, 0.09, 0.05],      # head
    [0.12, 0.03, 0.0],      # left_shoulder
    [-0.12, 0.03, 0.0],     # right_shoulder
    [0.26, 0.0, 0.0],       # left_elbow
    [-0.26, 0.0, 0.0],      # right_elbow
    [0.25, 0.0, 0.0],       # left_wrist
    [-0.25, 0.0, 0.0],      # right_wrist
])
"""(22, 3) metres: each joint's offset from its parent in the parent's rest frame (T-pose)."""

PELVIS_HEIGHT = 0.93
"""Metres above the floor of the pelvis when standing (feet on the floor in the rest pose)."""

UP = np.array([0.0, 1.0, 0.0])
FORWARD = np.array([0.0, 0.0, 1.0])


def axis_angle_to_matrix(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues: ``axis`` (..., 3) (normalised here), ``angle`` (...) radians -> (..., 3, 3)."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = np.asarray(angle, dtype=np.float64)[..., None, None]
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def rotation_x(angle: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation about +X by ``angle`` radians."""
    return axis_angle_to_matrix(np.array([1.0, 0.0, 0.0]), angle)


def rotation_y(angle: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation about +Y (heading) by ``angle`` radians."""
    return axis_angle_to_matrix(np.array([0.0, 1.0, 0.0]), angle)


def rotation_z(angle: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation about +Z by ``angle`` radians."""
    return axis_angle_to_matrix(np.array([0.0, 0.0, 1.0]), angle)


def look_rotation(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation taking +Z to the direction with heading ``yaw`` and elevation ``pitch`` (radians)."""
    return rotation_y(yaw) @ rotation_x(-np.asarray(pitch, dtype=np.float64))


def matrix_to_rot6d(matrix: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 6): the first two columns, column by column."""
    return np.concatenate([matrix[..., :, 0], matrix[..., :, 1]], axis=-1)


def rot6d_to_matrix(rot6d: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 3, 3) proper rotation by Gram-Schmidt on the two columns (any non-degenerate input)."""
    six = orthonormalize_6d(rot6d)
    b1, b2 = six[..., :3], six[..., 3:]
    return np.stack([b1, b2, np.cross(b1, b2)], axis=-1)


def orthonormalize_6d(rot6d: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 6): the two columns made orthonormal by Gram-Schmidt, the first kept in
    direction; :func:`rot6d_to_matrix` adds the third. Equals ``matrix_to_rot6d(rot6d_to_matrix(x))``
    without building the matrices (a quarter of the time)."""
    a1, a2 = rot6d[..., :3], rot6d[..., 3:]
    b1 = a1 / np.maximum(np.linalg.norm(a1, axis=-1, keepdims=True), 1e-8)
    a2 = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    return np.concatenate([b1, a2 / np.maximum(np.linalg.norm(a2, axis=-1, keepdims=True), 1e-8)], axis=-1)


def forward_kinematics(local_rotations: np.ndarray, root_translation: np.ndarray,
                       offsets: np.ndarray = REST_OFFSETS) -> tuple[np.ndarray, np.ndarray]:
    """Global joint positions and rotations.

    ``local_rotations`` (..., 22, 3, 3), ``root_translation`` (..., 3) metres (pelvis position
    in the avatar frame) -> positions (..., 22, 3) metres and global rotations (..., 22, 3, 3).
    """
    global_rot = [local_rotations[..., 0, :, :]]
    positions = [np.asarray(root_translation, dtype=np.float64)]
    for joint in range(1, len(PARENTS)):
        parent = PARENTS[joint]
        positions.append(positions[parent] + global_rot[parent] @ offsets[joint])
        global_rot.append(global_rot[parent] @ local_rotations[..., joint, :, :])
    return np.stack(positions, axis=-2), np.stack(global_rot, axis=-3)


def forward_kinematics_6d(rotations_6d: np.ndarray, root_translation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`forward_kinematics` from (..., 22, 6) 6D local rotations."""
    return forward_kinematics(rot6d_to_matrix(rotations_6d), root_translation)


def heading(root_rotation: np.ndarray) -> np.ndarray:
    """(...) radians: the heading of the root's forward (+Z) axis projected on the ground, from (..., 3, 3)."""
    forward = root_rotation[..., :, 2]
    return np.arctan2(forward[..., 0], forward[..., 2])


def head_forward(global_rotations: np.ndarray) -> np.ndarray:
    """(..., 3) unit vector the head looks along: the head's global rotation applied to +Z."""
    return global_rotations[..., JOINT["head"], :, 2]


def body_facing(positions: np.ndarray) -> np.ndarray:
    """(..., 3) unit ground-plane vector the body faces: ``up x across`` with across from hips and shoulders."""
    across = (positions[..., JOINT["right_hip"], :] - positions[..., JOINT["left_hip"], :]
              + positions[..., JOINT["right_shoulder"], :] - positions[..., JOINT["left_shoulder"], :])
    forward = np.cross(UP, across)
    forward[..., 1] = 0.0
    return forward / np.maximum(np.linalg.norm(forward, axis=-1, keepdims=True), 1e-8)


def angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(...) radians in [0, pi] between vectors (..., 3) ``a`` and ``b``."""
    cos = np.sum(a * b, axis=-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def gaze_angle(positions: np.ndarray, global_rotations: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(...) radians between the head's forward and the direction from the head joint to ``target`` (..., 3)."""
    return angle_between(head_forward(global_rotations), target - positions[..., JOINT["head"], :])


def facing_error(positions: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(...) signed radians in (-pi, pi] in the ground plane from the body's facing to the direction
    from the pelvis to ``target`` (..., 3); positive means the target is to the body's left (+Y turn)."""
    facing = body_facing(positions)
    to_target = target - positions[..., JOINT["pelvis"], :]
    return wrap_angle(np.arctan2(to_target[..., 0], to_target[..., 2]) - np.arctan2(facing[..., 0], facing[..., 2]))


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Radians wrapped into (-pi, pi]."""
    return np.pi - np.mod(np.pi - np.asarray(angle), 2.0 * np.pi)

"""Rotations, quaternions and minimum-jerk blending (numpy, float64, batched over leading axes).

Conventions (OpenXR): right-handed frames, +X right, +Y up, -Z forward. A rotation matrix
``R`` (..., 3, 3) takes vectors in a child frame into its parent frame. Quaternions are
(x, y, z, w), as ``XrQuaternionf`` and :class:`genxr.platform.messages.Pose`. Angles are
radians.
"""

from __future__ import annotations

import numpy as np


def _rotation(angle: np.ndarray | float, axis: int) -> np.ndarray:
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    out = np.zeros((*a.shape, 3, 3))
    out[..., axis, axis] = 1.0
    out[..., i, i] = c
    out[..., j, j] = c
    out[..., i, j] = -s if axis != 1 else s
    out[..., j, i] = s if axis != 1 else -s
    return out


def rotation_x(angle: np.ndarray | float) -> np.ndarray:
    """(..., 3, 3) rotation by ``angle`` radians about +X (right-hand rule)."""
    return _rotation(angle, 0)


def rotation_y(angle: np.ndarray | float) -> np.ndarray:
    """(..., 3, 3) rotation by ``angle`` radians about +Y (right-hand rule)."""
    return _rotation(angle, 1)


def rotation_z(angle: np.ndarray | float) -> np.ndarray:
    """(..., 3, 3) rotation by ``angle`` radians about +Z (right-hand rule)."""
    return _rotation(angle, 2)


def euler_yxz(euler: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation ``R_y(yaw) @ R_x(pitch) @ R_z(roll)`` from ``euler`` (..., 3) = (yaw, pitch, roll).

    Yaw turns left for positive values (about +Y), pitch looks up (about +X), roll tilts
    counter-clockwise seen from behind (about +Z) - the head and wrist angles of the
    scripted user.
    """
    euler = np.asarray(euler, dtype=np.float64)
    return rotation_y(euler[..., 0]) @ rotation_x(euler[..., 1]) @ rotation_z(euler[..., 2])


def matrix_to_quaternion(matrix: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions (x, y, z, w) with w >= 0 from rotation matrices (..., 3, 3)."""
    m = np.asarray(matrix, dtype=np.float64)
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    candidates = np.stack([
        np.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1],
                  1.0 + trace], axis=-1),
        np.stack([1.0 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2], m[..., 0, 1] + m[..., 1, 0],
                  m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] - m[..., 1, 2]], axis=-1),
        np.stack([m[..., 0, 1] + m[..., 1, 0], 1.0 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
                  m[..., 1, 2] + m[..., 2, 1], m[..., 0, 2] - m[..., 2, 0]], axis=-1),
        np.stack([m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1],
                  1.0 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2], m[..., 1, 0] - m[..., 0, 1]], axis=-1),
    ], axis=-2)
    # the candidate with the largest norm is the numerically stable one (Shepperd's method)
    norms = np.linalg.norm(candidates, axis=-1)
    best = np.take_along_axis(candidates, np.argmax(norms, axis=-1)[..., None, None], axis=-2)[..., 0, :]
    quaternion = best / np.linalg.norm(best, axis=-1, keepdims=True)
    return np.where(quaternion[..., 3:4] < 0, -quaternion, quaternion)


def quaternion_to_matrix(quaternion: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices from quaternions (..., 4) (x, y, z, w); normalises first."""
    q = np.asarray(quaternion, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], axis=-1).reshape(*q.shape[:-1], 3, 3)


def axis_angle_to_matrix(rotation_vector: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations from rotation vectors (..., 3) (axis times angle in radians, Rodrigues)."""
    v = np.asarray(rotation_vector, dtype=np.float64)
    angle = np.linalg.norm(v, axis=-1)
    axis = v / np.where(angle > 1e-12, angle, 1.0)[..., None]
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*v.shape[:-1], 3, 3)
    s, c = np.sin(angle)[..., None, None], (1 - np.cos(angle))[..., None, None]
    return np.eye(3) + s * k + c * (k @ k)


def minimum_jerk(progress: np.ndarray | float) -> np.ndarray:
    """Minimum-jerk position profile ``10 s^3 - 15 s^4 + 6 s^5`` of ``progress`` clipped to [0, 1].

    Zero velocity and acceleration at both ends (Flash & Hogan 1985): the profile of a
    natural point-to-point reach and of a saccade-like head turn.
    """
    s = np.clip(np.asarray(progress, dtype=np.float64), 0.0, 1.0)
    return s * s * s * (10.0 + s * (-15.0 + 6.0 * s))

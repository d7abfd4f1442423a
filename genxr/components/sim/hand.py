"""Articulated hand: 20 articulation angles + a wrist pose -> the 26 OpenXR hand joints.

Hand frame (right hand, metres): the wrist joint at the origin, fingers along -Z, the back
of the hand (dorsal side) along +Y, the thumb on the -X side - so a right hand with an
identity wrist orientation lies palm down, fingers pointing forward. This is the joint
frame convention of ``XR_EXT_hand_tracking``: every joint's -Z runs along its bone toward
the finger tip, +Y out of the back of the finger, X = Y x Z. The left hand is the mirror
image: positions have X negated and rotations are conjugated by diag(-1, 1, 1), so both
hands keep right-handed joint frames.

Articulation (radians, :data:`ARTICULATION_NAMES`): per finger MCP flexion, MCP abduction
(positive spreads away from the middle finger; the middle finger's positive is toward
the thumb), PIP and DIP flexion; for the thumb opposition (swings the thumb under the
palm about the hand's Z axis), abduction, MCP and IP flexion. Flexion curls toward the
palm. Bone lengths are fixed by :class:`HandModelConfig` (times ``scale``); they do not
change with articulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genxr.components.sim.geometry import matrix_to_quaternion, rotation_x, rotation_y, rotation_z
from genxr.platform.messages import HAND_JOINT_COUNT, HandJoints, LocationFlags


@dataclass(frozen=True)
class HandModelConfig:
    """Geometry of the right hand in the hand frame, metres, before ``scale``.

    ``finger_bases``/``knuckles``: (x, y, z) of the metacarpal base and of the MCP knuckle of
    index, middle, ring, little. ``phalanges``: proximal, intermediate and distal (to the
    tip) lengths per finger. ``thumb_base`` is the thumb's CMC joint, ``thumb_rest`` its
    rest (yaw toward the radial side, palmar pitch) in radians, ``thumb_bones`` metacarpal,
    proximal and distal lengths. ``radii`` are the 26 joint radii (OpenXR order).
    """

    scale: float = 1.0
    finger_bases: tuple[tuple[float, float, float], ...] = (
        (-0.011, 0.0, -0.010), (-0.001, 0.0, -0.011), (0.009, 0.0, -0.010), (0.017, 0.0, -0.008))
    knuckles: tuple[tuple[float, float, float], ...] = (
        (-0.024, 0.0, -0.085), (-0.004, 0.0, -0.088), (0.014, 0.0, -0.082), (0.031, 0.0, -0.072))
    phalanges: tuple[tuple[float, float, float], ...] = (
        (0.040, 0.023, 0.020), (0.045, 0.027, 0.021), (0.042, 0.026, 0.020), (0.033, 0.019, 0.018))
    thumb_base: tuple[float, float, float] = (-0.018, -0.010, -0.016)
    thumb_rest: tuple[float, float] = (0.75, 0.30)
    thumb_bones: tuple[float, float, float] = (0.045, 0.032, 0.028)
    radii: tuple[float, ...] = (
        0.022, 0.020,
        0.013, 0.011, 0.0095, 0.0085,
        0.012, 0.0100, 0.0090, 0.0080, 0.0075,
        0.012, 0.0105, 0.0095, 0.0085, 0.0078,
        0.011, 0.0100, 0.0090, 0.0080, 0.0074,
        0.010, 0.0085, 0.0078, 0.0072, 0.0068,
    )

    def __post_init__(self) -> None:
        if not (0.5 <= self.scale <= 1.5):
            raise ValueError(f"scale {self.scale} is outside [0.5, 1.5] (an adult hand is 0.8-1.2)")
        if len(self.radii) != HAND_JOINT_COUNT:
            raise ValueError(f"radii has {len(self.radii)} entries, expected {HAND_JOINT_COUNT}")


FINGERS = ("index", "middle", "ring", "little")
ARTICULATION_NAMES: tuple[str, ...] = (
    "thumb_opposition", "thumb_abduction", "thumb_mcp_flexion", "thumb_ip_flexion",
    *(f"{finger}_{part}" for finger in FINGERS
      for part in ("mcp_flexion", "mcp_abduction", "pip_flexion", "dip_flexion")),
)
ARTICULATION_COUNT = len(ARTICULATION_NAMES)
ARTICULATION_LIMITS = np.array(
    [(0.0, 1.3), (-0.2, 0.8), (-0.2, 1.1), (-0.3, 1.4)]
    + [(-0.4, 1.6), (-0.35, 0.35), (0.0, 1.9), (-0.1, 1.4)] * 4
)
"""(20, 2) lower and upper limit of each articulation angle, radians."""

BONES: tuple[tuple[int, int], ...] = (
    (1, 2), (2, 3), (3, 4), (4, 5),
    *((base + k, base + k + 1) for base in (6, 11, 16, 21) for k in range(4)),
    (7, 22), (6, 21), (2, 7), (1, 11),
)
"""Joint index pairs drawn as capsules and used for contacts: thumb, four fingers, palm."""

_ABDUCTION_SIGN = np.array([1.0, 1.0, -1.0, -1.0])
_FINGER_JOINT_BASE = (6, 11, 16, 21)
_FINGER_JOINTS = np.array(_FINGER_JOINT_BASE)[None, :] + np.arange(5)[:, None]  # (joint along finger, finger)
_MIRROR = np.diag([-1.0, 1.0, 1.0])


class ArticulationError(ValueError):
    """An articulation vector is malformed, not finite, or outside the joint limits."""


def check_articulation(articulation: np.ndarray) -> np.ndarray:
    """Returns ``articulation`` (..., 20) as float64 or raises naming the parameter, value and limits."""
    values = np.asarray(articulation, dtype=np.float64)
    if values.shape[-1:] != (ARTICULATION_COUNT,):
        raise ArticulationError(f"articulation has shape {values.shape}; the last axis must be {ARTICULATION_COUNT}")
    bad = ~np.isfinite(values)
    if bad.any():
        index = tuple(np.argwhere(bad)[0])
        raise ArticulationError(
            f"articulation {ARTICULATION_NAMES[index[-1]]} is {values[index]} at index {index}; it must be finite")
    low, high = ARTICULATION_LIMITS[:, 0], ARTICULATION_LIMITS[:, 1]
    outside = (values < low - 1e-9) | (values > high + 1e-9)
    if outside.any():
        index = tuple(np.argwhere(outside)[0])
        name = index[-1]
        raise ArticulationError(
            f"articulation {ARTICULATION_NAMES[name]} = {values[index]:.4f} rad is outside its limits "
            f"[{low[name]}, {high[name]}] rad")
    return values


@dataclass(frozen=True)
class HandPose:
    """One or many posed hands in the world frame.

    ``positions`` (..., 26, 3) metres, ``rotations`` (..., 26, 3, 3) joint-to-world,
    ``radii`` (26,) metres, all in OpenXR joint order.
    """

    side: str
    positions: np.ndarray
    rotations: np.ndarray
    radii: np.ndarray

    @property
    def orientations(self) -> np.ndarray:
        """(..., 26, 4) joint orientations as unit quaternions (x, y, z, w)."""
        return matrix_to_quaternion(self.rotations)

    def message(self, location_flags: int = 0xF) -> HandJoints:
        """A fully tracked (or ``location_flags``) :class:`HandJoints` of this single hand pose."""
        if self.positions.shape != (HAND_JOINT_COUNT, 3):
            raise ValueError(f"message() needs one hand pose, got positions of shape {self.positions.shape}")
        return HandJoints(
            hand=self.side, is_active=True,
            location_flags=np.full(HAND_JOINT_COUNT, location_flags, np.uint8),
            positions=self.positions.astype(np.float32), orientations=self.orientations.astype(np.float32),
            radii=self.radii.astype(np.float32),
        )


class HandModel:
    """Forward kinematics of one user's hands (both sides share the bone lengths)."""

    def __init__(self, config: HandModelConfig | None = None) -> None:
        self.config = config or HandModelConfig()
        s = self.config.scale
        self._bases = np.array(self.config.finger_bases) * s
        self._knuckles = np.array(self.config.knuckles) * s
        self._phalanges = np.array(self.config.phalanges) * s
        self._thumb_base = np.array(self.config.thumb_base) * s
        self._thumb_bones = np.array(self.config.thumb_bones) * s
        self.radii = np.array(self.config.radii) * s
        metacarpal = self._knuckles - self._bases  # fixed bones: their -Z points from base to knuckle
        self._metacarpal_rotation = rotation_y(np.arctan2(-metacarpal[:, 0], -metacarpal[:, 2])) @ rotation_x(
            np.arctan2(metacarpal[:, 1], np.hypot(metacarpal[:, 0], metacarpal[:, 2])))

    def local(self, articulation: np.ndarray, side: str = "right") -> tuple[np.ndarray, np.ndarray]:
        """Joints in the hand frame: positions (..., 26, 3) metres and rotations (..., 26, 3, 3).

        ``articulation`` (..., 20) radians, checked against :data:`ARTICULATION_LIMITS`.
        """
        if side not in ("left", "right"):
            raise ValueError(f"side {side!r} is not 'left' or 'right'")
        a = check_articulation(articulation)
        batch = a.shape[:-1]
        positions = np.zeros((*batch, HAND_JOINT_COUNT, 3))
        rotations = np.broadcast_to(np.eye(3), (*batch, HAND_JOINT_COUNT, 3, 3)).copy()
        down = np.array([0.0, 0.0, -1.0])

        fingers = a[..., 4:].reshape(*batch, 4, 4)  # (..., finger, [mcp, abd, pip, dip])
        rotation = self._metacarpal_rotation  # (4, 3, 3)
        position = np.broadcast_to(self._bases, (*batch, 4, 3))
        chain = [(position, np.broadcast_to(rotation, (*batch, 4, 3, 3)))]
        position = np.broadcast_to(self._knuckles, (*batch, 4, 3))
        rotation = rotation @ rotation_y(fingers[..., 1] * _ABDUCTION_SIGN) @ rotation_x(-fingers[..., 0])
        chain.append((position, rotation))
        for bone, flexion in ((0, fingers[..., 2]), (1, fingers[..., 3]), (2, None)):
            position = position + rotation @ down * self._phalanges[:, bone, None]
            if flexion is not None:
                rotation = rotation @ rotation_x(-flexion)
            chain.append((position, rotation))
        positions[..., _FINGER_JOINTS, :] = np.stack([p for p, _ in chain], -3)
        rotations[..., _FINGER_JOINTS, :, :] = np.stack([r for _, r in chain], -4)

        yaw, pitch = self.config.thumb_rest
        position = np.broadcast_to(self._thumb_base, (*batch, 3))
        rotation = rotation_z(a[..., 0]) @ rotation_y(yaw + a[..., 1]) @ rotation_x(-pitch)
        positions[..., 2, :], rotations[..., 2, :, :] = position, rotation
        for joint, (length, flexion) in enumerate(zip(self._thumb_bones, (a[..., 2], a[..., 3], None)), start=3):
            position = position + rotation @ down * length
            if flexion is not None:
                rotation = rotation @ rotation_x(-flexion)
            positions[..., joint, :], rotations[..., joint, :, :] = position, rotation

        positions[..., 0, :] = 0.5 * (positions[..., 11, :] + positions[..., 12, :])  # palm: middle metacarpal centre
        if side == "left":
            positions = positions * np.array([-1.0, 1.0, 1.0])
            rotations = _MIRROR @ rotations @ _MIRROR
        return positions, rotations

    def pose(self, wrist_position: np.ndarray, wrist_rotation: np.ndarray, articulation: np.ndarray,
             side: str = "right") -> HandPose:
        """The hand posed in the world: wrist at ``wrist_position`` (..., 3) metres, hand frame
        rotated by ``wrist_rotation`` (..., 3, 3) (hand-to-world), fingers by ``articulation`` (..., 20)."""
        wrist_position = np.asarray(wrist_position, dtype=np.float64)
        wrist_rotation = np.asarray(wrist_rotation, dtype=np.float64)
        for name, value in (("wrist_position", wrist_position), ("wrist_rotation", wrist_rotation)):
            if not np.isfinite(value).all():
                raise ValueError(f"{name} {value.tolist()} is not finite")
        local_positions, local_rotations = self.local(articulation, side)
        positions = np.einsum("...ij,...kj->...ki", wrist_rotation, local_positions) + wrist_position[..., None, :]
        rotations = wrist_rotation[..., None, :, :] @ local_rotations
        return HandPose(side=side, positions=positions, rotations=rotations, radii=self.radii)


def bone_lengths(positions: np.ndarray) -> np.ndarray:
    """(..., 24) lengths in metres of the skeleton's parent-child bones of joints (..., 26, 3).

    Thumb and finger bones and the wrist-to-metacarpal links, not the palm's cross links:
    the lengths forward kinematics keeps constant under any articulation.
    """
    chain = list(BONES[:20]) + [(1, base) for base in _FINGER_JOINT_BASE]
    a, b = np.array(chain).T
    return np.linalg.norm(positions[..., b, :] - positions[..., a, :], axis=-1)


TRACKED = int(LocationFlags.ORIENTATION_VALID | LocationFlags.POSITION_VALID
              | LocationFlags.ORIENTATION_TRACKED | LocationFlags.POSITION_TRACKED)
"""Location flags of a fully tracked joint (0xF)."""


def _grip(thumb: tuple[float, float, float, float], *fingers: tuple[float, float, float, float]) -> np.ndarray:
    return np.array([*thumb, *(value for finger in fingers for value in finger)])


GRIPS: dict[str, np.ndarray] = {
    "flat": _grip((0.0, 0.3, 0.0, 0.0), *[(0.0, 0.0, 0.0, 0.0)] * 4),
    "relaxed": _grip((0.3, 0.2, 0.2, 0.2), (0.2, 0.05, 0.3, 0.2), (0.25, 0.0, 0.35, 0.2),
                     (0.3, -0.05, 0.4, 0.25), (0.35, -0.1, 0.45, 0.3)),
    "spread": _grip((0.0, 0.7, 0.0, 0.0), (0.0, 0.3, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0),
                    (0.0, 0.3, 0.0, 0.0), (0.0, 0.35, 0.0, 0.0)),
    "point": _grip((0.8, 0.0, 0.6, 0.5), (0.0, 0.0, 0.05, 0.05), *[(1.5, 0.0, 1.8, 1.0)] * 3),
    "fist": _grip((0.9, 0.0, 0.8, 0.8), *[(1.5, 0.0, 1.8, 1.0)] * 4),
    "pinch_open": _grip((0.45, 0.35, 0.0, 0.1), (0.45, 0.0, 0.15, 0.1), (0.8, 0.0, 1.0, 0.5),
                        (0.9, 0.0, 1.1, 0.5), (1.0, 0.0, 1.2, 0.5)),
    "pinch_closed": _grip((0.9, -0.1, 0.0, 0.3), (1.2, 0.0, 0.5, 0.3), (0.8, 0.0, 1.0, 0.5),
                          (0.9, 0.0, 1.1, 0.5), (1.0, 0.0, 1.2, 0.5)),
}
"""Named articulations (20,) radians, all inside :data:`ARTICULATION_LIMITS`."""


def pinch(closure: float) -> np.ndarray:
    """(20,) articulation between ``pinch_open`` (``closure`` 0) and ``pinch_closed`` (1): thumb tip meets index tip."""
    if not 0.0 <= closure <= 1.0:
        raise ArticulationError(f"pinch closure {closure} is outside [0, 1]")
    return (1.0 - closure) * GRIPS["pinch_open"] + closure * GRIPS["pinch_closed"]

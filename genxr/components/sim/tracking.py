"""What a headset's tracking would report of the true poses: jitter, limited view, dropouts.

* Jitter: each frame the whole tracked hand is displaced by a Gaussian offset and turned
  about its wrist by a Gaussian rotation (plus smaller per-joint position noise); the head
  likewise. Standard deviations scale with the timeline's jitter factor.
* View: a hand is tracked only while its wrist lies inside a cone of ``hand_fov_deg``
  about the head's forward (-Z) axis and within ``hand_range_m`` of the head, as the
  headset cameras see it.
* Dropouts: forced losses from the behaviour script and spontaneous ones (a Poisson
  process of ``loss_rate_hz`` per hand, each lasting ``loss_duration_s``).

While lost, a hand is reported with ``is_active`` False, every location flag cleared, and
its last tracked joints kept for continuity; a lost head has ``head_tracked`` False and
holds its last tracked pose. Noise comes from the episode's seeded generator only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genxr.components.sim.geometry import axis_angle_to_matrix, matrix_to_quaternion
from genxr.components.sim.hand import TRACKED, HandPose
from genxr.platform.messages import HAND_JOINT_COUNT, HandJoints, Pose

WRIST = 1


@dataclass(frozen=True)
class TrackingNoise:
    """Noise and visibility model; metres, radians, seconds, degrees where named."""

    hand_position_std_m: float = 0.002
    hand_joint_std_m: float = 0.0007
    hand_rotation_std_rad: float = 0.01
    head_position_std_m: float = 0.0003
    head_rotation_std_rad: float = 0.001
    hand_fov_deg: float = 120.0
    hand_range_m: float = 1.0
    loss_rate_hz: float = 0.05
    loss_duration_s: tuple[float, float] = (0.1, 0.4)

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            values = value if isinstance(value, tuple) else (value,)
            if any(not np.isfinite(v) or v < 0 for v in values):
                raise ValueError(f"tracking noise {name} = {value} must be finite and >= 0")


class Tracker:
    """Turns true head and hand poses into what the tracking runtime reports, frame by frame."""

    def __init__(self, noise: TrackingNoise, rng: np.random.Generator, rest_radii: np.ndarray) -> None:
        self.noise = noise
        self.rng = rng
        self._radii = rest_radii.astype(np.float32)
        self._last_head = Pose()
        self._last_hand: dict[str, tuple[np.ndarray, np.ndarray]] = {
            side: (np.zeros((HAND_JOINT_COUNT, 3), np.float32),
                   np.tile(np.array([0, 0, 0, 1], np.float32), (HAND_JOINT_COUNT, 1)))
            for side in ("left", "right")
        }
        self._lost_until = {"left": -1.0, "right": -1.0}

    def head(self, position: np.ndarray, rotation: np.ndarray, jitter: float, lost: bool) -> tuple[Pose, bool]:
        """Reported head pose and whether it is tracked, from the true pose (3,) m and (3, 3)."""
        n = self.noise
        noisy_position = position + self.rng.normal(0.0, n.head_position_std_m * jitter, 3)
        noisy_rotation = axis_angle_to_matrix(self.rng.normal(0.0, n.head_rotation_std_rad * jitter, 3)) @ rotation
        if lost:
            return self._last_head, False
        self._last_head = Pose(position=tuple(noisy_position.tolist()),
                               orientation=tuple(matrix_to_quaternion(noisy_rotation).tolist()))
        return self._last_head, True

    def hand(self, hand: HandPose, head_position: np.ndarray, head_rotation: np.ndarray, time_s: float,
             dt_s: float, jitter: float, forced_lost: bool) -> HandJoints:
        """Reported joints of one true hand at ``time_s``; see the module docstring for the rules."""
        n = self.noise
        offset = self.rng.normal(0.0, n.hand_position_std_m * jitter, 3)
        turn = axis_angle_to_matrix(self.rng.normal(0.0, n.hand_rotation_std_rad * jitter, 3))
        per_joint = self.rng.normal(0.0, n.hand_joint_std_m * jitter, (HAND_JOINT_COUNT, 3))
        if self.rng.random() < n.loss_rate_hz * dt_s:
            self._lost_until[hand.side] = time_s + self.rng.uniform(*n.loss_duration_s)

        to_wrist = hand.positions[WRIST] - head_position
        distance = float(np.linalg.norm(to_wrist))
        forward = -head_rotation[:, 2]
        cosine = float(forward @ to_wrist) / max(distance, 1e-9)
        in_view = distance <= n.hand_range_m and cosine >= np.cos(np.radians(n.hand_fov_deg / 2))
        if forced_lost or time_s < self._lost_until[hand.side] or not in_view:
            positions, orientations = self._last_hand[hand.side]
            return HandJoints(hand=hand.side, is_active=False, location_flags=np.zeros(HAND_JOINT_COUNT, np.uint8),
                              positions=positions, orientations=orientations, radii=self._radii)

        wrist = hand.positions[WRIST]
        positions = (hand.positions - wrist) @ turn.T + wrist + offset + per_joint
        orientations = matrix_to_quaternion(turn @ hand.rotations)
        self._last_hand[hand.side] = (positions.astype(np.float32), orientations.astype(np.float32))
        return HandJoints(hand=hand.side, is_active=True, location_flags=np.full(HAND_JOINT_COUNT, TRACKED, np.uint8),
                          positions=positions.astype(np.float32), orientations=orientations.astype(np.float32),
                          radii=self._radii)

"""Between the session's reference space (OpenXR) and the avatar frame.

Both are right-handed, metres, +Y up. OpenXR looks down -Z; the avatar's rest pose faces
+Z. The avatar frame is the reference space moved to the agent's stance point on the
floor (``position``) and turned by ``yaw`` radians about +Y::

    p_reference = R_y(yaw) p_avatar + position

With the default placement (1.5 m in front of a user standing at the origin and looking
down -Z, yaw 0) the avatar's +Z points back at that user, so the agent faces them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genxr.components.avatar import skeleton as sk


@dataclass(frozen=True)
class AgentPlacement:
    """Where the agent stands in the reference space: ``position`` (3,) metres (floor point) and ``yaw`` radians."""

    position: tuple[float, float, float] = (0.0, 0.0, -1.5)
    yaw: float = 0.0

    def to_avatar(self, point: np.ndarray) -> np.ndarray:
        """(..., 3) reference-space points -> avatar frame."""
        return (np.asarray(point, dtype=np.float64) - np.asarray(self.position)) @ sk.rotation_y(self.yaw)

    def to_reference(self, point: np.ndarray) -> np.ndarray:
        """(..., 3) avatar-frame points -> reference space."""
        return np.asarray(point, dtype=np.float64) @ sk.rotation_y(self.yaw).T + np.asarray(self.position)

    def root_rotation_to_reference(self, rotation: np.ndarray) -> np.ndarray:
        """(..., 3, 3) avatar-frame root rotations -> reference space (R_y(yaw) R)."""
        return sk.rotation_y(self.yaw) @ rotation

"""Mapping between the 26 OpenXR hand joints and the 21-joint MANO / OpenPose hand order.

The 21-joint order used by OpenPose and by MANO-based data sets (FreiHAND, HO-3D, DexYCB
after their usual reordering) is: 0 wrist; 1-4 thumb CMC, MCP, IP, tip; 5-8 index MCP,
PIP, DIP, tip; 9-12 middle; 13-16 ring; 17-20 little. OpenXR names the same anatomical
points by the bone that starts there: the thumb's CMC is ``thumb_metacarpal``, its MCP
``thumb_proximal``, its IP ``thumb_distal``; a finger's MCP knuckle is ``*_proximal``, its
PIP ``*_intermediate``, its DIP ``*_distal``. The five OpenXR joints without a MANO
counterpart are ``palm`` and the four finger ``*_metacarpal`` bases (near the wrist).

``openxr_to_mano21`` selects joints exactly. ``mano21_to_openxr`` copies the 21 shared
joints and places the missing five on the wrist-to-knuckle lines at the fractions this
package's hand model has (:data:`METACARPAL_BASE_FRACTION`, :data:`PALM_FRACTION`): a
position-only approximation, within a few millimetres for an adult hand.
"""

from __future__ import annotations

import numpy as np

from genxr.platform.messages import HAND_JOINT_COUNT, HAND_JOINT_NAMES

MANO21_JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    *(f"{finger}_{part}" for finger in ("index", "middle", "ring", "little")
      for part in ("mcp", "pip", "dip", "tip")),
)

OPENXR_FROM_MANO21: tuple[int, ...] = (
    1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 15, 17, 18, 19, 20, 22, 23, 24, 25,
)
"""``OPENXR_FROM_MANO21[k]`` is the OpenXR joint index of MANO/OpenPose joint ``k``."""

METACARPAL_BASE_FRACTION = 0.13
"""A finger's OpenXR ``*_metacarpal`` joint lies this fraction of the way from wrist to its MCP."""
PALM_FRACTION = 0.56
"""OpenXR ``palm`` lies this fraction of the way from the wrist to the middle finger's MCP."""


def openxr_to_mano21(joints: np.ndarray) -> np.ndarray:
    """(..., 21, C) MANO/OpenPose-order joints from OpenXR-order joints (..., 26, C) (any per-joint data)."""
    joints = np.asarray(joints)
    if joints.ndim < 2 or joints.shape[-2] != HAND_JOINT_COUNT:
        raise ValueError(f"joints have shape {joints.shape}; expected (..., {HAND_JOINT_COUNT}, C)")
    return joints[..., list(OPENXR_FROM_MANO21), :]


def mano21_to_openxr(positions: np.ndarray) -> np.ndarray:
    """(..., 26, 3) OpenXR-order positions from MANO/OpenPose-order positions (..., 21, 3) metres."""
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim < 2 or positions.shape[-2:] != (21, 3):
        raise ValueError(f"positions have shape {positions.shape}; expected (..., 21, 3)")
    out = np.zeros((*positions.shape[:-2], HAND_JOINT_COUNT, 3))
    out[..., list(OPENXR_FROM_MANO21), :] = positions
    wrist = positions[..., 0, :]
    for mcp, metacarpal in ((5, 6), (9, 11), (13, 16), (17, 21)):
        out[..., metacarpal, :] = wrist + METACARPAL_BASE_FRACTION * (positions[..., mcp, :] - wrist)
    out[..., HAND_JOINT_NAMES.index("palm"), :] = wrist + PALM_FRACTION * (positions[..., 9, :] - wrist)
    return out

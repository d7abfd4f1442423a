"""Deterministic contacts between hand capsules and the scene's objects (world frame, metres, seconds).

The hand's collision shape is its drawn shape: one capsule per bone of
:data:`~genxr.components.sim.hand.BONES`, radius the smaller of its end joints' radii,
sampled as ``SAMPLES_PER_BONE`` spheres along the bone (a union that stays within ~3 mm of
the capsule surface for finger bones). Every function is a pure, vectorised function of
its inputs, so an episode replays bit for bit.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from genxr.components.sim.hand import BONES, HandPose

if TYPE_CHECKING:
    from genxr.components.sim.layout import SceneLayout, SceneState

SAMPLES_PER_BONE = 6
THUMB_TIP, INDEX_TIP, WRIST = 5, 10, 1
GRASP_TOLERANCE_M = 0.012
"""A fingertip within this distance of the ball's surface touches it."""
RELEASE_MARGIN_M = 0.02
"""The pinch lets go once the thumb-index aperture exceeds the ball's diameter (plus tip radii) by this."""

_BONE_A, _BONE_B = np.array(BONES).T
_FRACTIONS = np.linspace(0.0, 1.0, SAMPLES_PER_BONE)


def capsule_points(hands: list[HandPose]) -> tuple[np.ndarray, np.ndarray]:
    """Sphere centres (N, 3) and radii (N,) sampling the bone capsules of single hand poses."""
    points, radii = [], []
    for hand in hands:
        a, b = hand.positions[_BONE_A], hand.positions[_BONE_B]
        points.append((a[:, None, :] + _FRACTIONS[None, :, None] * (b - a)[:, None, :]).reshape(-1, 3))
        radii.append(np.repeat(np.minimum(hand.radii[_BONE_A], hand.radii[_BONE_B]), SAMPLES_PER_BONE))
    if not points:
        return np.zeros((0, 3)), np.zeros(0)
    return np.concatenate(points), np.concatenate(radii)


def button_press(points: np.ndarray, radii: np.ndarray, cap_min: np.ndarray, cap_max: np.ndarray,
                 travel_m: float) -> float:
    """How far (m, 0..``travel_m``) hand spheres push the button cap (at rest ``cap_min``..``cap_max``) down.

    A sphere presses when its centre is over the cap's footprint, below the cap's rest top
    plus its radius, and above the cap's bottom (it came from above).
    """
    over = ((points[:, 0] >= cap_min[0]) & (points[:, 0] <= cap_max[0])
            & (points[:, 2] >= cap_min[2]) & (points[:, 2] <= cap_max[2]) & (points[:, 1] > cap_min[1]))
    depth = cap_max[1] - (points[:, 1] - radii)
    if not over.any():
        return 0.0
    return float(np.clip(depth[over].max(), 0.0, travel_m))


def pinch_grasp(state: SceneState, hands: list[HandPose], ball_radius_m: float) -> SceneState:
    """Grasps, carries or releases the ball.

    A free ball is grasped by the first hand (in ``hands`` order) whose thumb tip and
    index tip both touch it (within :data:`GRASP_TOLERANCE_M`) while the aperture between
    the tips is no wider than the ball. A held ball keeps its offset in the holding hand's
    wrist frame until that hand's aperture opens past :data:`RELEASE_MARGIN_M`, or the hand
    is absent; it is then released at rest.
    """
    if state.grasped_by is None:
        for hand in hands:
            thumb, index = hand.positions[THUMB_TIP], hand.positions[INDEX_TIP]
            reach = ball_radius_m + GRASP_TOLERANCE_M
            touching = (np.linalg.norm(thumb - state.ball_centre) <= reach + hand.radii[THUMB_TIP]
                        and np.linalg.norm(index - state.ball_centre) <= reach + hand.radii[INDEX_TIP])
            closed = np.linalg.norm(thumb - index) <= 2 * reach + hand.radii[THUMB_TIP] + hand.radii[INDEX_TIP]
            if touching and closed:
                offset = hand.rotations[WRIST].T @ (state.ball_centre - hand.positions[WRIST])
                return replace(state, grasped_by=hand.side, grasp_offset=offset, ball_velocity_y=0.0)
        return state
    holder = next((hand for hand in hands if hand.side == state.grasped_by), None)
    if holder is None:
        return replace(state, grasped_by=None, grasp_offset=np.zeros(3))
    aperture = np.linalg.norm(holder.positions[THUMB_TIP] - holder.positions[INDEX_TIP])
    limit = 2 * ball_radius_m + holder.radii[THUMB_TIP] + holder.radii[INDEX_TIP] + RELEASE_MARGIN_M
    if aperture > limit:
        return replace(state, grasped_by=None, grasp_offset=np.zeros(3), ball_velocity_y=0.0)
    centre = holder.positions[WRIST] + holder.rotations[WRIST] @ state.grasp_offset
    return replace(state, ball_centre=centre)


def push_out(centre: np.ndarray, half: np.ndarray, points: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """The box centre (3,) after hand spheres that overlap the box push it out horizontally.

    Each overlapping sphere pushes along the horizontal axis (X or Z) of its smaller
    penetration, away from itself; per axis and direction the deepest push wins.
    """
    delta = points - centre
    overlap = half + radii[:, None] - np.abs(delta)
    inside = (overlap > 0).all(axis=1)
    if not inside.any():
        return centre
    overlap, delta = overlap[inside], delta[inside]
    axis = np.where(overlap[:, 0] <= overlap[:, 2], 0, 2)
    depth = overlap[np.arange(len(axis)), axis]
    sign = -np.sign(delta[np.arange(len(axis)), axis])
    sign[sign == 0] = 1.0
    moved = centre.copy()
    for a in (0, 2):
        for s in (-1.0, 1.0):
            chosen = (axis == a) & (sign == s)
            if chosen.any():
                moved[a] += s * depth[chosen].max()
    return moved


def fall(centre: np.ndarray, velocity_y: float, half_height: float, layout: SceneLayout,
         dt_s: float) -> tuple[np.ndarray, float]:
    """Gravity (semi-implicit Euler) until the object rests on its support: the table top if
    its centre is over the table and its bottom not below the top, else the floor (y = 0)."""
    over_table = (layout.table_min[0] <= centre[0] <= layout.table_max[0]
                  and layout.table_min[2] <= centre[2] <= layout.table_max[2])
    bottom = centre[1] - half_height
    support = layout.table_top if over_table and bottom >= layout.table_top - 1e-3 else 0.0
    if bottom <= support + 1e-9 and velocity_y == 0.0:
        return centre, 0.0
    velocity_y -= layout.gravity_m_s2 * dt_s
    moved = centre.copy()
    moved[1] += velocity_y * dt_s
    if moved[1] - half_height <= support:
        moved[1] = support + half_height
        velocity_y = 0.0
    return moved, velocity_y

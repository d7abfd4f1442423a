"""Scripted behaviours: open-loop motion plans over a :class:`~genxr.components.sim.timeline.Timeline`.

Each behaviour appends keyframes for the head (saccade-like turns: a short minimum-jerk
turn, then a fixation), the wrists (minimum-jerk reaches) and the grips, computed from the
scene's initial layout and the seeded random generator of the episode. Behaviours
compose with ``+`` ("press_button+wave"); :func:`parse_behaviours` checks the names.

World frame: OpenXR STAGE (+Y up, -Z forward, metres); the user stands at the origin
facing -Z. Wrist keyframes are (x, y, z, yaw, pitch, roll); the right hand's angles are
given and the left hand's are mirrored (x, yaw and roll negated).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from genxr.components.sim.contacts import INDEX_TIP, THUMB_TIP
from genxr.components.sim.geometry import euler_yxz
from genxr.components.sim.hand import GRIPS, HandModel, pinch
from genxr.components.sim.layout import SceneLayout
from genxr.components.sim.timeline import Timeline, Track

_MIRROR = np.array([-1.0, 1.0, 1.0, -1.0, 1.0, -1.0])
PALM = 0


class UnknownBehaviourError(ValueError):
    """A behaviour name that is not in :data:`BEHAVIOURS`."""


@dataclass
class Actor:
    """The scripted body: eye position (3,) m, hand model, layout, random generator and its timeline,
    which starts looking at the table with both hands relaxed in front."""

    layout: SceneLayout
    hands: HandModel
    rng: np.random.Generator
    eye: np.ndarray
    timeline: Timeline = field(init=False)

    def __post_init__(self) -> None:
        table = 0.5 * (self.layout.table_min + self.layout.table_max)
        table[1] = self.layout.table_top
        self.timeline = Timeline(
            head=Track(self.look_at(table)),
            wrist={side: Track(self.ready(side)) for side in ("left", "right")},
            grip={side: Track(GRIPS["relaxed"]) for side in ("left", "right")},
        )

    def ready(self, side: str) -> np.ndarray:
        """Wrist keyframe of a relaxed hand held in front at waist height."""
        right = np.array([0.16, self.eye[1] - 0.55, -0.3, 0.2, -0.45, -0.45])
        return right * _MIRROR if side == "left" else right

    def lowered(self, side: str) -> np.ndarray:
        """Wrist keyframe of an arm hanging beside the body (outside the tracking cameras' view)."""
        right = np.array([0.24, self.eye[1] - 0.85, 0.05, 0.0, -1.45, -1.2])
        return right * _MIRROR if side == "left" else right

    def look_at(self, target: np.ndarray) -> np.ndarray:
        """(yaw, pitch) radians pointing the head's -Z at ``target`` (3,) m."""
        d = np.asarray(target) - self.eye
        return np.array([np.arctan2(-d[0], -d[2]), np.arctan2(d[1], np.hypot(d[0], d[2]))])

    def saccade(self, yaw_pitch: np.ndarray, fixation_s: float) -> None:
        """Head turn whose duration grows with its amplitude (0.2 s + 0.25 s/rad), then a fixation."""
        amplitude = float(np.linalg.norm(np.asarray(yaw_pitch) - self.timeline.head.last))
        self.timeline.head.move_to(yaw_pitch, 0.2 + 0.25 * amplitude).hold(fixation_s)

    def wrist_for(self, side: str, articulation: np.ndarray, joint: int, target: np.ndarray,
                  right_angles: tuple[float, float, float]) -> np.ndarray:
        """Wrist keyframe that puts ``joint`` of the hand posed with ``articulation`` at ``target`` (3,) m."""
        angles = np.array(right_angles) * (_MIRROR[3:] if side == "left" else 1.0)
        local, _ = self.hands.local(articulation, side)
        position = np.asarray(target) - euler_yxz(angles) @ local[joint]
        return np.concatenate([position, angles])

    def reach(self, side: str, wrist: np.ndarray, grip: np.ndarray, duration_s: float) -> None:
        """Minimum-jerk reach of ``side``'s wrist and grip to the keyframes, same start and end."""
        self.timeline.wrist[side].move_to(wrist, duration_s)
        self.timeline.grip[side].move_to(grip, duration_s)

    def near_side(self, x: float) -> str:
        return "right" if x >= 0.0 else "left"


def idle(actor: Actor) -> None:
    """Stands with relaxed hands in front for 1.5-3 s."""
    actor.timeline.head.hold(actor.rng.uniform(1.5, 3.0))


def look_around(actor: Actor) -> None:
    """Three to five saccade-like head turns around the room, each followed by a fixation."""
    for _ in range(actor.rng.integers(3, 6)):
        actor.saccade(np.array([actor.rng.uniform(-1.0, 1.0), actor.rng.uniform(-0.6, 0.35)]),
                      actor.rng.uniform(0.3, 1.0))


def press_button(actor: Actor) -> None:
    """Looks at the button, points, presses it down for a moment and lets it come back up."""
    layout = actor.layout
    cap_top = np.array([0.5 * (layout.button_cap_min[0] + layout.button_cap_max[0]), layout.button_cap_max[1],
                        0.5 * (layout.button_cap_min[2] + layout.button_cap_max[2])])
    side = actor.near_side(cap_top[0])
    actor.saccade(actor.look_at(cap_top), 0.2)
    point = GRIPS["point"]
    tip_radius = actor.hands.radii[INDEX_TIP]
    angles = (0.15, -0.95, -0.3)
    hover = actor.wrist_for(side, point, INDEX_TIP, cap_top + [0.0, 0.06, 0.0], angles)
    down = actor.wrist_for(side, point, INDEX_TIP,
                           cap_top + [0.0, tip_radius - layout.button_travel_m - 0.002, 0.0], angles)
    actor.reach(side, hover, point, actor.rng.uniform(0.7, 1.0))
    actor.timeline.wrist[side].move_to(down, 0.25).hold(actor.rng.uniform(0.3, 0.6)).move_to(hover, 0.25).hold(0.2)
    actor.timeline.grip[side].hold_until(actor.timeline.wrist[side].end_s)
    actor.reach(side, actor.ready(side), GRIPS["relaxed"], 0.7)


def push_object(actor: Actor) -> None:
    """Looks at the box and pushes it away across the table with an open palm."""
    layout = actor.layout
    box = layout.box_start
    side = actor.near_side(box[0])
    actor.saccade(actor.look_at(box), 0.2)
    flat = GRIPS["flat"]
    angles = (0.0, 1.0, 0.0)
    behind = box + [0.0, 0.01, layout.box_half[2] + actor.hands.radii[PALM] + 0.04]
    start = actor.wrist_for(side, flat, PALM, behind, angles)
    end = actor.wrist_for(side, flat, PALM, behind - [0.0, 0.0, actor.rng.uniform(0.12, 0.2)], angles)
    actor.reach(side, start, flat, actor.rng.uniform(0.7, 1.0))
    actor.timeline.wrist[side].move_to(end, actor.rng.uniform(0.6, 0.9)).hold(0.2)
    actor.timeline.grip[side].hold_until(actor.timeline.wrist[side].end_s)
    actor.reach(side, actor.ready(side), GRIPS["relaxed"], 0.8)


def _closure_for(hands: HandModel, aperture_m: float) -> float:
    """Pinch closure whose thumb-index tip distance is ``aperture_m`` (bisection; distance falls with closure)."""
    low, high = 0.0, 1.0
    for _ in range(30):
        mid = 0.5 * (low + high)
        local, _ = hands.local(pinch(mid))
        if np.linalg.norm(local[THUMB_TIP] - local[INDEX_TIP]) > aperture_m:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def grasp_carry_drop(actor: Actor) -> None:
    """Pinches the ball between thumb and index, lifts it toward the user, opens the hand over the floor."""
    layout, hands = actor.layout, actor.hands
    ball = layout.ball_start
    side = actor.near_side(ball[0])
    actor.saccade(actor.look_at(ball), 0.2)
    closure = _closure_for(hands, 2 * layout.ball_radius_m + hands.radii[THUMB_TIP] + hands.radii[INDEX_TIP])
    closed, opened = pinch(closure), GRIPS["pinch_open"]
    local, _ = hands.local(closed, side)
    pinch_point = 0.5 * (local[THUMB_TIP] + local[INDEX_TIP])
    angles = np.array([0.2, -0.55, -0.5]) * (np.array([-1.0, 1.0, -1.0]) if side == "left" else 1.0)

    def wrist_at(point: np.ndarray) -> np.ndarray:
        return np.concatenate([point - euler_yxz(angles) @ pinch_point, angles])

    actor.reach(side, wrist_at(ball + [0.0, 0.08, 0.04]), opened, actor.rng.uniform(0.7, 1.0))
    actor.reach(side, wrist_at(ball), opened, 0.4)
    actor.reach(side, wrist_at(ball), closed, 0.3)
    actor.timeline.wrist[side].hold(0.15)
    actor.timeline.grip[side].hold(0.15)
    drop = np.array([ball[0], layout.table_top + actor.rng.uniform(0.12, 0.2), layout.table_max[2] + 0.16])
    actor.timeline.head.hold_until(actor.timeline.wrist[side].end_s)
    actor.timeline.head.move_to(actor.look_at(drop - [0.0, 0.3, 0.0]), 0.5)
    actor.reach(side, wrist_at(drop), closed, actor.rng.uniform(0.8, 1.1))
    actor.reach(side, wrist_at(drop), opened, 0.25)
    actor.timeline.wrist[side].hold(0.6)
    actor.timeline.grip[side].hold(0.6)
    actor.reach(side, actor.ready(side), GRIPS["relaxed"], 0.7)


def wave(actor: Actor) -> None:
    """Raises a hand, palm forward and fingers spread, and waves it side to side three times."""
    side = "right" if actor.rng.random() < 0.5 else "left"
    sign = 1.0 if side == "right" else -1.0
    up = np.array([0.22 * sign, actor.eye[1] - 0.15, -0.38, 0.0, 1.45, 0.0])
    actor.saccade(actor.look_at(up[:3] + [0.0, 0.05, 0.0]), 0.1)
    actor.reach(side, up, GRIPS["spread"], actor.rng.uniform(0.6, 0.8))
    swing = actor.rng.uniform(0.3, 0.45)
    for k in range(6):
        actor.timeline.wrist[side].move_to(up + [0.0, 0.0, 0.0, 0.0, 0.0, swing * (1 if k % 2 else -1)], 0.22)
    actor.timeline.wrist[side].move_to(up, 0.22)
    actor.timeline.grip[side].hold_until(actor.timeline.wrist[side].end_s)
    actor.reach(side, actor.ready(side), GRIPS["relaxed"], 0.7)


def hands_out_of_view(actor: Actor) -> None:
    """Lets both arms hang beside the body (untracked there) while glancing around, then raises them."""
    for side in ("left", "right"):
        actor.reach(side, actor.lowered(side), GRIPS["relaxed"], actor.rng.uniform(0.6, 0.9))
    actor.saccade(np.array([actor.rng.uniform(-0.5, 0.5), actor.rng.uniform(-0.1, 0.2)]), 1.0)
    actor.saccade(np.array([actor.rng.uniform(-0.5, 0.5), actor.rng.uniform(-0.1, 0.2)]), 0.8)
    end = actor.timeline.head.end_s
    for side in ("left", "right"):
        actor.timeline.wrist[side].hold_until(end)
        actor.timeline.grip[side].hold_until(end)
        actor.reach(side, actor.ready(side), GRIPS["relaxed"], 0.8)


def tracking_loss(actor: Actor) -> None:
    """Slow hand movements in view under three-fold tracking noise, with forced drops of each
    hand and of the head (a runtime losing tracking for 0.1-0.6 s)."""
    timeline, start = actor.timeline, actor.timeline.end_s
    timeline.jitter.move_to(np.full(1, 3.0), 0.2)
    for side in ("left", "right"):
        ready = actor.ready(side)
        for _ in range(3):
            actor.reach(side, ready + np.concatenate([actor.rng.uniform(-0.08, 0.08, 3), np.zeros(3)]),
                        GRIPS["relaxed"], actor.rng.uniform(0.5, 0.9))
    end = timeline.sync()
    for target in ("left", "right", "head"):
        begin = actor.rng.uniform(start, max(start, end - 0.6))
        timeline.losses.append((target, begin, begin + actor.rng.uniform(0.1, 0.6)))
    timeline.jitter.move_to(np.ones(1), 0.2)


BEHAVIOURS: dict[str, Callable[[Actor], None]] = {
    "idle": idle,
    "look_around": look_around,
    "press_button": press_button,
    "push_object": push_object,
    "grasp_carry_drop": grasp_carry_drop,
    "wave": wave,
    "hands_out_of_view": hands_out_of_view,
    "tracking_loss": tracking_loss,
}
"""Every behaviour by name; a script is one name or several joined by '+'."""


def parse_behaviours(script: str) -> list[str]:
    """The behaviour names of ``script`` ("a" or "a+b+..."), each checked against :data:`BEHAVIOURS`."""
    names = [name.strip() for name in str(script).split("+")]
    for name in names:
        if name not in BEHAVIOURS:
            raise UnknownBehaviourError(
                f"unknown behaviour {name!r} in {script!r}; known behaviours: {', '.join(BEHAVIOURS)}")
    return names


def script_episode(actor: Actor, script: str) -> Timeline:
    """Appends the behaviours of ``script`` to the actor's timeline, one after the other, and
    records their segments; ends with every channel synchronised."""
    for name in parse_behaviours(script):
        start = actor.timeline.sync()
        BEHAVIOURS[name](actor)
        actor.timeline.segments.append((name, start, actor.timeline.sync()))
    return actor.timeline

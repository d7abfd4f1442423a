"""OpenXR structs -> genxr messages, and the session state machine.

Plain functions over pyopenxr's own structs (``xr.Posef``, ``xr.SpaceLocation``,
``xr.HandJointLocationsEXT``) and a state machine over ``XrSessionState`` names, shared by the
tracking source (:mod:`genxr.xr_runtime.openxr.source`) and the frame cycle
(:mod:`genxr.xr_runtime.openxr.frames`); unit-tested without a runtime. Frames: OpenXR's
right-handed space (+Y up, -Z forward), metres, quaternions (x, y, z, w).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum

import numpy as np

from genxr.platform.messages import HAND_JOINT_COUNT, HandJoints, LocationFlags, Pose
from genxr.xr_runtime.sources import TrackingSourceLost

FULLY_LOCATED = int(LocationFlags.ORIENTATION_VALID | LocationFlags.POSITION_VALID
                    | LocationFlags.ORIENTATION_TRACKED | LocationFlags.POSITION_TRACKED)


# --- conversions from pyopenxr structs (unit-tested without a runtime) --------------------------


def pose_from_xr(posef) -> tuple[tuple[float, float, float], tuple[float, float, float, float]] | None:
    """(position, orientation xyzw) of an ``xr.Posef``, or None if it holds non-finite values
    or a quaternion too far from unit norm to be a rotation."""
    p, q = posef.position, posef.orientation
    position = (float(p.x), float(p.y), float(p.z))
    orientation = (float(q.x), float(q.y), float(q.z), float(q.w))
    if not all(math.isfinite(v) for v in position + orientation):
        return None
    norm = math.sqrt(sum(v * v for v in orientation))
    if abs(norm - 1.0) > 1e-2:
        return None
    return position, tuple(v / norm for v in orientation)  # type: ignore[return-value]


def head_from_xr(location) -> tuple[Pose, bool]:
    """(head pose, tracked) from an ``xr.SpaceLocation`` of the VIEW space; an unusable
    location gives the identity pose with tracked False (the loop keeps the last good one).

    Tracked means the orientation is tracked and the position valid: a 3DoF or simulated HMD
    reports its position VALID but never TRACKED (a neck model), and its head is still
    following the user. Orientation merely valid (dead reckoning after tracking loss) is not
    tracked. (Whether the position itself is tracked is ``POSITION_TRACKED`` in the flags.)"""
    flags = int(location.location_flags)
    pose = pose_from_xr(location.pose)
    valid = (flags & (LocationFlags.ORIENTATION_VALID | LocationFlags.POSITION_VALID)) == (
        LocationFlags.ORIENTATION_VALID | LocationFlags.POSITION_VALID)
    if pose is None or not valid:
        return Pose(), False
    tracked = bool(flags & LocationFlags.ORIENTATION_TRACKED)
    return Pose(position=pose[0], orientation=pose[1]), tracked


def hand_from_xr(locations, side: str) -> HandJoints:
    """A :class:`HandJoints` from an ``xr.HandJointLocationsEXT`` with 26 joints.

    A joint whose pose is non-finite or not a rotation has its valid/tracked flags cleared
    and is stored as the origin with identity orientation, so one bad joint never turns
    into a NaN downstream or a rejected frame.
    """
    if locations.joint_count != HAND_JOINT_COUNT:
        raise ValueError(f"{side} hand: expected {HAND_JOINT_COUNT} joints, the runtime gave {locations.joint_count}")
    positions = np.zeros((HAND_JOINT_COUNT, 3), np.float32)
    orientations = np.tile(np.array([0, 0, 0, 1], np.float32), (HAND_JOINT_COUNT, 1))
    radii = np.zeros(HAND_JOINT_COUNT, np.float32)
    flags = np.zeros(HAND_JOINT_COUNT, np.uint8)
    for index, joint in enumerate(locations.joint_locations):
        pose = pose_from_xr(joint.pose)
        radius = float(joint.radius)
        if pose is None or not math.isfinite(radius) or radius < 0:
            continue
        positions[index], orientations[index] = pose
        radii[index] = radius
        flags[index] = int(joint.location_flags) & FULLY_LOCATED
    return HandJoints(hand=side, is_active=bool(locations.is_active) and bool(flags.any()),
                      location_flags=flags, positions=positions, orientations=orientations, radii=radii)


# --- the session state machine ------------------------------------------------------------------


class SessionAction(Enum):
    NONE = "none"
    BEGIN = "begin"
    """Call xrBeginSession (state READY)."""
    END = "end"
    """Call xrEndSession (state STOPPING)."""
    EXIT = "exit"
    """Leave the loop: the runtime wants the application to exit (EXITING)."""
    LOST = "lost"
    """Leave the loop: the session was lost (LOSS_PENDING, instance loss)."""


class SessionStateMachine:
    """Maps ``XrSessionState`` changes to the action the application must take.

    ``running`` is True between a BEGIN and the following END; frames are located only
    while running.
    """

    def __init__(self) -> None:
        self.state = "IDLE"
        self.running = False

    def on_state(self, state: str) -> SessionAction:
        """``state`` is the ``xr.SessionState`` member name (READY, STOPPING, ...)."""
        self.state = state
        if state == "READY" and not self.running:
            self.running = True
            return SessionAction.BEGIN
        if state == "STOPPING" and self.running:
            self.running = False
            return SessionAction.END
        if state == "EXITING":
            return SessionAction.EXIT
        if state == "LOSS_PENDING":
            return SessionAction.LOST
        return SessionAction.NONE


@contextmanager
def source_lost_on(xr) -> Iterator[None]:
    """Raises :class:`~genxr.xr_runtime.sources.TrackingSourceLost` for the errors of a runtime
    that went away mid-session (instance or session lost, the runtime failing) inside the block."""
    try:
        yield
    except (xr.InstanceLostError, xr.SessionLostError, xr.RuntimeFailureError) as err:
        raise TrackingSourceLost(f"the OpenXR runtime went away mid-session ({type(err).__name__}: "
                                 f"{str(err).strip() or 'no detail'}); restart the runtime (e.g. monado-service) "
                                 "and the session") from err

"""The OpenXR source's logic against pyopenxr's own structs, without a runtime: pose and
joint conversion, the session state machine, and the message when no runtime exists."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xr

from genxr.platform.messages import HAND_JOINT_COUNT, LocationFlags
from genxr.xr_runtime.openxr.convert import (
    FULLY_LOCATED,
    SessionAction,
    SessionStateMachine,
    hand_from_xr,
    head_from_xr,
    pose_from_xr,
)
from genxr.xr_runtime.openxr.source import OpenXRSource, OpenXRUnavailableError


def xr_pose(position=(0.0, 1.6, -0.3), orientation=(0.0, 0.0, 0.0, 1.0)) -> xr.Posef:
    return xr.Posef(orientation=xr.Quaternionf(*orientation), position=xr.Vector3f(*position))


def xr_hand(is_active=True, flags=FULLY_LOCATED, radius=0.01) -> xr.HandJointLocationsEXT:
    joints = (xr.HandJointLocationEXT * HAND_JOINT_COUNT)()
    for index in range(HAND_JOINT_COUNT):
        joints[index].pose = xr_pose(position=(0.01 * index, 1.0, -0.4))
        joints[index].radius = radius
        joints[index].location_flags = flags
    return xr.HandJointLocationsEXT(is_active=is_active, joint_count=HAND_JOINT_COUNT, joint_locations=joints)


def test_openxr_location_flags_are_the_bits_genxr_uses():
    assert int(xr.SpaceLocationFlags.ORIENTATION_VALID_BIT) == LocationFlags.ORIENTATION_VALID
    assert int(xr.SpaceLocationFlags.POSITION_VALID_BIT) == LocationFlags.POSITION_VALID
    assert int(xr.SpaceLocationFlags.ORIENTATION_TRACKED_BIT) == LocationFlags.ORIENTATION_TRACKED
    assert int(xr.SpaceLocationFlags.POSITION_TRACKED_BIT) == LocationFlags.POSITION_TRACKED


def test_pose_conversion_keeps_xyzw_order_and_renormalises():
    half = math.sqrt(0.5)
    position, orientation = pose_from_xr(xr_pose((1.0, 2.0, 3.0), (0.0, half, 0.0, half)))
    assert position == (1.0, 2.0, 3.0)
    np.testing.assert_allclose(orientation, (0.0, half, 0.0, half), atol=1e-7)
    assert pose_from_xr(xr_pose(orientation=(0.0, 0.0, 0.0, 1.001)))[1][3] == pytest.approx(1.0)


@pytest.mark.parametrize("position, orientation", [
    ((math.nan, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)),
    ((0.0, math.inf, 0.0), (0.0, 0.0, 0.0, 1.0)),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)),
])
def test_unusable_poses_from_a_runtime_are_refused(position, orientation):
    assert pose_from_xr(xr_pose(position, orientation)) is None


def test_head_location_with_nan_becomes_untracked_not_an_error():
    location = xr.SpaceLocation(pose=xr_pose(position=(math.nan, 0.0, 0.0)))
    location.location_flags = FULLY_LOCATED
    pose, tracked = head_from_xr(location)
    assert not tracked and pose.position == (0.0, 0.0, 0.0)


def test_head_location_valid_but_not_tracked():
    location = xr.SpaceLocation(pose=xr_pose())
    location.location_flags = int(LocationFlags.ORIENTATION_VALID | LocationFlags.POSITION_VALID)
    pose, tracked = head_from_xr(location)
    assert not tracked and pose.position == pytest.approx((0.0, 1.6, -0.3))
    location.location_flags = FULLY_LOCATED
    assert head_from_xr(location)[1]


def test_hand_conversion_copies_all_26_joints_in_order():
    hand = hand_from_xr(xr_hand(), "left")
    assert hand.hand == "left" and hand.is_active
    np.testing.assert_allclose(hand.positions[:, 0], 0.01 * np.arange(HAND_JOINT_COUNT), atol=1e-6)
    assert (hand.location_flags == FULLY_LOCATED).all() and hand.tracked.all()
    np.testing.assert_allclose(hand.radii, 0.01)


def test_hand_conversion_clears_flags_of_bad_joints_instead_of_passing_nan():
    locations = xr_hand()
    locations.joint_locations[9].pose = xr_pose(position=(math.nan, 0.0, 0.0))
    locations.joint_locations[4].radius = -1.0
    hand = hand_from_xr(locations, "right")
    assert hand.location_flags[9] == 0 and hand.location_flags[4] == 0
    assert np.isfinite(hand.positions).all()
    assert hand.location_flags[10] == FULLY_LOCATED


def test_inactive_hand_and_hand_with_no_valid_joint_are_inactive():
    assert not hand_from_xr(xr_hand(is_active=False), "left").is_active
    assert not hand_from_xr(xr_hand(flags=0), "left").is_active


def test_hand_with_wrong_joint_count_is_an_error():
    joints = (xr.HandJointLocationEXT * 21)()
    with pytest.raises(ValueError, match="expected 26 joints, the runtime gave 21"):
        hand_from_xr(xr.HandJointLocationsEXT(joint_count=21, joint_locations=joints), "left")


def test_state_machine_begins_on_ready_and_ends_on_stopping():
    machine = SessionStateMachine()
    names = [s.name for s in (xr.SessionState.IDLE, xr.SessionState.READY, xr.SessionState.SYNCHRONIZED,
                              xr.SessionState.VISIBLE, xr.SessionState.FOCUSED, xr.SessionState.STOPPING,
                              xr.SessionState.IDLE, xr.SessionState.EXITING)]
    actions = [machine.on_state(name) for name in names]
    assert actions == [SessionAction.NONE, SessionAction.BEGIN, SessionAction.NONE, SessionAction.NONE,
                       SessionAction.NONE, SessionAction.END, SessionAction.NONE, SessionAction.EXIT]
    assert not machine.running


def test_state_machine_reports_loss_and_ignores_repeated_ready():
    machine = SessionStateMachine()
    assert machine.on_state("READY") is SessionAction.BEGIN
    assert machine.on_state("READY") is SessionAction.NONE
    assert machine.on_state("LOSS_PENDING") is SessionAction.LOST


def test_without_a_runtime_entering_says_what_to_install_and_how_to_use_the_simulator(monkeypatch):
    monkeypatch.setenv("XR_RUNTIME_JSON", "/nonexistent/openxr_runtime.json")
    monkeypatch.setenv("XR_LOADER_DEBUG", "none")
    with pytest.raises(OpenXRUnavailableError) as excinfo:
        with OpenXRSource():
            pass
    message = str(excinfo.value)
    assert "XR_RUNTIME_JSON" in message and "Monado" in message and "SteamVR" in message
    assert "--source sim" in message


def test_bad_reference_space_is_refused():
    with pytest.raises(ValueError, match="reference_space must be 'STAGE' or 'LOCAL'"):
        OpenXRSource(reference_space="FLOOR")

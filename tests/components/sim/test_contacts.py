"""Contacts between hand capsules and objects: press lights the button only while pressed, palms push the box, a pinch grasps, carries and releases the ball, which falls to the floor."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.sim.contacts import INDEX_TIP, THUMB_TIP, WRIST
from genxr.components.sim.geometry import euler_yxz
from genxr.components.sim.hand import GRIPS, HandModel
from genxr.components.sim.scene import Scene
from genxr.components.sim.user import ScriptedUser
from genxr.platform.clock import ManualClock

MODEL = HandModel()
DT = 1 / 90


def hand_with_joint_at(joint: int, target: np.ndarray, grip: str, angles=(0.0, -0.9, 0.0), side="right"):
    rotation = euler_yxz(np.array(angles))
    local, _ = MODEL.local(GRIPS[grip], side)
    return MODEL.pose(np.asarray(target) - rotation @ local[joint], rotation, GRIPS[grip], side)


def test_button_lights_only_while_a_finger_presses_it():
    scene = Scene(1)
    layout = scene.layout
    top = np.array([(layout.button_cap_min[0] + layout.button_cap_max[0]) / 2, layout.button_cap_max[1],
                    (layout.button_cap_min[2] + layout.button_cap_max[2]) / 2])
    radius = MODEL.radii[INDEX_TIP]
    heights = [0.05, radius + 0.002, radius - 0.004, radius - layout.button_travel_m, radius - 0.004, 0.05]
    states = [scene.step([hand_with_joint_at(INDEX_TIP, top + [0, h, 0], "point")], DT) for h in heights]
    assert [s.button_lit for s in states] == [False, False, False, True, False, False]
    assert states[3].button_press_m == pytest.approx(layout.button_travel_m)
    assert states[2].button_press_m == pytest.approx(0.004, abs=1e-9)
    assert scene.primitives(states[3])["box_colours"][6] == pytest.approx(layout.button_lit_colour.astype(np.float32))


def test_palm_pushes_the_box_along_its_motion_and_the_box_stays_on_the_table():
    scene = Scene(2)
    box = scene.layout.box_start.copy()
    start_z = box[2] + scene.layout.box_half[2] + 0.05
    for z in np.linspace(start_z, start_z - 0.12, 30):
        state = scene.step([hand_with_joint_at(0, [box[0], box[1] + 0.01, z], "flat", (0.0, 1.0, 0.0))], DT)
    moved = state.box_centre - box
    assert moved[2] < -0.05 and abs(moved[0]) < 0.01
    assert state.box_centre[1] == pytest.approx(box[1])


def test_untouched_objects_do_not_move():
    scene = Scene(3)
    far = hand_with_joint_at(WRIST, [0.0, 1.5, 0.5], "relaxed")
    for _ in range(20):
        state = scene.step([far], DT)
    np.testing.assert_array_equal(state.box_centre, scene.layout.box_start)
    np.testing.assert_array_equal(state.ball_centre, scene.layout.ball_start)
    assert not state.button_lit and state.grasped_by is None


def test_grasp_carries_the_ball_with_the_hand_and_release_drops_it_to_the_floor():
    user = ScriptedUser("grasp_carry_drop", seed=4, clock=ManualClock())
    steps = list(user.steps())
    held = [k for k, step in enumerate(steps) if step.state.grasped_by is not None]
    assert held and held == list(range(held[0], held[-1] + 1))  # one continuous hold
    side = steps[held[0]].state.grasped_by
    hand = 0 if side == "left" else 1
    start = steps[held[0]]
    assert np.linalg.norm(start.hands[hand].positions[THUMB_TIP] - start.state.ball_centre) < 0.06
    offsets = [step.hands[hand].rotations[WRIST].T @ (step.state.ball_centre - step.hands[hand].positions[WRIST])
               for step in steps[held[0]:held[-1] + 1]]
    np.testing.assert_allclose(offsets, np.broadcast_to(offsets[0], np.shape(offsets)), atol=1e-9)
    carried = steps[held[-1]].state.ball_centre - steps[held[0]].state.ball_centre
    assert np.linalg.norm(carried) > 0.1  # it travelled with the hand
    final = steps[-1].state
    assert final.grasped_by is None
    assert final.ball_centre[1] == pytest.approx(user.scene.layout.ball_radius_m)  # resting on the floor
    heights = [step.state.ball_centre[1] for step in steps[held[-1] + 1:]]
    assert all(a >= b for a, b in zip(heights, heights[1:]))  # it fell, never rose

"""Renderer: projected joints fall inside the hand masks, depth and object ids agree with the
geometry, batched == single rendering, determinism, and rejected non-finite input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from genxr.components.sim.episode import render_batch
from genxr.components.sim.geometry import euler_yxz
from genxr.components.sim.hand import GRIPS, HandModel
from genxr.components.sim.layout import BALL_ID, TABLE_ID
from genxr.components.sim.renderer import Renderer, RendererConfig
from genxr.components.sim.user import ScriptedUser
from genxr.platform.clock import ManualClock


def view(position=(0.0, 0.0, 0.0), angles=(0.0, 0.0, 0.0)) -> torch.Tensor:
    matrix = np.eye(4)
    matrix[:3, :3] = euler_yxz(np.array(angles))
    matrix[:3, 3] = position
    return torch.from_numpy(matrix).float()[None]


@pytest.fixture(scope="module")
def episode():
    user = ScriptedUser("press_button+grasp_carry_drop", seed=11, clock=ManualClock())
    return user, list(user.steps())[::12]


def test_every_visible_joint_projects_into_its_hand_mask(episode):
    user, steps = episode
    renderer = Renderer(RendererConfig(width=96, height=96))
    out = renderer.render(render_batch(user.scene, steps))
    inside, total = 0, 0
    for k in range(len(steps)):
        for hand in range(2):
            for joint in range(26):
                u, v = out.joints_2d[k, hand, joint].tolist()
                if not (out.joints_depth[k, hand, joint] > 0 and 0 <= u < 96 and 0 <= v < 96):
                    continue
                window = out.hand_mask[k, max(0, int(v) - 1):int(v) + 2, max(0, int(u) - 1):int(u) + 2]
                total += 1
                inside += bool((window == hand + 1).any())
    assert total > 200
    assert inside / total > 0.97  # the rest: joints hidden behind the table, the ball or the other hand


def test_a_lone_hand_covers_all_its_projected_joints_and_depth_matches():
    model = HandModel()
    hand = model.pose(np.array([0.05, 1.45, -0.35]), euler_yxz(np.array([0.0, 1.2, -0.3])), GRIPS["spread"], "right")
    far = model.pose(np.array([0.0, 0.0, 50.0]), np.eye(3), GRIPS["flat"], "left")
    user, steps = ScriptedUser("idle", seed=0, clock=ManualClock()), None
    steps = [next(user.steps(1))]
    batch = render_batch(user.scene, steps)
    joints = torch.from_numpy(np.stack([far.positions, hand.positions])[None]).float()
    batch = dataclasses.replace(batch, view=view((0.0, 1.5, 0.0)), hand_joints=joints, hand_visible=torch.tensor([[0.0, 1.0]]),
                                spheres=batch.spheres.clone().fill_(0.0))
    out = Renderer(RendererConfig(width=128, height=128)).render(batch)
    for joint in range(26):
        u, v = out.joints_2d[0, 1, joint].long().tolist()
        assert out.hand_mask[0, v, u] == 2, f"joint {joint} at ({u}, {v}) not in the right-hand mask"
        assert out.depth[0, v, u] <= out.joints_depth[0, 1, joint] + 1e-4  # the surface is in front of the joint
    assert not (out.hand_mask == 1).any()  # the invisible left hand is not drawn


def test_batched_equals_single_and_rendering_is_deterministic(episode):
    user, steps = episode
    renderer = Renderer(RendererConfig(width=48, height=40))
    batch = renderer.render(render_batch(user.scene, steps[:4]))
    again = renderer.render(render_batch(user.scene, steps[:4]))
    single = [renderer.render(render_batch(user.scene, [step])) for step in steps[:4]]
    for field in ("rgb", "depth", "hand_mask", "object_mask", "joints_2d"):
        assert torch.equal(getattr(batch, field), getattr(again, field))
        assert torch.equal(getattr(batch, field), torch.cat([getattr(s, field) for s in single]))
    assert batch.rgb.shape == (4, 40, 48, 3) and batch.rgb.dtype == torch.uint8
    assert batch.depth.dtype == torch.float32 and (batch.depth > 0).all()
    assert (batch.object_mask == TABLE_ID).any() and (batch.hand_mask > 0).any()


def test_object_mask_marks_the_ball_where_it_is_seen():
    user = ScriptedUser("idle", seed=2, clock=ManualClock())
    step = next(user.steps(1))
    ball = user.scene.layout.ball_start
    batch = dataclasses.replace(render_batch(user.scene, [step]), view=view(ball + [0.0, 0.0, 0.3]),
                                hand_visible=torch.zeros(1, 2))
    out = Renderer(RendererConfig(width=32, height=32)).render(batch)
    assert out.object_mask[0, 16, 16] == BALL_ID
    assert out.depth[0, 16, 16] == pytest.approx(0.3 - user.scene.layout.ball_radius_m, abs=3e-3)  # pixel centre is off-axis


def test_non_finite_render_input_is_rejected_by_field():
    user = ScriptedUser("idle", seed=0, clock=ManualClock())
    batch = render_batch(user.scene, [next(user.steps(1))])
    joints = batch.hand_joints.clone()
    joints[0, 1, 5, 2] = float("nan")
    with pytest.raises(ValueError, match=r"hand_joints holds nan at index \(0, 1, 5, 2\)"):
        dataclasses.replace(batch, hand_joints=joints)

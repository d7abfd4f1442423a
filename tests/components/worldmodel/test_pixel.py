"""World model v2 (pixel-space U-Net): skeleton images, EDM denoiser, training loop, stream and bad tracking."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from genxr.components.worldmodel.checkpoint import CheckpointError, load_model
from genxr.components.worldmodel.conditioning import Tracking
from genxr.components.worldmodel.pixel_stream import PixelWorldStream
from genxr.components.worldmodel.pixel_train import PIXEL_PRESETS, model_config, train_pixel
from genxr.components.worldmodel.pixel_unet import PixelWorldConfig, PixelWorldModel, draw_skeleton_depth

EYE = (0.0, 1.6, 0.0)
FORWARD = torch.tensor([*EYE, 0.0, 0.0, 0.0, 1.0])


def _hand(depth_m: float, x_m: float = 0.0) -> torch.Tensor:
    """(26, 3) joints of a flat hand ``depth_m`` in front of the eye, spread sideways around ``x_m``."""
    joints = torch.zeros(26, 3)
    joints[:, 0] = x_m + torch.linspace(-0.06, 0.06, 26)
    joints[:, 1] = EYE[1]
    joints[:, 2] = -depth_m
    return joints


def _tracking(frames: int, left: torch.Tensor | None = None, right: torch.Tensor | None = None,
              valid: float = 1.0, head: torch.Tensor = FORWARD) -> Tracking:
    left = _hand(0.4, -0.05) if left is None else left
    right = _hand(0.5, 0.05) if right is None else right
    hands = torch.stack([left, right]).expand(1, frames, 2, 26, 3).clone()
    heads = head.expand(1, frames, 7).clone()
    return Tracking(heads, hands, torch.full((1, frames, 2, 26), valid), heads[:, 0].clone())


def test_skeleton_channels_hold_bones_and_the_nearest_inverse_depth():
    image = draw_skeleton_depth(_tracking(1, left=_hand(0.4), right=_hand(0.8)), 64, 80.0, 12)[0, 0]
    assert image.shape == (4, 64, 64)
    left_bones, right_bones, left_near, right_near = image
    assert left_bones.sum() > 10 and right_bones.sum() > 5
    assert torch.allclose(left_near[left_bones > 0], torch.tensor(1 / 0.4), rtol=1e-4)
    assert torch.allclose(right_near[right_bones > 0], torch.tensor(1 / 0.8), rtol=1e-4)
    assert (left_near[left_bones == 0] == 0).all()
    lost = draw_skeleton_depth(_tracking(1, valid=0.0), 64, 80.0, 12)
    assert lost.sum() == 0
    behind = draw_skeleton_depth(_tracking(1, left=_hand(-0.4), right=_hand(-0.4)), 64, 80.0, 12)
    assert behind.sum() == 0


def test_edm_denoiser_returns_its_input_at_vanishing_noise_and_its_shapes():
    torch.manual_seed(0)
    model = PixelWorldModel(PIXEL_PRESETS["tiny"].model).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    condition = torch.zeros(2, model.config.in_channels - 3, 64, 64)
    with torch.no_grad():
        out = model.denoise(x, torch.full((2,), 1e-4), condition, torch.zeros(2, 208))
    assert out.shape == x.shape
    assert torch.allclose(out, x, atol=1e-3)  # EDM: c_skip -> 1 and c_out -> 0 as sigma -> 0
    sigmas = model.sigmas(3)
    assert sigmas[0] == pytest.approx(model.config.sigma_max) and sigmas[-1] == 0 and (sigmas.diff() < 0).all()


def test_config_refuses_sizes_the_unet_cannot_take():
    with pytest.raises(ValueError, match="norm_groups"):
        PixelWorldConfig(block_channels=(24, 32), norm_groups=16)
    with pytest.raises(ValueError, match="resolution 60"):
        PixelWorldConfig(resolution=60)


def test_tiny_pixel_runs_train_ship_and_resume(tiny_run):
    out, _, train_dir, _ = tiny_run
    preset = PIXEL_PRESETS["tiny"]
    model, config = load_model(out / "pixel")
    assert isinstance(model, PixelWorldModel) and config["summary"]["preset"] == "tiny"
    assert np.isfinite(config["summary"]["loss"])
    head_only, _ = load_model(out / "pixel_head_only", model_config(preset, head_only=True))
    assert not head_only.config.use_skeleton and not head_only.config.use_joints
    assert head_only.config.in_channels == model.config.in_channels - 6
    longer = replace(preset, training=replace(preset.training, steps=preset.training.steps + 2))
    train_pixel(longer, train_dir, out)
    assert json.loads((out / "pixel" / "train_state.json").read_text())["step"] == longer.training.steps
    wider = replace(preset, model=replace(preset.model, block_channels=(16, 32)))
    with pytest.raises(CheckpointError, match="block_channels"):
        train_pixel(wider, train_dir, out)


def _stream(tiny_run, **options) -> PixelWorldStream:
    out = tiny_run[0]
    stream = PixelWorldStream(load_model(out / "pixel")[0], **options)
    stream.reset(np.full((64, 64, 3), 120, np.uint8), _tracking(1))
    return stream


def test_stream_is_one_frame_per_tracking_frame_and_chunking_does_not_matter(tiny_run):
    whole, pieces = _stream(tiny_run), _stream(tiny_run)
    tracking = _tracking(6)
    at_once = whole.step(tracking)
    one_by_one = np.concatenate([pieces.step(tracking.frames(k, k + 1)) for k in range(6)])
    assert at_once.shape == (6, 64, 64, 3) and at_once.dtype == np.uint8
    assert np.array_equal(at_once, one_by_one) and whole.frames_generated == 6
    again = _stream(tiny_run)
    assert np.array_equal(again.step(tracking), at_once)  # noise 0: deterministic
    noisy = _stream(tiny_run, noise_scale=1.0, seed=3)
    assert not np.array_equal(noisy.step(tracking), at_once)


def test_stream_refuses_bad_arguments_naming_them(tiny_run):
    model = load_model(tiny_run[0] / "pixel")[0]
    with pytest.raises(ValueError, match="noise_scale"):
        PixelWorldStream(model, noise_scale=2.0)
    with pytest.raises(ValueError, match="steps 0"):
        PixelWorldStream(model, steps=0)
    with pytest.raises(RuntimeError, match="reset"):
        PixelWorldStream(model).step(_tracking(1))
    with pytest.raises(ValueError, match="anchor_image shape"):
        PixelWorldStream(model).reset(np.zeros((32, 32, 3), np.uint8), _tracking(1))
    stream = _stream(tiny_run)
    bad = _tracking(3)
    bad.head_pose[0, 2, 3:] = 0.0
    with pytest.raises(ValueError, match="tracking frame 2"):
        stream.step(bad)
    assert stream.frames_generated == 0  # nothing generated from a refused call


@pytest.mark.parametrize("case", ["lost_then_back", "hand_enters_from_outside", "teleport", "absurd_joints"])
def test_stream_keeps_producing_frames_through_bad_tracking(tiny_run, case):
    stream = _stream(tiny_run)
    good = _tracking(4)
    if case == "lost_then_back":
        frames = [_tracking(4, valid=0.0), good]
    elif case == "hand_enters_from_outside":
        frames = [_tracking(1, right=_hand(0.5, x_m)) for x_m in (3.0, 1.0, 0.4, 0.1, 0.05)]
    elif case == "teleport":
        far = torch.tensor([25.0, 1.6, -40.0, 0.0, 0.7071, 0.0, 0.7071])
        frames = [_tracking(3, head=far), good]
    else:  # NaN-free but absurd: every joint of a hand at one point, the other hand 5 m away
        frames = [_tracking(3, left=torch.zeros(26, 3) + torch.tensor([0.0, 1.6, -0.3]),
                            right=_hand(5.0) * 10.0), good]
    for tracking in frames:
        images = stream.step(tracking)
        assert images.shape[1:] == (64, 64, 3)
    assert stream.frames_generated == sum(t.head_pose.shape[1] for t in frames)
    assert all(torch.isfinite(image).all() for image, _ in stream.context)


def test_student_world_serves_world_model_v2_one_frame_per_model_period(tiny_run):
    from genxr.components.sim.user import ScriptedUser
    from genxr.components.worldmodel.service import PIXEL_MODEL_NAME, StudentWorld
    from genxr.platform.clock import ManualClock
    from genxr.platform.messages import WorldFrameRequest

    frames = [step.frame for step in ScriptedUser("press_button", seed=3, clock=ManualClock()).steps(30)]
    world = StudentWorld(checkpoint_dir=tiny_run[0], student="pixel")
    for k in range(0, 30, 3):  # 90 Hz tracking, a request every 3 frames = one per 30 Hz model period
        reply = world(WorldFrameRequest(session_id="v2", request_id=k, tracking=frames[k:k + 3]))
        assert reply.model == PIXEL_MODEL_NAME and reply.image.shape == (64, 64, 3)
    assert world.resets == 1 and world.stream.frames_generated == 9  # the first request renders the anchor


def test_bench_times_world_model_v2_at_one_and_at_many_steps(tiny_run):
    from genxr.components.worldmodel.conditioning import tracking_from_arrays
    from genxr.components.worldmodel.data import load_episodes
    from genxr.evaluation.benchmarks.worldmodel import pixel_speed

    out, _, _, heldout = tiny_run
    clip = load_episodes(heldout).clip(0, 0, 12, 3)
    tracking = tracking_from_arrays(clip["head_pose"], clip["hand_positions"], clip["hand_flags"], clip["hand_active"])
    result = pixel_speed(clip, tracking, frames=8, warmup=2, steps=1, teacher_steps=4, directory=out / "pixel")
    assert result["pixel_frames_timed"] == 8 and result["pixel_steps"] == 1 and result["pixel_teacher_steps"] == 4
    assert result["pixel_fps"] > 0 and result["pixel_teacher_fps"] > 0 and result["pixel_engine"] == "torch-cpu"
    assert result["pixel_frame_latency_ms_p50"] <= result["pixel_frame_latency_ms_p90"]

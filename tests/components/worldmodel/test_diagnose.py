from dataclasses import replace

import numpy as np
import pytest
import torch

from genxr.components.worldmodel.codec import CODEC_PRESETS, FrameCodec
from genxr.components.worldmodel.conditioning import tracking_from_arrays
from genxr.components.worldmodel.data import images_of
from genxr.components.worldmodel.diagnose import (
    DiagnosisConfig,
    change_agreement,
    diagnose,
    rollout_changes,
)
from genxr.components.worldmodel.dit import DIT_PRESETS, VideoDiT
from genxr.components.worldmodel.reprojection import frames_from
from genxr.components.worldmodel.stream import WorldModelStream

FRAMES = 6  # generated frames: 3 chunks of 2


def _clip(seed: int = 0) -> dict[str, np.ndarray]:
    """A drifting colour gradient seen from a head turning slowly, hands untracked."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:64, 0:64] / 63.0
    rgb = np.stack([np.stack([x + 0.05 * k, y, 0.5 + 0.3 * np.sin(3 * x + k)], -1) for k in range(FRAMES + 1)])
    head = np.tile([0.0, 1.6, 0.0, 0.0, 0.0, 0.0, 1.0], (FRAMES + 1, 1))
    head[:, 0] = np.linspace(0.0, 0.1, FRAMES + 1)
    return {"rgb": (rgb.clip(0, 1) * 255).astype(np.uint8), "head_pose": head.astype(np.float32),
            "hand_positions": rng.normal(size=(FRAMES + 1, 2, 26, 3)).astype(np.float32),
            "hand_flags": np.zeros((FRAMES + 1, 2, 26), np.int64), "hand_active": np.zeros((FRAMES + 1, 2), np.int64)}


@pytest.fixture(scope="module")
def models() -> tuple[VideoDiT, FrameCodec]:
    torch.manual_seed(0)
    codec = FrameCodec(CODEC_PRESETS["tiny"])
    codec.fit(images_of(np.concatenate([_clip(s)["rgb"] for s in range(3)])))
    student = VideoDiT(replace(DIT_PRESETS["tiny"], causal=True, window_frames=2)).eval()
    for p in student.parameters():  # adaLN-zero starts as the identity; give the blocks something to do
        torch.nn.init.normal_(p, std=0.05)
    return student, codec


@pytest.mark.parametrize("steps", [1, 2])
def test_own_context_rollout_is_what_the_stream_generates(models, steps):
    # the diagnosis writes each chunk to the cache right after it, the stream in the next chunk's first forward
    student, codec = models
    clip = _clip()
    change, true, prior_pixels = rollout_changes(student, codec, clip, DiagnosisConfig(steps=steps, noise_scale=0.0))
    assert change.shape == true.shape == (FRAMES, 8, 8, 8)
    assert prior_pixels.shape == (FRAMES, 3, 64, 64)
    with torch.no_grad():
        ours = (frames_from(codec, change[None], prior_pixels[None])[0].permute(0, 2, 3, 1) * 255).round()
    ours = ours.to(torch.uint8).numpy()
    stream = WorldModelStream(student, codec, steps=steps, noise_scale=0.0)
    tracking = tracking_from_arrays(clip["head_pose"], clip["hand_positions"], clip["hand_flags"], clip["hand_active"])
    stream.reset(clip["rgb"][0], tracking.frames(0, 1))
    streamed = np.concatenate([stream.step(tracking.frames(1 + s, 3 + s)) for s in range(0, FRAMES, 2)])
    assert np.abs(ours.astype(int) - streamed.astype(int)).max() <= 1


def test_teacher_forcing_changes_only_chunks_after_the_first(models):
    student, codec = models
    own, true, _ = rollout_changes(student, codec, _clip(), DiagnosisConfig())
    forced, true_forced, _ = rollout_changes(student, codec, _clip(), DiagnosisConfig(teacher_forced=True))
    assert torch.equal(true, true_forced)
    assert torch.allclose(own[:2], forced[:2], atol=1e-6), "the first chunk sees only the anchor either way"
    assert not torch.allclose(own[2:], forced[2:], atol=1e-4), "later chunks see the truth instead of their own output"
    shorter, _, _ = rollout_changes(student, codec, _clip(), DiagnosisConfig(window_frames=1))
    assert not torch.allclose(own[4:], shorter[4:], atol=1e-4) and student.config.window_frames == 2


def test_change_agreement_matches_closed_forms():
    true = [torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    doubled = change_agreement([2 * t for t in true], true)
    assert np.allclose(doubled["cosine"], 1.0) and np.allclose(doubled["relative_error"], 1.0)
    assert doubled["best_shrink"] == pytest.approx(0.5)
    flipped = change_agreement([-t for t in true], true)
    assert np.allclose(flipped["cosine"], -1.0) and np.allclose(flipped["relative_error"], 4.0)
    assert flipped["best_shrink"] == pytest.approx(-1.0)


def test_diagnose_scores_the_references_on_the_same_frames(models):
    student, codec = models
    result = diagnose(student, codec, [_clip(0), _clip(1)], DiagnosisConfig())
    assert result["rollouts"] == 2 and result["frames"] == FRAMES
    assert len(result["student"]["psnr_by_frame"]) == len(result["student"]["cosine"]) == FRAMES
    assert result["codec"]["psnr"] > result["anchor_copy"]["psnr"], "the codec sees every true frame"
    assert result["anchor_copy"]["psnr_by_frame"][0] > result["anchor_copy"]["psnr_by_frame"][-1], "the scene drifts"


@pytest.mark.parametrize(("field", "value"), [("steps", 0), ("noise_scale", 2.0), ("window_frames", 0)])
def test_bad_settings_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        DiagnosisConfig(**{field: value})

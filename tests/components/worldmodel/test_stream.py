from dataclasses import replace

import numpy as np
import pytest
import torch

from genxr.components import flow_matching as fm
from genxr.components.worldmodel.codec import CODEC_PRESETS, FrameCodec
from genxr.components.worldmodel.conditioning import Tracking
from genxr.components.worldmodel.dit import DIT_PRESETS, VideoDiT
from genxr.components.worldmodel.stream import (
    WorldModelStream,
    generate_chunk,
    write_anchor,
)


def _student() -> VideoDiT:
    torch.manual_seed(0)
    return VideoDiT(replace(DIT_PRESETS["tiny"], causal=True, window_frames=4)).eval()


def _tracking(frames: int) -> Tracking:
    head = torch.tensor([0.0, 1.6, 0.0, 0.0, 0.0, 0.0, 1.0]).expand(1, frames, 7).clone()
    hands = torch.zeros(1, frames, 2, 26, 3) + torch.tensor([0.0, 1.5, -0.4])
    return Tracking(head, hands, torch.ones(1, frames, 2, 26), head[:, 0].clone())


def test_stream_generates_chunks_with_bounded_cache():
    stream = WorldModelStream(_student(), FrameCodec(CODEC_PRESETS["tiny"]), steps=2)
    with pytest.raises(RuntimeError, match="reset"):
        stream.step(_tracking(2))
    stream.reset(np.full((64, 64, 3), 128, np.uint8), _tracking(1))
    for _ in range(6):
        frames = stream.step(_tracking(2))
        assert frames.shape == (2, 64, 64, 3) and frames.dtype == np.uint8
    assert stream.frames_generated == 12
    assert stream.cache.frames == 1 + 4


def test_stream_needs_a_causal_student_and_matching_codec():
    with pytest.raises(ValueError, match="causal"):
        WorldModelStream(VideoDiT(DIT_PRESETS["tiny"]), FrameCodec(CODEC_PRESETS["tiny"]))
    with pytest.raises(ValueError, match="latent_channels"):
        WorldModelStream(_student(), FrameCodec(CODEC_PRESETS["cpu"]))


def test_generate_chunk_keeps_the_graph_of_one_step_only():
    student = _student()
    tracking = replace(_tracking(3), prior=torch.randn(1, 3, 8, 8, 8))
    anchor = torch.randn(1, 1, 8, 8, 8)
    cache = write_anchor(student, anchor, tracking.frames(0, 1))
    sigmas = fm.euler_sigmas(2, 3.0)
    noise = torch.randn(1, 2, 8, 8, 8)
    with torch.no_grad():
        plain, after = generate_chunk(student, cache, tracking.frames(1, 3), sigmas, noise)
    assert not plain.requires_grad and after.frames == 3 and not after.keys[0].requires_grad
    first, _ = generate_chunk(student, cache, tracking.frames(1, 3), sigmas, noise, grad_step=0)
    last, _ = generate_chunk(student, cache, tracking.frames(1, 3), sigmas, noise, grad_step=1)
    assert first.requires_grad and last.requires_grad
    assert torch.allclose(last, plain, atol=1e-6)  # stopping at the last step is the full sampler


def test_noise_scale_zero_makes_the_stream_a_function_of_anchor_and_tracking():
    student, codec = _student(), FrameCodec(CODEC_PRESETS["tiny"])
    anchor = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)

    def frames(seed: int, noise_scale: float) -> np.ndarray:
        stream = WorldModelStream(student, codec, steps=2, seed=seed, noise_scale=noise_scale)
        stream.reset(anchor, _tracking(1))
        return np.concatenate([stream.step(_tracking(2)) for _ in range(3)])

    assert np.array_equal(frames(0, 0.0), frames(1, 0.0)), "no sampled noise: seeds must not matter"
    assert not np.array_equal(frames(0, 1.0), frames(1, 1.0)), "trained noise: seeds give different samples"


def test_noise_scale_multiplies_the_starting_noise_of_each_chunk():
    student, codec = _student(), FrameCodec(CODEC_PRESETS["tiny"])
    anchor = np.full((64, 64, 3), 90, np.uint8)
    stream = WorldModelStream(student, codec, steps=2, seed=3, noise_scale=0.5)
    stream.reset(anchor, _tracking(1))
    cache = stream.cache
    produced = stream.step(_tracking(2))
    noise = torch.randn(1, 2, 8, 8, 8, generator=torch.Generator().manual_seed(3)) * 0.5
    with torch.no_grad():
        tracking, prior_pixels = stream._tracking(_tracking(2))
        x0, _ = generate_chunk(student, cache, tracking, stream.sigmas, noise)
        expected = (prior_pixels + codec.decode_change(x0[0])[None]).clamp(0.0, 1.0)[0]
    expected = (expected.permute(0, 2, 3, 1) * 255.0).round().to(torch.uint8).numpy()
    assert np.array_equal(produced, expected)


@pytest.mark.parametrize("noise_scale", [-0.1, 1.5, float("nan")])
def test_noise_scale_outside_zero_one_is_refused_by_name(noise_scale):
    with pytest.raises(ValueError, match="noise_scale"):
        WorldModelStream(_student(), FrameCodec(CODEC_PRESETS["tiny"]), noise_scale=noise_scale)

"""The seam filter: a causal stride-tap moving average of decoded frames, carried across chunks."""

from __future__ import annotations

import numpy as np

from genxr.components.avatar import skeleton as sk
from genxr.components.avatar.features import turn_about_stance
from genxr.components.avatar.stream import AvatarStream, SeamFilter
from genxr.platform.messages import Pose

USER = Pose(position=(0.5, 1.7, 0.0))


def test_a_per_chunk_staircase_becomes_a_ramp_and_a_held_pose_is_unchanged():
    stride, chunks = 4, 6
    staircase = np.repeat(np.arange(chunks, dtype=np.float64), stride)[:, None] * np.ones((1, 135))
    seam = SeamFilter(stride)
    out = np.concatenate([seam(staircase[k * stride:(k + 1) * stride]) for k in range(chunks)])
    assert np.allclose(out[:stride], 0.0)  # started at rest on the first frame: a held pose stays put
    ramp = (np.arange(stride, chunks * stride) - (stride - 1)) / stride  # (t - 3) / 4: a line, 1.5 frames late
    assert np.allclose(out[stride:, 0], ramp)
    assert np.allclose(np.diff(out[stride:, 0]), 1.0 / stride)  # constant speed: no speed minimum per seam


def test_chunk_by_chunk_equals_the_moving_average_of_the_whole_sequence():
    frames = np.random.default_rng(0).normal(size=(24, 135))
    seam = SeamFilter(4)
    streamed = np.concatenate([seam(frames[k:k + 4]) for k in range(0, 24, 4)])
    padded = np.concatenate([np.repeat(frames[:1], 3, 0), frames])
    expected = np.stack([padded[t:t + 4].mean(0) for t in range(24)])
    assert np.allclose(streamed, expected)


def test_the_stream_returns_the_filtered_decoder_output(tiny_models):
    raw_stream = AvatarStream(tiny_models["vae"], tiny_models["generator"], euler_steps=2, smooth_seams=False)
    smooth_stream = AvatarStream(tiny_models["vae"], tiny_models["generator"], euler_steps=2)
    decoded = []  # the decoder's raw frames, before re-orthonormalisation
    assemble = raw_stream._chunk
    raw_stream._chunk = lambda features: (decoded.append(features.numpy().astype(np.float64)), assemble(features))[1]
    raw_stream.reset(seed=3)
    smooth_stream.reset(seed=3)
    raw = [raw_stream.step(USER) for _ in range(5)]
    smooth = [smooth_stream.step(USER) for _ in range(5)]
    seam = SeamFilter(4)
    bearing = np.full(4, np.arctan2(0.5, 1.5))  # USER in the avatar frame: (0.5, 1.7, 1.5)
    for frames, smooth_chunk in zip(decoded, smooth):
        expected = turn_about_stance(seam(frames), bearing)  # filtered in the model's (user-facing) frame
        rotations = sk.matrix_to_rot6d(sk.rot6d_to_matrix(expected[:, :132].reshape(4, 22, 6)))
        assert np.allclose(smooth_chunk.rotations_6d, rotations, atol=1e-4)
        assert np.allclose(smooth_chunk.root_translation, expected[:, 132:], atol=1e-5)
    assert not np.allclose(raw[2].rotations_6d, smooth[2].rotations_6d, atol=1e-3)

"""The streaming API: shapes, bounded state, determinism, bus mapping and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from genxr.components.avatar import skeleton as sk
from genxr.components.avatar.frames import AgentPlacement
from genxr.components.avatar.stream import AvatarStream, WindowBaseline, serve_request
from genxr.platform.messages import AudioChunk, AvatarMotion, AvatarRequest, Pose

USER = Pose(position=(0.5, 1.7, 0.0))


def tone(rate: int, seconds: float, start_ns: int = 0, speaker: str = "agent") -> AudioChunk:
    t = np.arange(int(rate * seconds)) / rate
    return AudioChunk(speaker=speaker, start_time_ns=start_ns, sample_rate_hz=rate,
                      samples=(0.3 * np.sin(2 * np.pi * 180 * t) * (t % 0.25 < 0.12)).astype(np.float32))


def test_step_shapes_time_and_valid_rotations(tiny_models):
    stream = AvatarStream(tiny_models["vae"], tiny_models["generator"], euler_steps=2)
    stream.reset(start_time_ns=5_000)
    first = stream.step(USER, [tone(16_000, 0.2)])
    second = stream.step(USER)
    assert first.rotations_6d.shape == (4, 22, 6) and first.root_translation.shape == (4, 3)
    assert first.start_time_ns == 5_000 and second.start_time_ns == 5_000 + round(4e9 / 30)
    matrices = sk.rot6d_to_matrix(second.rotations_6d.astype(np.float64))
    assert np.allclose(np.linalg.det(matrices), 1.0, atol=1e-5)


def test_state_stays_bounded_over_a_long_session(tiny_models):
    stream = AvatarStream(tiny_models["vae"], tiny_models["generator"], euler_steps=1)
    for k in range(120):
        stream.step(USER, [tone(16_000, 4 / 30, start_ns=round(k * 4e9 / 30))])
    assert stream.generator_cache[0][0].shape[2] == stream.generator.config.transformer.window - 1
    assert stream.decoder_cache[0][0].shape[2] == stream.vae.config.transformer.window - 1
    assert all(len(track.samples) <= 1 for track in stream.audio.values())


def test_same_seed_same_motion(tiny_models):
    stream = AvatarStream(tiny_models["vae"], tiny_models["generator"], euler_steps=2)
    runs = []
    for _ in range(2):
        stream.reset(seed=11)
        runs.append(np.concatenate([stream.step(USER).rotations_6d for _ in range(5)]))
    assert np.array_equal(runs[0], runs[1])


def test_other_sample_rate_is_resampled_not_rejected(tiny_models):
    stream = AvatarStream(tiny_models["vae"], tiny_models["generator"], euler_steps=1)
    native = stream.audio["agent"]
    stream._write_audio([tone(16_000, 0.4)])
    expected = native.features(0, 8)
    stream.reset()
    stream._write_audio([tone(48_000, 0.4)])
    resampled = stream.audio["agent"].features(0, 8)
    assert np.allclose(resampled[:, 0], expected[:, 0], atol=0.05)


def test_bad_audio_gives_clear_errors(tiny_models):
    stream = AvatarStream(tiny_models["vae"], tiny_models["generator"], euler_steps=1)
    with pytest.raises(ValueError, match="ahead of the stream"):
        stream.step(USER, [tone(16_000, 11.0)])
    stream.reset()
    stereo = AudioChunk.model_construct(speaker="user", start_time_ns=0, sample_rate_hz=16_000,
                                        samples=np.zeros((100, 2), np.float32))
    with pytest.raises(ValueError, match="mono"):
        stream.step(USER, [stereo])
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        stream.step(np.zeros(2))


def test_lost_tracking_holds_the_last_position_and_keeps_a_finite_pose(tiny_models):
    stream = AvatarStream(tiny_models["vae"], tiny_models["generator"], euler_steps=1)
    placement = AgentPlacement()
    stream.reset(placement=placement)
    stream.step(USER)
    held = stream.user_head.copy()
    for lost in (None, np.array([np.nan, 1.7, 0.0])):
        chunk = stream.step(lost)
        assert np.isfinite(chunk.rotations_6d).all() and np.isfinite(chunk.root_translation).all()
        assert np.allclose(stream.user_head, held)
    assert np.allclose(held, placement.to_avatar(np.array(USER.position)))
    stream.reset()
    assert np.isfinite(stream.step(None).rotations_6d).all()  # never tracked: default position ahead


def test_baseline_regenerates_its_window(tiny_models):
    baseline = WindowBaseline(tiny_models["vae"], tiny_models["baseline"], euler_steps=1)
    for _ in range(baseline.window + 3):
        chunk = baseline.step(USER)
    assert len(baseline.conditions) == baseline.window and chunk.rotations_6d.shape == (4, 22, 6)
    with pytest.raises(ValueError, match="causal"):
        AvatarStream(tiny_models["vae"], tiny_models["baseline"])
    with pytest.raises(ValueError, match="non-causal"):
        WindowBaseline(tiny_models["vae"], tiny_models["generator"])


def test_request_maps_to_avatar_motion_in_the_reference_space(tiny_models):
    stream = AvatarStream(tiny_models["vae"], tiny_models["generator"], euler_steps=1)
    placement = AgentPlacement(position=(1.0, 0.0, -2.0), yaw=np.pi / 2)
    stream.reset(placement=placement)
    request = AvatarRequest(session_id="s", request_id=3, time_ns=0, user_head=USER, agent_audio=tone(16_000, 0.2),
                            eye_contact=2.0)
    motion = serve_request(stream, request)
    assert isinstance(motion, AvatarMotion) and motion.request_id == 3 and motion.rotations_6d.shape == (4, 22, 6)
    assert stream.guidance_scale == 2.0
    stream.reset(placement=placement, guidance_scale=2.0)
    chunk = stream.step(USER, [tone(16_000, 0.2)])
    assert np.allclose(motion.root_translation, placement.to_reference(chunk.root_translation), atol=1e-5)
    root = sk.rot6d_to_matrix(motion.rotations_6d[:, 0].astype(np.float64))
    assert np.allclose(root, sk.rotation_y(np.pi / 2) @ sk.rot6d_to_matrix(chunk.rotations_6d[:, 0].astype(np.float64)),
                       atol=1e-5)


def test_placement_turns_avatar_forward_into_the_reference_space():
    placement = AgentPlacement(position=(0.0, 0.0, -1.5), yaw=0.0)
    assert np.allclose(placement.to_avatar(np.array([0.0, 1.7, 0.0])), [0.0, 1.7, 1.5])  # user ahead of the agent
    turned = AgentPlacement(position=(0.0, 0.0, 0.0), yaw=np.pi / 2)
    assert np.allclose(turned.to_reference(np.array([0.0, 0.0, 1.0])), [1.0, 0.0, 0.0])
    assert np.allclose(turned.root_rotation_to_reference(np.eye(3)) @ sk.FORWARD, [1.0, 0.0, 0.0])


def test_streamed_latents_follow_the_training_attention_pattern(tiny_models):
    """Each chunk's Euler steps see exactly what the two-stream training pass shows them."""
    import torch

    from genxr.components import flow_matching as fm

    generator = tiny_models["generator"]
    stream = AvatarStream(tiny_models["vae"], generator, euler_steps=2)
    stream.guidance_scale = 1.0
    conditions, latents, noises = [], [], []
    original = stream._latent

    def spy(condition):
        state = stream.noise.get_state()
        noises.append(torch.randn((1, 1, generator.config.latent_dim), generator=torch.Generator().manual_seed(0)
                                  .set_state(state)))
        conditions.append(condition)
        latent = original(condition)
        latents.append(stream.pending[0][:1])
        return latent

    stream._latent = spy
    for _ in range(generator.config.transformer.window + 4):
        stream.step(USER)
    clean = torch.cat(latents, 1)
    condition = torch.cat([c[:1] for c in conditions], 1)
    sigmas = stream.sigmas
    with torch.no_grad():
        x = torch.cat(noises, 1)
        for s, s_next in itertools.pairwise(sigmas):
            level = torch.full(x.shape[:2], s)
            x = fm.euler_step(x, generator.forward_sequence(clean, x, level, condition), s, s_next)
    assert torch.allclose(x, clean, atol=1e-4)


def _with_root_heading(vae, root_heading: str):
    from dataclasses import replace

    from genxr.components.avatar.vae import MotionVAE

    copy = MotionVAE(replace(vae.config, root_heading=root_heading)).eval()
    copy.load_state_dict(vae.state_dict())
    return copy


def test_user_facing_frames_are_turned_back_by_each_frames_bearing_of_the_user(tiny_models):
    """Same weights, same inputs: the user-facing model's chunk is the absolute model's turned by the
    bearing of the user's head (interpolated within the chunk while the user walks)."""
    xs = [0.5, 0.8, 1.1]
    users = [Pose(position=(x, 1.7, 0.0)) for x in xs]  # avatar frame: (x, 1.7, 1.5)
    runs = {}
    for root_heading in ("user", "absolute"):
        stream = AvatarStream(_with_root_heading(tiny_models["vae"], root_heading), tiny_models["generator"],
                              euler_steps=2, smooth_seams=False)
        stream.reset(seed=5)
        runs[root_heading] = [stream.step(u) for u in users]
    for k, (user_chunk, absolute_chunk) in enumerate(zip(runs["user"], runs["absolute"])):
        start = xs[max(k - 1, 0)]
        bearing = np.arctan2(start + (xs[k] - start) * np.arange(1, 5) / 4, 1.5)  # along the stream's per-frame path
        user_heading = sk.heading(sk.rot6d_to_matrix(user_chunk.rotations_6d[:, 0].astype(np.float64)))
        absolute_heading = sk.heading(sk.rot6d_to_matrix(absolute_chunk.rotations_6d[:, 0].astype(np.float64)))
        assert np.allclose(sk.wrap_angle(user_heading - absolute_heading), bearing, atol=2e-3)
        assert np.allclose(user_chunk.rotations_6d[:, 1:], absolute_chunk.rotations_6d[:, 1:], atol=1e-5)
        turn = sk.rotation_y(bearing)
        assert np.allclose(user_chunk.root_translation, np.einsum("tij,tj->ti", turn, absolute_chunk.root_translation),
                           atol=1e-4)


def test_the_spatial_ablation_gets_no_bearing_to_turn_by(tiny_models):
    """Without the user input the generator cannot know where the user is, and neither may its output."""
    chunks = []
    for user in (Pose(position=(1.5, 1.7, -1.5)), Pose(position=(-1.5, 1.7, -1.5))):
        stream = AvatarStream(tiny_models["vae"], tiny_models["generator_no_user"], euler_steps=2)
        stream.reset(seed=2)
        chunks.append([stream.step(user) for _ in range(3)])
    for a, b in zip(*chunks):
        assert np.array_equal(a.rotations_6d, b.rotations_6d) and np.array_equal(a.root_translation, b.root_translation)

"""The conversation simulator: reproducible, plausible turn-taking, audio and agent behaviour."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from genxr.components.avatar import skeleton as sk
from genxr.components.sim.conversation.audio import SAMPLE_RATE_HZ
from genxr.components.sim.conversation.dataset import simulate_conversation, write_dataset
from genxr.components.sim.conversation.turns import simulate_turns
from genxr.components.sim.conversation.user import FPS


@pytest.fixture(scope="module")
def talk():
    return simulate_conversation(seed=3, index=0, seconds=40.0)


def test_same_seed_same_arrays_other_seed_differs(talk):
    again = simulate_conversation(seed=3, index=0, seconds=40.0)
    for name, value in talk.arrays().items():
        assert np.array_equal(value, again.arrays()[name]), name
    assert not np.array_equal(talk.user_head, simulate_conversation(seed=4, index=0, seconds=40.0).user_head)


def test_shapes_dtypes_and_ranges(talk):
    assert talk.frames == 40 * FPS
    assert talk.rotations_6d.shape == (1200, 22, 6) and talk.rotations_6d.dtype == np.float32
    assert talk.user_audio.shape == talk.agent_audio.shape == (40 * SAMPLE_RATE_HZ,)
    assert np.abs(talk.agent_audio).max() <= 1.0 and talk.agent_audio.dtype == np.float32
    distance = np.hypot(talk.user_head[:, 0], talk.user_head[:, 2])
    assert distance.min() > 0.8 and distance.max() < 3.1


def test_turn_taking_has_pauses_and_overlaps():
    gaps = []
    for seed in range(6):
        tracks = simulate_turns(np.random.default_rng(seed), 60.0)
        t = np.arange(0, 60, 1 / FPS)
        user, agent = tracks["user"].active(t), tracks["agent"].active(t)
        gaps.append(((user & agent).mean(), (~user & ~agent).mean(), user.mean(), agent.mean()))
    overlap, silence, user, agent = np.mean(gaps, axis=0)
    assert 0.0 < overlap < 0.15 and 0.05 < silence < 0.5 and user > 0.2 and agent > 0.2


def test_audio_is_loud_while_speaking_and_quiet_otherwise(talk):
    hop = SAMPLE_RATE_HZ // FPS * FPS // FPS
    energy = np.sqrt(np.mean(talk.agent_audio[: hop * talk.frames].reshape(talk.frames, -1)[:, :] ** 2, axis=1))
    assert energy[talk.agent_speaking].mean() > 20 * energy[~talk.agent_speaking & ~talk.user_speaking].mean()


def test_agent_faces_user_and_looks_more_while_listening(talk):
    positions, rotations = sk.forward_kinematics_6d(talk.rotations_6d, talk.root_translation)
    facing = np.degrees(np.abs(sk.facing_error(positions, talk.user_head)))
    assert np.median(facing[~talk.user_walking]) < 5.0
    gaze = np.degrees(sk.gaze_angle(positions, rotations, talk.user_head))
    assert np.median(gaze[talk.agent_eye_contact]) < 5.0
    assert np.median(gaze[~talk.agent_eye_contact]) > 12.0
    listening = ~talk.agent_speaking
    assert talk.agent_eye_contact[listening].mean() > talk.agent_eye_contact[~listening].mean()


def test_gesture_speed_minima_align_with_agent_syllables(talk):
    local = sk.rot6d_to_matrix(talk.rotations_6d)
    local[:, 0] = np.eye(3)  # measure the hands relative to the pelvis, not the body turn
    positions, _ = sk.forward_kinematics(local, np.zeros((talk.frames, 3)))
    wrists = positions[:, [sk.JOINT["left_wrist"], sk.JOINT["right_wrist"]]]
    speed = np.linalg.norm(np.diff(wrists, axis=0), axis=-1).sum(axis=-1)
    minima = np.flatnonzero((speed[1:-1] < speed[:-2]) & (speed[1:-1] <= speed[2:])) + 1
    minima = minima[talk.agent_speaking[minima] & (speed[minima - 3] > 0.01)]
    onsets = np.round(talk.agent_syllables * FPS)
    near = np.abs(minima[:, None] + 0.5 - onsets[None, :]).min(axis=1) <= 2
    assert len(minima) > 5 and near.mean() > 0.8
    assert speed[talk.agent_speaking[1:]].mean() > 1.5 * speed[~talk.agent_speaking[1:]].mean()


def test_dataset_bytes_are_reproducible_and_manifest_is_last(tmp_path):
    first = write_dataset(tmp_path / "a", conversations=3, seconds=2.0, seed=7, shard_size=2)
    write_dataset(tmp_path / "b", conversations=3, seconds=2.0, seed=7, shard_size=2)
    assert [s["conversations"] for s in first["shards"]] == [[0, 1], [2]]
    for name in ("manifest.json", "shard-00000.safetensors", "shard-00001.safetensors"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert not list((tmp_path / "a").glob(".*tmp"))
    shard = load_file(tmp_path / "a" / "shard-00001.safetensors")
    again = simulate_conversation(7, 2, 2.0)
    assert np.array_equal(shard["00002/rotations_6d"], again.rotations_6d)
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["seed"] == 7


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="seconds"):
        simulate_conversation(0, 0, 0.0)
    with pytest.raises(ValueError, match="conversations"):
        write_dataset(tmp_path, conversations=0, seconds=1.0)

"""The shipped checkpoint: it loads, streams a plausible avatar, and evaluation and benchmark run on it."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.avatar import metrics
from genxr.components.avatar.checkpoint import load_checkpoint, shipped_checkpoint
from genxr.components.avatar.evaluate import EvalConfig, evaluate, stream_conversation
from genxr.components.avatar.stream import AvatarStream
from genxr.components.avatar.train import EVAL_SEED
from genxr.components.sim.conversation.dataset import simulate_conversation
from genxr.evaluation.benchmarks.avatar import run


@pytest.fixture(scope="module")
def shipped():
    return load_checkpoint(shipped_checkpoint("cpu"))


def test_shipped_checkpoint_is_small_and_complete(shipped):
    models, config = shipped
    assert set(models) == {"vae", "generator", "generator_no_user", "baseline"}
    assert (shipped_checkpoint("cpu") / "model.safetensors").stat().st_size < 8 * 1024 * 1024
    assert config["summary"]["training"]["preset"] == "cpu"


def test_streamed_avatar_turns_toward_a_user_it_has_never_seen(shipped):
    models, _ = shipped
    talk = simulate_conversation(EVAL_SEED, 5, 12.0)
    rotations, root = stream_conversation(AvatarStream(models["vae"], models["generator"]), talk, seed=0)
    gaze, facing = metrics.gaze_and_facing_deg(rotations, root, talk.user_head[:len(rotations)])
    assert np.isfinite(rotations).all() and np.abs(root[:, 1] - 0.93).max() < 0.2
    assert np.median(facing[90:]) < 45.0 and np.median(gaze[90:]) < 45.0


def test_eval_and_bench_report_their_keys():
    result = evaluate(shipped_checkpoint("cpu"), EvalConfig(conversations=1, seconds=4.0, guidance_scales=(0.0, 2.0)))
    for key in ("fd_g", "fd_k", "gaze_error_deg", "facing_error_deg", "beat_consistency", "eye_contact_ratio_by_scale",
                "mean_pose_baseline", "ground_truth", "no_user_position", "targets"):
        assert key in result
    assert len(result["eye_contact_ratio_by_scale"]) == 2
    bench = run("cpu", seconds=1.0, threads=1)
    assert bench["stream_fps"] > 0 and bench["baseline_fps"] > 0


def test_shipped_avatar_faces_held_out_users_as_the_humans_do(shipped):
    """Facing error within 20 % of the ground truth's spread (the issue's target) on three held-out
    conversations the evaluation also uses, and the no-user ablation far worse."""
    models, _ = shipped
    model, truth, ablation = [], [], []
    for index in (5, 6, 7):
        talk = simulate_conversation(EVAL_SEED, index, 20.0)
        for out, generator in ((model, "generator"), (ablation, "generator_no_user")):
            rotations, root = stream_conversation(AvatarStream(models["vae"], models[generator]), talk, seed=0)
            out.append(metrics.gaze_and_facing_deg(rotations, root, talk.user_head[:len(rotations)]))
        n = len(model[-1][0])
        truth.append(metrics.gaze_and_facing_deg(talk.rotations_6d[:n], talk.root_translation[:n], talk.user_head[:n]))
    facing, true_facing, ablation_facing = (np.concatenate([f for _, f in runs]) for runs in (model, truth, ablation))
    assert abs(facing.mean() - true_facing.mean()) <= 0.2 * true_facing.std()
    assert np.concatenate([g for g, _ in model]).mean() <= 30.0
    assert ablation_facing.mean() > facing.mean() + 30.0

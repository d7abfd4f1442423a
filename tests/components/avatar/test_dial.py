"""The eye-contact dial's default is chosen on validation conversations: parsing, the split, the scores."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.avatar.checkpoint import save_checkpoint
from genxr.components.avatar.dial import dial_sweep, parse_settings, validation_conversations
from genxr.components.avatar.train import EVAL_SEED, TRAINING_PRESETS
from genxr.components.sim.conversation.dataset import simulate_conversation


def test_settings_parse_and_bad_ones_name_the_item():
    assert parse_settings("1:mean,0.5:1, 2") == [(1.0, None), (0.5, 1.0), (2.0, None)]
    with pytest.raises(ValueError, match="'x:1'"):
        parse_settings("x:1")
    with pytest.raises(ValueError, match="'1:1.5'.*in \\[0, 1\\]"):
        parse_settings("1:1.5")


def test_validation_conversations_are_neither_trained_on_nor_held_out():
    config = TRAINING_PRESETS["cpu"]
    validation = validation_conversations(1, 2.0)[0]
    last_trained = simulate_conversation(config.seed, config.conversations - 1, 2.0)
    held_out = simulate_conversation(EVAL_SEED, 0, 2.0)
    assert np.array_equal(validation.agent_audio, simulate_conversation(config.seed, config.conversations, 2.0).agent_audio)
    for other in (last_trained, held_out):
        assert not np.allclose(validation.user_head, other.user_head)


def test_sweep_scores_each_setting_against_the_ground_truth_spread(tiny_models, tmp_path):
    checkpoint = save_checkpoint(tmp_path / "tiny", {k: tiny_models[k] for k in ("vae", "generator")}, {})
    result = dial_sweep(checkpoint, [(1.0, None), (0.5, 1.0)], conversations=1, seconds=6.0)
    gt = result["ground_truth"]
    assert result["split"] == "validation" and len(result["settings"]) == 2
    for row in result["settings"]:
        expected = abs(row["gaze_error_deg"] - gt["gaze_error_deg"]) / gt["gaze_error_deg_std"]
        assert row["gaze_gap_in_gt_std"] == pytest.approx(expected)
        assert row["both_within_target"] == (row["gaze_gap_in_gt_std"] <= 0.2 and row["facing_gap_in_gt_std"] <= 0.2)
    assert result["settings"][1]["gaze_target"] == 1.0


def test_mean_means_the_training_mean_not_the_streams_default(tiny_models, tmp_path):
    checkpoint = save_checkpoint(tmp_path / "tiny", {k: tiny_models[k] for k in ("vae", "generator")}, {})
    mean = float(tiny_models["generator"].gaze_mean)
    result = dial_sweep(checkpoint, [(1.0, None), (1.0, mean), (1.0, 0.2)], conversations=1, seconds=6.0)
    by_mean, explicit, other = result["settings"]
    assert by_mean["gaze_target"] == pytest.approx(mean)
    assert by_mean["gaze_error_deg"] == explicit["gaze_error_deg"] and by_mean["fd_g"] == explicit["fd_g"]
    assert other["gaze_error_deg"] != by_mean["gaze_error_deg"]  # the target reaches the stream

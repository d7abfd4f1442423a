"""Checkpoints: round trip, and clear errors for missing, truncated or altered files."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from genxr.components.avatar.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


@pytest.fixture()
def saved(tmp_path, tiny_models):
    return save_checkpoint(tmp_path / "ck", tiny_models, {"note": "test"})


def test_round_trip_in_float16(saved, tiny_models):
    models, config = load_checkpoint(saved)
    assert set(models) == set(tiny_models) and config["summary"] == {"note": "test"}
    for name, model in models.items():
        for key, value in model.state_dict().items():
            assert torch.allclose(value, tiny_models[name].state_dict()[key].half().float()), (name, key)
    assert not models["baseline"].config.causal and not models["generator_no_user"].config.use_user_position


def test_truncated_weights_are_refused(saved):
    weights = saved / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(saved)


def test_flipped_byte_is_refused(saved):
    weights = saved / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(saved)


def test_garbage_with_a_matching_hash_is_refused(saved):
    weights = saved / "model.safetensors"
    weights.write_bytes(b"not a safetensors file")
    config = json.loads((saved / "config.json").read_text())
    config["sha256"] = hashlib.sha256(b"not a safetensors file").hexdigest()
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="unreadable safetensors"):
        load_checkpoint(saved)


def test_missing_files_and_bad_config(tmp_path, saved):
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_checkpoint(tmp_path / "nowhere")
    (saved / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a valid config"):
        load_checkpoint(saved)


def test_config_that_does_not_match_the_weights(saved):
    config = json.loads((saved / "config.json").read_text())
    config["models"]["vae"]["config"]["latent_dim"] = 7
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not match its config"):
        load_checkpoint(saved)


def test_a_checkpoint_saved_before_the_user_facing_frame_loads_in_the_avatar_frame(saved):
    models, _ = load_checkpoint(saved)
    assert models["vae"].config.root_heading == "user"  # what new checkpoints record
    config = json.loads((saved / "config.json").read_text())
    del config["models"]["vae"]["config"]["root_heading"]
    (saved / "config.json").write_text(json.dumps(config))
    models, _ = load_checkpoint(saved)
    assert models["vae"].config.root_heading == "absolute"

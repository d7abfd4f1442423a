import json
from dataclasses import replace

import pytest
import torch

from genxr.components.worldmodel.checkpoint import (
    CheckpointError,
    load_model,
    save_model,
)
from genxr.components.worldmodel.codec import CODEC_PRESETS, FrameCodec
from genxr.components.worldmodel.dit import DIT_PRESETS, VideoDiT


def test_round_trip_float16_and_float32(tmp_path):
    model = VideoDiT(DIT_PRESETS["tiny"])
    save_model(tmp_path / "a", model, {"note": "x"})
    loaded, config = load_model(tmp_path / "a", DIT_PRESETS["tiny"])
    assert config["summary"] == {"note": "x"} and loaded.config == model.config
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    save_model(tmp_path / "h", FrameCodec(CODEC_PRESETS["tiny"]), {}, dtype=torch.float16)
    codec, _ = load_model(tmp_path / "h")
    assert codec.components.dtype == torch.float32


def test_missing_and_corrupt_files_raise_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_model(tmp_path / "nothing")
    directory = save_model(tmp_path / "c", FrameCodec(CODEC_PRESETS["tiny"]), {})
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="sha256"):
        load_model(directory)
    weights.unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_model(directory)
    (directory / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a valid"):
        load_model(directory)


def test_pickle_is_never_loaded(tmp_path):
    directory = save_model(tmp_path / "p", FrameCodec(CODEC_PRESETS["tiny"]), {})
    torch.save({"evil": 1}, directory / "model.safetensors")
    config = json.loads((directory / "config.json").read_text())
    import hashlib

    config["sha256"] = hashlib.sha256((directory / "model.safetensors").read_bytes()).hexdigest()
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="unreadable safetensors"):
        load_model(directory)


def test_config_mismatch_names_the_field(tmp_path):
    save_model(tmp_path / "m", VideoDiT(DIT_PRESETS["tiny"]), {})
    expected = replace(DIT_PRESETS["tiny"], depth=3,
                       conditioning=replace(DIT_PRESETS["tiny"].conditioning, use_joints=False))
    with pytest.raises(CheckpointError, match=r"depth: 2 in the checkpoint vs 3.*conditioning.use_joints"):
        load_model(tmp_path / "m", expected)
    with pytest.raises(CheckpointError, match="holds a VideoDiT, expected a FrameCodecConfig"):
        load_model(tmp_path / "m", CODEC_PRESETS["tiny"])
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["config"]["width"] = 48
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="has shape"):
        load_model(tmp_path / "m")

"""World-model checkpoints with an edited ``config.json`` are refused by CheckpointError naming the
file, the field and the value: never a ZeroDivisionError / TypeError traceback, never a model that
loads and then fails every request (issue #18, D9)."""

from __future__ import annotations

import json
import shutil

import pytest

from genxr.components.worldmodel.checkpoint import CHECKPOINT_ROOT, CheckpointError, load_model, shipped
from genxr.components.worldmodel.codec import FrameCodecConfig
from genxr.components.worldmodel.dit import VideoDiTConfig


def _edited(tmp_path, name: str, edit) -> tuple:
    """A copy of the shipped checkpoint ``name`` whose parsed config.json went through ``edit``."""
    directory = shutil.copytree(shipped(name), tmp_path / name)
    path = directory / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    return directory, path


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def edit(config):
        for key in keys[:-1]:
            config = config[key]
        config[keys[-1]] = value
    return edit


def _delete(*keys):
    def edit(config):
        for key in keys[:-1]:
            config = config[key]
        del config[keys[-1]]
    return edit


BAD = {
    # before: ZeroDivisionError / TypeError tracebacks out of the constructors
    "heads 0": ("student", _set("config", "heads", 0), "config.heads = 0: Input should be greater than 0"),
    "heads as text": ("student", _set("config", "heads", "4"), "config.heads = '4': Input should be a valid integer"),
    "width as float": ("student", _set("config", "width", 128.0), "config.width = 128.0"),
    "fov as text": ("student", _set("config", "conditioning", "vertical_fov_deg", "80"),
                    "config.conditioning.vertical_fov_deg = '80'"),
    "conditioning null": ("student", _set("config", "conditioning", None), "config.conditioning"),
    "config a list": ("student", _set("config", [1, 2]), "config = [1, 2]"),
    "codec patch 0": ("codec", _set("config", "patch", 0), "config.patch = 0"),
    "codec channels as text": ("codec", _set("config", "latent_channels", "16"), "config.latent_channels = '16'"),
    # before: a plain ValueError out of a constructor, not a CheckpointError
    "heads 3": ("student", _set("config", "heads", 3), "width 128 must be heads 3 times an even head size"),
    "skeleton resolution": ("student", _set("config", "conditioning", "skeleton_resolution", 24),
                            "skeleton_resolution 24 must be latent_size 8 times a power of two"),
    "codec resolution": ("codec", _set("config", "resolution", 60), "resolution 60 must be a multiple of patch 8"),
    # before: loaded (no weight shape shows them), then failed or misbehaved on every request
    "head size 1": ("student", _set("config", "heads", 128), "width 128 must be heads 128 times an even head size"),
    "chunk_frames 0": ("student", _set("config", "chunk_frames", 0), "config.chunk_frames = 0"),
    "negative window": ("student", _set("config", "window_frames", -1), "config.window_frames = -1"),
    "causal as text": ("student", _set("config", "causal", "false"), "config.causal = 'false'"),
    "use_camera as number": ("student", _set("config", "conditioning", "use_camera", 1),
                             "config.conditioning.use_camera = 1"),
    # refused before too; still refused, naming the field
    "unknown field": ("student", _set("config", "dropout", 0.1), "config.dropout = 0.1: Unexpected keyword argument"),
    "sha256 missing": ("codec", _delete("sha256"), "sha256: Field required"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_config_field_is_refused_naming_file_field_and_value(tmp_path, case):
    name, edit, expected = BAD[case]
    directory, path = _edited(tmp_path, name, edit)
    with pytest.raises(CheckpointError) as caught:
        load_model(directory)
    message = str(caught.value)
    assert str(path) in message and expected in message, message
    assert "\n" not in message


@pytest.mark.parametrize("name", sorted(p.name for p in CHECKPOINT_ROOT.iterdir() if (p / "config.json").is_file()))
def test_every_shipped_checkpoint_still_loads(name):
    model, config = load_model(shipped(name))
    assert isinstance(model.config, FrameCodecConfig if config["kind"] == "FrameCodec" else VideoDiTConfig)


def test_a_config_saved_without_a_field_loads_with_its_default(tmp_path):
    directory, _ = _edited(tmp_path, "student", _delete("config", "window_frames"))
    model, _ = load_model(directory)
    assert model.config == load_model(shipped("student"))[0].config


def test_the_configs_refuse_bad_values_in_code_too():
    with pytest.raises(ValueError, match="greater than 0"):
        VideoDiTConfig(heads=0)
    with pytest.raises(ValueError, match="multiple of patch"):
        FrameCodecConfig(patch=3)

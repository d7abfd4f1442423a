"""World-model checkpoints with an edited ``config.json`` are refused by CheckpointError naming the
file, the field and the value: never a ZeroDivisionError / TypeError traceback, never a model that
loads and then fails every request (issue #18, D9)."""

from __future__ import annotations

import pytest

from genxr.components.worldmodel.checkpoint import CHECKPOINT_ROOT, CheckpointError, load_model, shipped
from genxr.components.worldmodel.codec import FrameCodecConfig
from genxr.components.worldmodel.dit import VideoDiTConfig
from tests.helpers.checkpoints import delete_key, edited_copy, set_key


def _edited(tmp_path, name: str, edit) -> tuple:
    """A copy of the shipped checkpoint ``name`` whose parsed config.json went through ``edit``."""
    return edited_copy(shipped(name), tmp_path / name, edit)




BAD = {
    # before: ZeroDivisionError / TypeError tracebacks out of the constructors
    "heads 0": ("student", set_key("config", "heads", 0), "config.heads = 0: Input should be greater than 0"),
    "heads as text": ("student", set_key("config", "heads", "4"), "config.heads = '4': Input should be a valid integer"),
    "width as float": ("student", set_key("config", "width", 128.0), "config.width = 128.0"),
    "fov as text": ("student", set_key("config", "conditioning", "vertical_fov_deg", "80"),
                    "config.conditioning.vertical_fov_deg = '80'"),
    "conditioning null": ("student", set_key("config", "conditioning", None), "config.conditioning"),
    "config a list": ("student", set_key("config", [1, 2]), "config = [1, 2]"),
    "codec patch 0": ("codec", set_key("config", "patch", 0), "config.patch = 0"),
    "codec channels as text": ("codec", set_key("config", "latent_channels", "16"), "config.latent_channels = '16'"),
    # before: a plain ValueError out of a constructor, not a CheckpointError
    "heads 3": ("student", set_key("config", "heads", 3), "width 128 must be heads 3 times an even head size"),
    "skeleton resolution": ("student", set_key("config", "conditioning", "skeleton_resolution", 24),
                            "skeleton_resolution 24 must be latent_size 8 times a power of two"),
    "codec resolution": ("codec", set_key("config", "resolution", 60), "resolution 60 must be a multiple of patch 8"),
    # before: loaded (no weight shape shows them), then failed or misbehaved on every request
    "head size 1": ("student", set_key("config", "heads", 128), "width 128 must be heads 128 times an even head size"),
    "chunk_frames 0": ("student", set_key("config", "chunk_frames", 0), "config.chunk_frames = 0"),
    "negative window": ("student", set_key("config", "window_frames", -1), "config.window_frames = -1"),
    "causal as text": ("student", set_key("config", "causal", "false"), "config.causal = 'false'"),
    "use_camera as number": ("student", set_key("config", "conditioning", "use_camera", 1),
                             "config.conditioning.use_camera = 1"),
    # refused before too; still refused, naming the field
    "unknown field": ("student", set_key("config", "dropout", 0.1), "config.dropout = 0.1: Unexpected keyword argument"),
    "sha256 missing": ("codec", delete_key("sha256"), "sha256: Field required"),
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
    directory, _ = _edited(tmp_path, "student", delete_key("config", "window_frames"))
    model, _ = load_model(directory)
    assert model.config == load_model(shipped("student"))[0].config


def test_the_configs_refuse_bad_values_in_code_too():
    with pytest.raises(ValueError, match="greater than 0"):
        VideoDiTConfig(heads=0)
    with pytest.raises(ValueError, match="multiple of patch"):
        FrameCodecConfig(patch=3)

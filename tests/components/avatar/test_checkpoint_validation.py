"""Avatar checkpoints with an edited ``config.json`` are refused by CheckpointError naming the file,
the field and the value - never an AttributeError / TypeError traceback, never a model that loads
and then fails every request - and a session given one runs without its avatar, saying why
(issue #18, D9)."""

from __future__ import annotations

import json
import shutil

import pytest

from genxr.components.avatar.checkpoint import CheckpointError, load_checkpoint, shipped_checkpoint
from genxr.components.avatar.service import AvatarService, AvatarUnavailableError


def _edited(tmp_path, edit):
    """A copy of the shipped checkpoint whose parsed config.json went through ``edit``."""
    directory = shutil.copytree(shipped_checkpoint("cpu"), tmp_path / "ck")
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


VAE, GENERATOR = ("models", "vae", "config"), ("models", "generator", "config")
BAD = {
    # before: loaded, then every request failed (ZeroDivisionError / view errors / NaN masks)
    "heads 0": (_set(*VAE, "transformer", "heads", 0), "models.vae.config.transformer.heads = 0: Input should be greater than 0"),
    "heads not dividing width": (_set(*GENERATOR, "transformer", "heads", 5),
                                 "models.generator.config.transformer: width 96 must be a multiple of heads 5"),
    "heads as float": (_set(*GENERATOR, "transformer", "heads", 4.0), "models.generator.config.transformer.heads = 4.0"),
    "window 0": (_set(*VAE, "transformer", "window", 0), "models.vae.config.transformer.window = 0"),
    "window as text": (_set(*VAE, "transformer", "window", "80"), "models.vae.config.transformer.window = '80'"),
    "causal as text": (_set(*GENERATOR, "causal", "yes"), "models.generator.config.causal = 'yes'"),
    # before: a ValueError out of MotionVAEConfig / AvatarStream, which crashed `genxr demo`
    "root_heading": (_set(*VAE, "root_heading", "sideways"),
                     "models.vae.config.root_heading = 'sideways': Input should be 'absolute' or 'user'"),
    "generator not causal": (_set(*GENERATOR, "causal", False), "models.generator.config.causal = False: the generator must be causal"),
    "baseline causal": (_set("models", "baseline", "config", "causal", True),
                        "models.baseline.config.causal = True: the baseline must be non-causal"),
    # before: AttributeError tracebacks
    "models a list": (_set("models", []), "not a valid config (models = []: Input should be an object"),
    "model entry a string": (_set("models", "vae", "x"), "models.vae = 'x'"),
    # before: passed unchecked
    "format missing": (_delete("format"), "format: Field required"),
    "unknown model name": (_set("models", "teacher", {"kind": "MotionVAE", "config": {}}), "models.teacher"),
    "vae of the wrong kind": (_set("models", "vae", "kind", "LatentGenerator"),
                              "models.vae.kind = 'LatentGenerator': the vae must be a MotionVAE"),
    "gaze_drop_prob above 1": (_set(*GENERATOR, "gaze_drop_prob", 1.5), "models.generator.config.gaze_drop_prob = 1.5"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_config_field_is_refused_naming_file_field_and_value(tmp_path, case):
    edit, expected = BAD[case]
    directory, path = _edited(tmp_path, edit)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(directory)
    message = str(caught.value)
    assert str(path) in message and expected in message, message
    assert "\n" not in message


def test_an_old_config_without_root_heading_still_loads_in_the_avatar_frame(tmp_path):
    directory, _ = _edited(tmp_path, _delete(*VAE, "root_heading"))
    models, _ = load_checkpoint(directory)
    assert models["vae"].config.root_heading == "absolute"


@pytest.mark.parametrize("case", ["heads 0", "root_heading", "generator not causal"])
def test_the_session_runs_without_an_avatar_it_cannot_load_and_says_why(tmp_path, case):
    from genxr.platform.config import load_config
    from genxr.xr_runtime.session import make_avatar

    edit, expected = BAD[case]
    directory, path = _edited(tmp_path, edit)
    with pytest.raises(AvatarUnavailableError, match="models"):
        AvatarService(0, checkpoint=directory)
    service, audio, note = make_avatar(load_config(session={"avatar_checkpoint": str(directory)}), 0)
    assert service is None and audio is None
    assert note.startswith("unavailable: ") and str(path) in note and expected in note, note

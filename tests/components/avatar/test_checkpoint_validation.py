"""Avatar checkpoints with an edited ``config.json`` are refused by CheckpointError naming the file,
the field and the value - never an AttributeError / TypeError traceback, never a model that loads
and then fails every request - and a session given one runs without its avatar, saying why
(issue #18, D9)."""

from __future__ import annotations

import pytest

from genxr.components.avatar.checkpoint import CheckpointError, load_checkpoint, shipped_checkpoint
from genxr.components.avatar.service import AvatarService, AvatarUnavailableError
from tests.helpers.checkpoints import delete_key, edited_copy, set_key


def _edited(tmp_path, edit):
    """A copy of the shipped checkpoint whose parsed config.json went through ``edit``."""
    return edited_copy(shipped_checkpoint("cpu"), tmp_path / "ck", edit)




VAE, GENERATOR = ("models", "vae", "config"), ("models", "generator", "config")
BAD = {
    # before: loaded, then every request failed (ZeroDivisionError / view errors / NaN masks)
    "heads 0": (set_key(*VAE, "transformer", "heads", 0), "models.vae.config.transformer.heads = 0: Input should be greater than 0"),
    "heads not dividing width": (set_key(*GENERATOR, "transformer", "heads", 5),
                                 "models.generator.config.transformer: width 96 must be a multiple of heads 5"),
    "heads as float": (set_key(*GENERATOR, "transformer", "heads", 4.0), "models.generator.config.transformer.heads = 4.0"),
    "window 0": (set_key(*VAE, "transformer", "window", 0), "models.vae.config.transformer.window = 0"),
    "window as text": (set_key(*VAE, "transformer", "window", "80"), "models.vae.config.transformer.window = '80'"),
    "causal as text": (set_key(*GENERATOR, "causal", "yes"), "models.generator.config.causal = 'yes'"),
    # before: a ValueError out of MotionVAEConfig / AvatarStream, which crashed `genxr demo`
    "root_heading": (set_key(*VAE, "root_heading", "sideways"),
                     "models.vae.config.root_heading = 'sideways': Input should be 'absolute' or 'user'"),
    "generator not causal": (set_key(*GENERATOR, "causal", False), "models.generator.config.causal = False: the generator must be causal"),
    "baseline causal": (set_key("models", "baseline", "config", "causal", True),
                        "models.baseline.config.causal = True: the baseline must be non-causal"),
    # before: AttributeError tracebacks
    "models a list": (set_key("models", []), "not a valid config (models = []: Input should be an object"),
    "model entry a string": (set_key("models", "vae", "x"), "models.vae = 'x'"),
    # before: passed unchecked
    "format missing": (delete_key("format"), "format: Field required"),
    "unknown model name": (set_key("models", "teacher", {"kind": "MotionVAE", "config": {}}), "models.teacher"),
    "vae of the wrong kind": (set_key("models", "vae", "kind", "LatentGenerator"),
                              "models.vae.kind = 'LatentGenerator': the vae must be a MotionVAE"),
    "gaze_drop_prob above 1": (set_key(*GENERATOR, "gaze_drop_prob", 1.5), "models.generator.config.gaze_drop_prob = 1.5"),
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
    directory, _ = _edited(tmp_path, delete_key(*VAE, "root_heading"))
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

import json
from dataclasses import replace

import pytest

from genxr.components.worldmodel.checkpoint import CheckpointError, load_model
from genxr.components.worldmodel.train import PRESETS, teacher_config, train_teacher


def test_tiny_run_trains_every_stage(tiny_run):
    out, preset, _, _ = tiny_run
    for name in ("codec", "teacher", "teacher_head_only", "student_ode", "student"):
        _, config = load_model(out / name)
        assert config["summary"]["preset"] == "tiny"
    assert json.loads((out / "teacher" / "train_state.json").read_text())["step"] == preset.teacher_training.steps
    head_only, _ = load_model(out / "teacher_head_only", teacher_config(preset, head_only=True))
    assert not head_only.config.conditioning.use_skeleton and not head_only.config.conditioning.use_joints
    student, config = load_model(out / "student")
    assert student.config.causal and config["summary"]["stage"] == "self_forcing_dmd"


def test_training_resumes_from_the_last_save(tiny_run):
    out, preset, train_dir, _ = tiny_run
    longer = replace(preset, teacher_training=replace(preset.teacher_training, steps=preset.teacher_training.steps + 2))
    train_teacher(longer, train_dir, out)
    state = json.loads((out / "teacher" / "train_state.json").read_text())
    assert state["step"] == longer.teacher_training.steps


def test_resume_with_another_config_names_the_field(tiny_run):
    out, preset, train_dir, _ = tiny_run
    wider = replace(preset, dit=replace(preset.dit, width=48))
    with pytest.raises(CheckpointError, match="width: 32 in the checkpoint vs 48"):
        train_teacher(wider, train_dir, out)
    with pytest.raises(CheckpointError, match="preset 'tiny', not 'cpu'"):
        train_teacher(replace(PRESETS["cpu"], codec=preset.codec), train_dir, out)

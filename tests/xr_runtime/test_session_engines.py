"""In-process sessions run the deployments' engines: the student folded at ``session.world_fold``
with its chunk step on ONNX Runtime, the avatar's step on ONNX Runtime; metrics.json and the
manifest name them, a first export is announced, and a bad ratio is refused naming the field."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.platform.config import DEFAULT_WORLD_FOLD, ConfigError, load_config
from genxr.xr_runtime.recording.reader import read_recording
from genxr.xr_runtime.session import SessionError, make_avatar, make_world, run_session
from tests.helpers.cli import said

SMALL = {"display": {"width": 64, "height": 64}}
ORT = "onnxruntime[CPUExecutionProvider]"


@pytest.fixture(scope="module")
def engine_session(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sessions") / "engines"
    return run_session(load_config("quick", **SMALL), folder, seconds=60.0, max_frames=60)


def test_the_default_in_process_session_runs_the_folded_student_and_the_avatar_on_onnxruntime(engine_session):
    assert DEFAULT_WORLD_FOLD == 0.2
    metrics = json.loads((engine_session.folder / "metrics.json").read_text())
    assert metrics["world_model"] == f"worldmodel-student-fold0.2@{ORT}" == engine_session.world_model
    assert metrics["avatar"] == f"streaming (in the session process, {ORT}, avatar-stream, gaze guidance 1)"
    assert metrics["world_model_hz"] > 0 and metrics["avatar_hz"] > 0 and metrics["frames"] == 60
    recording = read_recording(engine_session.folder / "recording")
    assert recording.manifest["world_model"] == metrics["world_model"] and recording.manifest["avatar"] == metrics["avatar"]
    assert recording.manifest["config"]["session"]["world_fold"] == 0.2


def test_world_fold_null_or_zero_is_the_student_as_shipped_on_the_engine():
    for fold in (None, 0):
        name, world = make_world(load_config(session={"world_fold": fold}))
        assert name == f"worldmodel-student@{ORT}" and world.describe()["fold"] is None


def test_ground_truth_stays_the_simulators_world():
    name, _ = make_world(load_config(session={"world": "ground_truth"}))
    assert name == "ground_truth"


def test_world_model_v2_is_refused_with_the_command_that_trains_it_while_it_is_not_shipped(monkeypatch, tmp_path):
    import genxr.components.worldmodel.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "CHECKPOINT_ROOT", tmp_path)
    with pytest.raises(SessionError, match="genxr train worldmodel-pixel --preset cpu --ship"):
        make_world(load_config(session={"world": "pixel"}))


def test_the_in_process_avatar_runs_its_step_on_onnxruntime():
    service, audio, note = make_avatar(load_config(), 0)
    assert note == f"streaming (in the session process, {ORT}, avatar-stream, gaze guidance 1)" and audio is not None
    assert service.describe()["engine"] == ORT


def test_a_first_export_is_announced(monkeypatch, capsys):
    import genxr.deploy.engines.world as world

    monkeypatch.setattr(world, "student_onnx_cached", lambda fold=None, folder=None, student="student": False)
    make_world(load_config())
    message = " ".join(capsys.readouterr().err.split())
    assert "world model: exporting the student folded at 0.2 to ONNX for onnxruntime" in message
    assert f"{world.student_onnx_key(0.2)}.onnx" in message


@pytest.mark.parametrize("fold", [1.0, -0.1, 2])
def test_a_ratio_outside_0_1_is_refused_naming_the_field(fold):
    with pytest.raises(ConfigError, match=rf"session\.world_fold = {fold!r}"):
        load_config(session={"world_fold": fold})


def test_a_ratio_outside_0_1_in_the_environment_stops_the_demo_naming_the_field(monkeypatch):
    monkeypatch.setenv("GENXR_SESSION__WORLD_FOLD", "1.5")
    result = CliRunner().invoke(app, ["demo", "--seconds", "1"])
    assert result.exit_code == 2 and "session.world_fold = '1.5'" in said(result.stderr)


def test_a_ratio_that_empties_a_group_stops_the_session_naming_the_field():
    with pytest.raises(SessionError, match=r"session\.world_fold=0\.9: .*condition\.skeleton"):
        make_world(load_config(session={"world_fold": 0.9}))


def test_a_ray_session_asks_connect_for_its_fold(monkeypatch, tmp_path):
    import genxr.deploy.serving.deployments as deployments

    asked = {}

    def connect(address=None, **options):
        asked.update(options)
        raise RuntimeError("no Ray in this test")

    monkeypatch.setattr(deployments, "connect", connect)
    for fold, expected in ((None, None), (0.5, 0.5)):
        config = load_config("quick", bus={"backend": "ray"}, session={"world_fold": fold, "avatar": False}, **SMALL)
        with pytest.raises(SessionError, match="no Ray in this test"):
            run_session(config, tmp_path / f"ray-{fold}", seconds=1.0)
        assert asked == {"world_kind": "world:student", "world_fold": expected}

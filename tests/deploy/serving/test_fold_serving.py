"""The served student is folded: `genxr serve --fold`, ``world_fold`` in serve_config.yaml and
``connect(world_fold=...)`` reach the replica, which names the folded model; a running replica
of another fold is redeployed; bad ratios are refused naming the field."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from typer.testing import CliRunner

import genxr.deploy.serving
from genxr.cli.app import app
from genxr.platform.config import DEFAULT_WORLD_FOLD
from tests.helpers.cli import said

CONFIG = Path(genxr.deploy.serving.__file__).parent / "serve_config.yaml"


def test_serve_options_fold_the_student_by_default_and_zero_is_unfolded():
    from genxr.deploy.serving.deployments import serve_options

    assert serve_options()["world_fold"] == DEFAULT_WORLD_FOLD == 0.2
    assert serve_options(fold=0)["world_fold"] is None and serve_options(fold=None)["world_fold"] is None
    assert serve_options(fold=0.5)["world_fold"] == 0.5
    assert serve_options("ground_truth", fold=0.5)["world_fold"] is None, "only the student folds"


def test_serve_config_serves_the_default_fold():
    world, _ = yaml.safe_load(CONFIG.read_text())["applications"]
    assert world["args"]["world_kind"] == "world:student" and world["args"]["world_fold"] == DEFAULT_WORLD_FOLD


@pytest.mark.parametrize("fold", ["1.5", "-0.1", "1"])
def test_genxr_serve_refuses_a_ratio_outside_0_1_naming_fold(fold):
    result = CliRunner().invoke(app, ["serve", "--fold", fold])
    assert result.exit_code == 2
    assert f"--fold must be a fraction of channels in [0, 1) (0: the student as shipped), got {float(fold)}" \
        in said(result.stderr)


def test_deployments_refuse_a_bad_or_misplaced_fold_naming_it():
    from genxr.deploy.serving.deployments import ModelDeployment, build_app, connect

    with pytest.raises(ValueError, match=r"model kind 'world:echo' has no fold option \(fold=0\.3\)"):
        ModelDeployment("world:echo", fold=0.3)
    with pytest.raises(ValueError, match=r"^fold must be a fraction of channels in \[0, 1\)"):
        ModelDeployment("world:student", fold=1.0)
    with pytest.raises(ValueError, match=r"^world_fold must be a fraction of channels in \[0, 1\)"):
        build_app("world:student", world_fold=2.0)
    with pytest.raises(ValueError, match=r"^world_fold must be"):
        connect(world_kind="world:student", world_fold=-1.0)  # before Ray starts


def test_a_replica_of_another_fold_is_not_kept(monkeypatch):
    """``_running`` against fake Serve status and handles: the same fold is kept, another one (or
    an unfolded replica of an older genxr, without ``fold`` in its info) is redeployed."""
    from ray import serve

    from genxr.deploy.serving.deployments import APP_NAME, _running

    info: dict = {}

    class Call:
        def __init__(self, value):
            self.value = value

        def result(self, timeout_s=None):
            return self.value

    handle = SimpleNamespace(replica_info=SimpleNamespace(remote=lambda: Call(dict(info))))
    monkeypatch.setattr(serve, "status", lambda: SimpleNamespace(
        applications={APP_NAME: SimpleNamespace(status="RUNNING")}))
    monkeypatch.setattr(serve, "get_app_handle", lambda name: handle)
    info.update(kind="world:student", engine="onnxruntime", fold=0.3)
    assert _running(APP_NAME, "world:student", None, 0.3) is handle
    assert _running(APP_NAME, "world:student", "onnxruntime", 0.3) is handle
    assert _running(APP_NAME, "world:student", None, 0.5) is None
    assert _running(APP_NAME, "world:student", None, None) is None
    info.update(fold=None)
    assert _running(APP_NAME, "world:student", None, 0.3) is None
    assert _running(APP_NAME, "world:student", None, None) is handle
    del info["fold"]  # an older genxr's replica: unfolded
    assert _running(APP_NAME, "world:student", None, 0.3) is None
    assert _running(APP_NAME, "world:student", None, None) is handle
    info.update(kind="world:ground_truth", engine=None, fold=None)
    assert _running(APP_NAME, "world:ground_truth", None, 0.3) is handle, "other kinds do not fold"


@pytest.mark.ray
@pytest.mark.slow
def test_the_served_student_is_folded_and_redeployed_when_the_fold_changes(serve_handles):
    from genxr.deploy.serving.deployments import connect, describe_deployments
    from genxr.deploy.serving.ray_bus import RayBus
    from genxr.platform.messages import WorldFrameRequest
    from genxr.platform.services import WORLD_SERVICE
    from tests.deploy.serving.test_deployments import tracking

    try:
        folded = connect(world_kind="world:student")  # connect's default: the served student is folded
        info = folded["world_model"].replica_info.remote().result(timeout_s=120)
        assert info["kind"] == "world:student" and info["fold"] == DEFAULT_WORLD_FOLD
        assert "world_model: world:student on onnxruntime (folded at 0.2)" in describe_deployments(folded)
        with RayBus("folded") as bus:
            described = bus.attach(WORLD_SERVICE, folded["world_model"], {"seed": 5})
            frame = bus.request(WORLD_SERVICE, WorldFrameRequest(session_id="folded", request_id=0,
                                                                 tracking=tracking()), timeout_s=120)
        name = "worldmodel-student-fold0.2@onnxruntime[CPUExecutionProvider]"
        assert described["model"] == name and described["fold"] == DEFAULT_WORLD_FOLD and frame.model == name
        pid = folded["world_model"].pid.remote().result(timeout_s=60)
        again = connect(world_kind="world:student", world_fold=0.2)
        assert again["world_model"].pid.remote().result(timeout_s=60) == pid, "the same fold: kept"
        unfolded = connect(world_kind="world:student", world_fold=0)
        info = unfolded["world_model"].replica_info.remote().result(timeout_s=120)
        assert info["fold"] is None and unfolded["world_model"].pid.remote().result(timeout_s=60) != pid, \
            "another fold: redeployed"
    finally:
        connect(world_kind="world:ground_truth")  # what the other Ray tests expect

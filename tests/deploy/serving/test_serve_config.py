"""The shipped Serve config is valid for `serve deploy`, and `genxr serve` runs the app."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import genxr.deploy.serving
from genxr.cli.app import app
from tests.helpers.cli import said

CONFIG = Path(genxr.deploy.serving.__file__).parent / "serve_config.yaml"


def test_serve_config_validates_against_rays_schema_and_names_our_builder():
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(yaml.safe_load(CONFIG.read_text()))
    world, avatar = schema.applications
    assert world.import_path == "genxr.deploy.serving.deployments:app_builder"
    assert [d.name for d in world.deployments] == ["world_model"]
    assert avatar.import_path == "genxr.deploy.serving.deployments:avatar_app_builder"
    assert [d.name for d in avatar.deployments] == ["avatar"]


def test_serve_config_args_build_both_applications():
    from genxr.deploy.serving.deployments import app_builder, avatar_app_builder

    world, avatar = yaml.safe_load(CONFIG.read_text())["applications"]
    assert app_builder(world["args"]) is not None and avatar_app_builder(avatar["args"]) is not None


def test_unknown_model_kind_is_refused_naming_the_known_ones():
    from genxr.deploy.serving.deployments import ModelDeployment

    known = (r"\['avatar:stream', 'world:echo', 'world:frozen', 'world:ground_truth', 'world:student', "
             r"'world:student_head_only'\]")
    with pytest.raises(ValueError, match=rf"unknown model kind 'world:teapot'; known: {known}"):
        ModelDeployment("world:teapot")


def test_an_engine_for_a_kind_without_one_is_refused_naming_both():
    from genxr.deploy.serving.deployments import ModelDeployment

    with pytest.raises(ValueError, match=r"model kind 'world:echo' has no engine option \(engine='onnxruntime'\)"):
        ModelDeployment("world:echo", engine="onnxruntime")
    with pytest.raises(ValueError, match=r"engine must be one of \['torch', 'onnxruntime', 'tensorrt'\], got 'tvm'"):
        ModelDeployment("world:student", engine="tvm")


@pytest.mark.ray
def test_genxr_serve_runs_for_the_given_time(serve_handles):
    result = CliRunner().invoke(app, ["serve", "--seconds", "0.5"])
    assert result.exit_code == 0, result.output
    printed = said(result.stderr)  # the console wraps long lines
    assert "serving app 'genxr'" in printed
    assert "avatar: avatar:stream on onnxruntime; world_model: world:student on onnxruntime" in printed


def test_genxr_serve_refuses_an_unknown_world_or_engine_naming_it():
    result = CliRunner().invoke(app, ["serve", "--world", "teapot"])
    printed = said(result.stderr)
    assert result.exit_code == 2 and "--world must be one of ['echo', 'frozen', 'ground_truth', 'student', 'student_head_only'], got 'teapot'" in printed
    result = CliRunner().invoke(app, ["serve", "--engine", "tvm"])
    assert result.exit_code == 2 and "got 'tvm'" in said(result.stderr)

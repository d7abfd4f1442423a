"""The shipped Serve config is valid for `serve deploy`, and `genxr serve` runs the app."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import genxr.deploy
from genxr.cli import app

CONFIG = Path(genxr.deploy.__file__).parent / "serve_config.yaml"


def test_serve_config_validates_against_rays_schema_and_names_our_builder():
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(yaml.safe_load(CONFIG.read_text()))
    (application,) = schema.applications
    assert application.import_path == "genxr.deploy.serve:app_builder"
    assert [d.name for d in application.deployments] == ["world_model"]


def test_unknown_model_kind_is_refused_naming_the_known_ones():
    from genxr.deploy.serve import ModelDeployment

    known = r"\['world:echo', 'world:ground_truth', 'world:student'\]"
    with pytest.raises(ValueError, match=rf"unknown model kind 'world:teapot'; known: {known}"):
        ModelDeployment("world:teapot")


@pytest.mark.ray
def test_genxr_serve_runs_for_the_given_time(serve_handles):
    result = CliRunner().invoke(app, ["serve", "--seconds", "0.5"])
    assert result.exit_code == 0, result.output
    assert "serving app 'genxr'" in result.output and "world_model" in result.output

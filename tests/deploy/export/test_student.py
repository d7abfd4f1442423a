"""The world-model student's chunk step exports to ONNX with its KV cache as plain tensors;
ONNX Runtime matches eager torch over a multi-chunk rollout where each engine carries its
own cache forward."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.deploy.engines.base import OnnxRuntimeEngine
from genxr.deploy.export.student import INPUTS, OUTPUTS, export_student_step
from tests.helpers.cli import said


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "student_step.onnx"
    return path, export_student_step(path)


def test_parity_over_a_rollout_is_within_1e_4(exported):
    _, report = exported
    assert len(report["parity_max_abs_error_per_chunk"]) == 4
    assert max(report["parity_max_abs_error_per_chunk"]) <= 1e-4


def test_the_onnx_file_has_static_shapes_and_named_state(exported):
    path, report = exported
    engine = OnnxRuntimeEngine(path)
    assert engine.input_names == INPUTS and engine.output_names == OUTPUTS
    shapes = {i.name: i.shape for i in engine.session.get_inputs()}
    assert all(all(isinstance(d, int) for d in shapes[name]) for name in INPUTS)
    assert report["shapes"]["keys"] == list(shapes["keys"])
    assert json.loads(path.with_suffix(".json").read_text()) == report


def test_cli_exports_and_refuses_what_it_cannot(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["export", "onnx", "--model", "teapot", "--out", str(tmp_path / "a.onnx")])
    assert result.exit_code == 2 and "--model 'teapot' is not exportable" in said(result.stderr)
    assert not (tmp_path / "a.onnx").exists()
    result = runner.invoke(app, ["export", "onnx", "--out", str(tmp_path / "s.onnx")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s.onnx").is_file() and "parity vs torch over 4 chunks: max abs error" in said(result.stderr)
    assert max(json.loads((tmp_path / "s.json").read_text())["parity_max_abs_error_per_chunk"]) <= 1e-4

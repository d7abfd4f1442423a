"""A folded (or pruned) world-model student still streams, exports with ONNX Runtime parity, and
its export report carries consistent compression numbers; bad ratios are refused naming --fold."""

from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.components.worldmodel.checkpoint import CHECKPOINT_ROOT, load_model
from genxr.deploy.export.compressed import compress_student
from genxr.deploy.export.student import export_student_step, steady_state
from tests.helpers.cli import said

RATIO = 0.3


@pytest.fixture(scope="module")
def shipped():
    return load_model(CHECKPOINT_ROOT / "student")[0]


@pytest.fixture(scope="module")
def folded(shipped, tmp_path_factory):
    model, compression = compress_student(shipped, RATIO, "fold")
    path = tmp_path_factory.mktemp("export_fold") / "student_step_folded.onnx"
    return model, compression, path, export_student_step(path, student=model, compression=compression)


def test_folding_removes_feed_forward_units_and_leaves_the_cache_shape(shipped, folded):
    model, compression, _, _ = folded
    hidden = {g.name: (g.before, g.after) for g in compression.groups}
    assert hidden["blocks.0.ff.net.0.proj"] == (512, math.floor(512 * (1 - RATIO)))
    assert model.blocks[0].ff.net[0].proj.out_features == math.floor(512 * (1 - RATIO))
    assert all(f"blocks.{i}.qkv" in compression.skipped for i in range(shipped.config.depth)), "heads are left whole"
    assert shipped.blocks[0].ff.net[0].proj.out_features == 512, "the shipped student is not modified"


def test_folded_student_streams_frames_past_a_full_cache(folded):
    model, _, _, _ = folded
    state = steady_state(seed=2, chunks=3, student=model)
    frames = [state.stream.step(chunk) for chunk in state.chunks]
    assert all(f.shape == (2, 64, 64, 3) and f.dtype == np.uint8 for f in frames)
    assert state.stream.cache.frames == model.config.sink_frames + model.config.window_frames
    assert state.stream.cache.keys[0].shape[1] == model.config.heads
    assert np.std(np.stack(frames).astype(np.float32)) > 1.0, "the frames are an image, not a constant"


def test_folded_export_matches_torch_and_reports_the_fold(folded):
    _, _, path, report = folded
    assert max(report["parity_max_abs_error_per_chunk"]) <= 1e-4
    recorded = json.loads(path.with_suffix(".json").read_text())
    assert recorded == report
    numbers = recorded["compression"]
    assert numbers["method"] == "fold" and numbers["ratio"] == RATIO
    assert numbers["params_after"] < numbers["params_before"] and numbers["macs_after"] < numbers["macs_before"]
    assert numbers["params_before"] - numbers["params_after"] == sum(
        p.numel() for p in load_model(CHECKPOINT_ROOT / "student")[0].parameters()) - sum(
        p.numel() for p in folded[0].parameters())
    graph = onnx.load(str(path)).graph
    onnx_params = sum(int(np.prod(t.dims)) for t in graph.initializer)
    assert onnx_params < numbers["params_before"], "the ONNX file holds the folded weights"
    assert report["shapes"]["keys"][2] == 4, "attention heads (and so the cache) keep their shape"


@pytest.mark.parametrize("ratio", ["1.5", "-0.1", "0.9"])
def test_bad_fold_ratio_is_refused_naming_the_flag_and_value(ratio, tmp_path):
    result = CliRunner().invoke(app, ["export", "onnx", "--fold", ratio, "--out", str(tmp_path / "s.onnx")])
    assert result.exit_code == 2
    message = said(result.stderr)
    assert f"--fold {float(ratio)}" in message
    assert not (tmp_path / "s.onnx").exists()
    if ratio == "0.9":
        assert "leaves zero" in message and "condition.skeleton" in message


def test_prune_needs_fold_and_exports_a_pruned_step(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["export", "onnx", "--prune", "--out", str(tmp_path / "p.onnx")])
    assert result.exit_code == 2 and "--prune needs --fold" in said(result.stderr)
    result = runner.invoke(app, ["export", "onnx", "--fold", "0.5", "--prune", "--out", str(tmp_path / "p.onnx")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "p.json").read_text())
    assert report["compression"]["method"] == "prune-l2" and report["compression"]["ratio"] == 0.5
    assert report["compression"]["param_reduction"] > 0.3
    assert max(report["parity_max_abs_error_per_chunk"]) <= 1e-4

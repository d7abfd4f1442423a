"""genxr bench avatar: stream and baseline measured on the same engine, per-engine keys, clear errors."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.components.avatar.checkpoint import save_checkpoint
from genxr.components.avatar.generator import GENERATOR_PRESETS, LatentGenerator
from genxr.components.avatar.stream import AvatarStream, WindowBaseline
from genxr.components.avatar.vae import VAE_PRESETS, MotionVAE
from genxr.evaluation.benchmarks.avatar import engine_pair, engines_headed_by, run
from tests.helpers.cli import said


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(1)
    generator = GENERATOR_PRESETS["tiny"]
    models = {"vae": MotionVAE(VAE_PRESETS["tiny"]), "generator": LatentGenerator(generator),
              "baseline": LatentGenerator(replace(generator, causal=False))}
    return save_checkpoint(tmp_path_factory.mktemp("avatar") / "tiny", models, {})


def test_torch_engine_reports_stream_and_baseline_of_the_checkpoint_it_was_given(tiny_checkpoint):
    result = run(seconds=1.0, engines=("torch",), checkpoint=tiny_checkpoint)
    measured = result["by_engine"]["torch"]
    assert result["engine"] == "torch" and set(result["by_engine"]) == {"torch"}
    assert result["stream_fps"] == measured["stream_fps"] > 0 and result["baseline_fps"] == measured["baseline_fps"] > 0
    assert result["speedup"] == measured["speedup"] > 0, "the headline figures are the first engine's"
    assert result["checkpoint"] == str(tiny_checkpoint) and result["seconds_streamed"] == 1.0
    assert result["frames_per_step"] == VAE_PRESETS["tiny"].stride
    assert result["window_tokens"] == GENERATOR_PRESETS["tiny"].transformer.window


def test_torch_pair_is_the_causal_stream_and_the_window_baseline(tiny_checkpoint):
    stream, baseline = engine_pair("torch", tiny_checkpoint, threads=1)
    assert type(stream) is AvatarStream and type(baseline) is WindowBaseline
    assert stream.generator.config.causal and not baseline.generator.config.causal


def test_engine_names_are_checked():
    assert engines_headed_by("onnxruntime") == ("onnxruntime", "torch")
    with pytest.raises(ValueError, match="engine 'tensorrt'"):
        engines_headed_by("tensorrt")
    with pytest.raises(ValueError, match="'tvm'"):
        run(engines=("torch", "tvm"))
    result = CliRunner().invoke(app, ["bench", "avatar", "--engine", "tensorrt"])
    assert result.exit_code == 2 and "engine 'tensorrt': choose from ['torch', 'onnxruntime']" in said(result.stderr)

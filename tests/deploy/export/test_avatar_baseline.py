"""The non-causal baseline's step at a fixed window: the same motion as WindowBaseline while the
window fills and after, ONNX Runtime parity, and clear errors for mismatched engines."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from genxr.components.avatar.checkpoint import load_checkpoint, save_checkpoint
from genxr.components.avatar.frames import AgentPlacement
from genxr.components.avatar.generator import GENERATOR_PRESETS, LatentGenerator
from genxr.components.avatar.stream import WindowBaseline
from genxr.components.avatar.vae import VAE_PRESETS, MotionVAE
from genxr.deploy.engines.base import TorchEngine
from genxr.deploy.export.avatar import conversation_chunks, motion_error
from genxr.deploy.export.avatar_baseline import (
    INPUTS,
    OUTPUTS,
    EngineWindowBaseline,
    WindowBaselineStep,
    baseline_onnx,
)


@pytest.fixture(scope="module")
def tiny() -> dict[str, torch.nn.Module]:
    """Untrained tiny models (generator window 16 chunks)."""
    torch.manual_seed(5)
    generator = GENERATOR_PRESETS["tiny"]
    return {"vae": MotionVAE(VAE_PRESETS["tiny"]).eval(), "generator": LatentGenerator(generator).eval(),
            "baseline": LatentGenerator(replace(generator, causal=False)).eval()}


def rollout(stream, chunks: int, seed: int = 2) -> list:
    placement = AgentPlacement()
    stream.reset(seed=seed, placement=placement)
    return [stream.step(pose, audio) for pose, audio in conversation_chunks(chunks, stream.stride, placement)]


def test_fixed_window_step_matches_window_baseline_while_filling_and_after(tiny):
    step = WindowBaselineStep(tiny["vae"], tiny["baseline"], euler_steps=2)
    window = step.spec().window
    engine_stream = EngineWindowBaseline(TorchEngine(step, INPUTS, OUTPUTS), step.spec())
    reference = WindowBaseline(tiny["vae"], tiny["baseline"], euler_steps=2)
    errors = [motion_error(a, b) for a, b in zip(rollout(reference, window + 4), rollout(engine_stream, window + 4))]
    assert len(errors) == window + 4 and max(errors) <= 1e-4
    assert engine_stream.filled == window


class _UnmaskedPadding(torch.nn.Module):
    """The step told that its window is always full: padded slots leak into attention."""

    def __init__(self, step: WindowBaselineStep) -> None:
        super().__init__()
        self.step = step

    def forward(self, *inputs):
        *rest, filled = inputs
        return self.step(*rest, torch.full_like(filled, self.step.spec().window))


def test_padding_that_is_not_masked_is_caught(tiny):
    step = WindowBaselineStep(tiny["vae"], tiny["baseline"], euler_steps=2)
    leaky = EngineWindowBaseline(TorchEngine(_UnmaskedPadding(step), INPUTS, OUTPUTS), step.spec())
    reference = WindowBaseline(tiny["vae"], tiny["baseline"], euler_steps=2)
    errors = [motion_error(a, b) for a, b in zip(rollout(reference, 4), rollout(leaky, 4))]
    assert max(errors) > 1e-3


def test_an_engine_of_another_step_is_refused(tiny):
    step = WindowBaselineStep(tiny["vae"], tiny["baseline"])
    with pytest.raises(ValueError, match="a baseline step needs"):
        EngineWindowBaseline(TorchEngine(step, INPUTS[:-1], OUTPUTS), step.spec())
    with pytest.raises(ValueError, match="non-causal generator"):
        WindowBaselineStep(tiny["vae"], tiny["generator"])


def test_onnx_export_is_cached_and_follows_window_baseline(tiny, tmp_path):
    checkpoint = save_checkpoint(tmp_path / "ckpt", tiny, {})
    path = baseline_onnx(checkpoint, folder=tmp_path / "cache")
    report = json.loads(path.with_suffix(".json").read_text())
    assert report["rollout"]["chunks"] > report["spec"]["window"]
    assert max(report["parity_onnxruntime_vs_window_baseline_per_chunk"]) <= 1e-4
    assert max(report["parity_fixed_shape_vs_window_baseline_per_chunk"]) <= 1e-4
    assert report["shapes"]["noise"] == [1, report["spec"]["window"], report["spec"]["latent_dim"]]
    mtime = path.stat().st_mtime_ns
    assert baseline_onnx(checkpoint, folder=tmp_path / "cache") == path and path.stat().st_mtime_ns == mtime
    onnx_stream = EngineWindowBaseline.from_onnx(path)
    saved, _ = load_checkpoint(checkpoint)  # float16 weights, as exported
    reference = WindowBaseline(saved["vae"], saved["baseline"])
    errors = [motion_error(a, b) for a, b in zip(rollout(reference, 6, seed=9), rollout(onnx_stream, 6, seed=9))]
    assert max(errors) <= 1e-4


def test_a_missing_report_is_a_clear_error(tmp_path):
    onnx_file = tmp_path / "step.onnx"
    onnx_file.write_bytes(b"")
    with pytest.raises(ValueError, match="not a baseline export report"):
        EngineWindowBaseline.from_onnx(onnx_file)

"""The avatar's chunk step on ring-buffer caches: the same motion as AvatarStream, static
shapes from the first chunk on, ONNX Runtime parity over a rollout past both ring wraps,
and clear errors for unwritable paths and corrupt files."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.components.avatar.frames import AgentPlacement
from genxr.components.avatar.generator import GENERATOR_PRESETS, LatentGenerator
from genxr.components.avatar.stream import AvatarStream, serve_request
from genxr.components.avatar.vae import VAE_PRESETS, MotionVAE
from genxr.deploy.engines.avatar import (
    INPUTS,
    OUTPUTS,
    STATE,
    AvatarChunkStep,
    EngineAvatarStream,
    ring_write,
    slot_positions,
)
from genxr.deploy.engines.base import EngineUnavailableError, OnnxRuntimeEngine, TorchEngine
from genxr.deploy.export.avatar import conversation_chunks, export_avatar_step, motion_error
from genxr.platform.messages import AudioChunk, AvatarRequest, Pose
from tests.helpers.cli import said


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The shipped avatar exported once through the CLI; its report."""
    path = tmp_path_factory.mktemp("export") / "avatar_step.onnx"
    result = CliRunner().invoke(app, ["export", "onnx", "--model", "avatar", "--out", str(path)])
    assert result.exit_code == 0, result.output
    assert "ONNX Runtime vs torch max abs error" in said(result.stderr)  # the summary, wrapped or not
    assert "[torch.onnx]" not in result.stdout  # the exporter's progress lines stay off stdout (--json callers)
    return path, json.loads(path.with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def tiny() -> tuple[MotionVAE, LatentGenerator]:
    """Untrained tiny models with rings that wrap early (generator 15 tokens, decoder 39)."""
    torch.manual_seed(3)
    return MotionVAE(VAE_PRESETS["tiny"]).eval(), LatentGenerator(GENERATOR_PRESETS["tiny"]).eval()


def test_slot_positions_and_ring_write_match_a_trimmed_list():
    capacity, history = 7, []
    ring = torch.zeros(1, 1, 1, capacity, 1)
    for first in range(0, 30, 3):  # three tokens a step, as a list cache trimmed to `capacity` would keep them
        new = torch.arange(first, first + 3, dtype=torch.float32).reshape(1, 1, 1, 3, 1)
        ring = ring_write(ring, new, torch.tensor([first]))
        history = (history + [first, first + 1, first + 2])[-capacity:]
        held = slot_positions(torch.tensor([first + 3]), capacity).tolist()
        assert sorted(t for t in held if t >= 0) == history
        assert all(value == t for value, t in zip(ring.flatten().tolist(), held) if t >= 0)
    assert slot_positions(torch.tensor([2]), capacity).tolist() == [0, 1, -5, -4, -3, -2, -1]


def _rollout(streams, chunks: int, guidance_scale: float = 1.5):
    placement = AgentPlacement()
    for stream in streams:
        stream.reset(seed=11, guidance_scale=guidance_scale, placement=placement)
    for pose, audio in conversation_chunks(chunks, streams[0].stride, placement):
        yield [stream.step(pose, audio) for stream in streams]


def test_engine_stream_matches_avatar_stream_past_both_ring_wraps(tiny):
    vae, generator = tiny
    step = AvatarChunkStep(vae, generator, euler_steps=2)
    fixed = EngineAvatarStream(TorchEngine(step, INPUTS, OUTPUTS), step.spec())
    original = AvatarStream(vae, generator, euler_steps=2)
    assert step.spec().state_shapes["generator_keys"][3] == 15 and step.spec().state_shapes["decoder_keys"][3] == 39
    errors = [motion_error(a, b) for a, b in _rollout([original, fixed], chunks=20)]  # wraps at chunks 16 and 7
    assert max(errors) <= 1e-4, errors
    assert fixed.state["decoder_keys"].shape == step.spec().state_shapes["decoder_keys"]


def test_a_ring_that_forgets_the_position_is_caught(tiny):
    """The parity check has teeth: a stream that always claims chunk 0 diverges from AvatarStream."""
    vae, generator = tiny
    step = AvatarChunkStep(vae, generator, euler_steps=2)
    broken = EngineAvatarStream(TorchEngine(step, INPUTS, OUTPUTS), step.spec())
    broken.feeds = lambda pose, audio=(), feeds=broken.feeds: {**feeds(pose, audio), "chunk_index": np.zeros(1, np.int64)}
    errors = [motion_error(a, b) for a, b in _rollout([AvatarStream(vae, generator, euler_steps=2), broken], chunks=4)]
    assert errors[0] <= 1e-4 and max(errors[1:]) > 1e-2


def test_serve_request_drives_the_engine_stream(tiny):
    vae, generator = tiny
    step = AvatarChunkStep(vae, generator, euler_steps=1)
    stream = EngineAvatarStream(TorchEngine(step, INPUTS, OUTPUTS), step.spec())
    reference = AvatarStream(vae, generator, euler_steps=1)
    audio = AudioChunk(speaker="agent", start_time_ns=0, sample_rate_hz=48_000,
                       samples=(0.2 * np.sin(np.arange(6400) / 9.0)).astype(np.float32))
    request = AvatarRequest(session_id="s", request_id=3, time_ns=0, user_head=Pose(position=(0.4, 1.7, 0.2)),
                            agent_audio=audio, eye_contact=2.5)
    motions = [serve_request(s, request) for s in (stream, reference)]
    assert stream.guidance_scale == 2.5 and motions[0].request_id == 3
    assert np.abs(motions[0].rotations_6d - motions[1].rotations_6d).max() <= 1e-5


def test_onnx_parity_over_a_rollout_past_both_ring_wraps(exported):
    _, report = exported
    rollout = report["rollout"]
    assert rollout["chunks"] >= 12 and rollout["chunks"] > max(rollout["generator_ring_wraps_at_chunk"],
                                                                 rollout["decoder_ring_wraps_at_chunk"])
    per_call = report["parity_onnxruntime_vs_torch_per_chunk"]
    assert len(per_call) == rollout["chunks"] and max(per_call) <= 1e-4
    assert max(report["parity_fixed_shape_vs_stream_per_chunk"]) <= 1e-3  # free-running: rounding compounds
    drift, one_ulp = report["drift_onnxruntime_vs_torch_per_chunk"], report["drift_torch_after_one_ulp_noise_change_per_chunk"]
    assert max(drift) <= 5e-3 and max(drift) <= 10 * max(one_ulp)  # no worse than torch's own rounding sensitivity


def test_the_onnx_step_has_static_shapes_and_state_outputs_match_inputs(exported):
    path, report = exported
    engine = OnnxRuntimeEngine(path)
    assert engine.input_names == INPUTS and engine.output_names == OUTPUTS
    inputs = {i.name: i.shape for i in engine.session.get_inputs()}
    outputs = {o.name: o.shape for o in engine.session.get_outputs()}
    assert all(isinstance(d, int) for shape in (*inputs.values(), *outputs.values()) for d in shape)
    assert all(inputs[name] == outputs[output] for name, output in STATE.items())
    assert {name: list(shape) for name, shape in inputs.items()} == report["shapes"]
    assert report["opset"] >= 17 and sorted(p.name for p in path.parent.iterdir()) == ["avatar_step.json", "avatar_step.onnx"]


def test_engine_stream_from_onnx_follows_the_shipped_avatar(exported):
    from genxr.components.avatar.checkpoint import load_checkpoint, shipped_checkpoint

    path, _ = exported
    models, _ = load_checkpoint(shipped_checkpoint())
    streams = [AvatarStream(models["vae"], models["generator"]), EngineAvatarStream.from_onnx(path)]
    errors = [motion_error(a, b) for a, b in _rollout(streams, chunks=6)]
    assert max(errors) <= 1e-4, errors


def test_corrupt_or_unreported_onnx_files_are_refused(exported, tmp_path):
    path, _ = exported
    corrupt = tmp_path / "avatar_step.onnx"
    corrupt.write_bytes(path.read_bytes()[: 4096])
    corrupt.with_suffix(".json").write_text(path.with_suffix(".json").read_text())
    with pytest.raises(EngineUnavailableError, match="avatar_step.onnx"):
        EngineAvatarStream.from_onnx(corrupt)
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(path.read_bytes())
    with pytest.raises(FileNotFoundError, match="lone.json"):
        EngineAvatarStream.from_onnx(lone)
    lone.with_suffix(".json").write_text("{}")
    with pytest.raises(ValueError, match="not an avatar export report"):
        EngineAvatarStream.from_onnx(lone)


def test_an_engine_of_another_model_is_refused(tiny):
    step = AvatarChunkStep(*tiny)
    with pytest.raises(ValueError, match="an avatar step needs"):
        EngineAvatarStream(TorchEngine(step, ("latents",), ("velocity",)), step.spec())
    with pytest.raises(ValueError, match="causal"):
        AvatarChunkStep(tiny[0], LatentGenerator(replace(GENERATOR_PRESETS["tiny"], causal=False)))


def test_unwritable_paths_and_short_rollouts_are_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot write the export to"):
        export_avatar_step(blocker / "avatar_step.onnx")
    with pytest.raises(ValueError, match="chunks=12 is too short"):
        export_avatar_step(tmp_path / "a.onnx", chunks=12)


def test_cli_names_the_exportable_models(tmp_path):
    result = CliRunner().invoke(app, ["export", "onnx", "--model", "vae", "--out", str(tmp_path / "v.onnx")])
    assert result.exit_code == 2 and "--model 'vae' is not exportable; choose one of student, decoder, avatar" in said(
        result.stderr)
    result = CliRunner().invoke(app, ["export", "onnx", "--model", "avatar", "--fold", "0.3", "--out", str(tmp_path / "a.onnx")])
    assert result.exit_code == 2 and "--fold/--prune apply to the student only" in said(result.stderr)
    assert not (tmp_path / "a.onnx").exists()

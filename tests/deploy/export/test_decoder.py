"""The world model's frame decoder exports to ONNX with a dynamic batch; ONNX Runtime decodes
real (encoded simulator) latents like torch, to the same uint8 frames the stream hands on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.components.worldmodel.checkpoint import CHECKPOINT_ROOT, load_model
from genxr.deploy.engines.base import EngineUnavailableError, OnnxRuntimeEngine
from genxr.deploy.export.decoder import INPUTS, OUTPUTS, export_frame_decoder, simulator_frames
from tests.helpers.cli import said


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The shipped codec's decoder exported once through the CLI; its report."""
    path = tmp_path_factory.mktemp("export") / "frame_decoder.onnx"
    result = CliRunner().invoke(app, ["export", "onnx", "--model", "decoder", "--out", str(path)])
    assert result.exit_code == 0, result.output
    assert "uint8 levels (frames), dynamic batch" in said(result.stderr)
    return path, json.loads(path.with_suffix(".json").read_text())


def test_parity_on_encoded_simulator_frames(exported):
    _, report = exported
    assert set(report["parity_by_batch"]) == {"1", "8"}
    for parity in report["parity_by_batch"].values():
        assert parity["image_max_abs_error"] <= 1e-5
        assert parity["frames_max_level_difference"] <= 1 and parity["frames_fraction_differing"] <= 1e-3


def test_any_batch_decodes_to_the_streams_uint8_frames(exported):
    path, report = exported
    engine = OnnxRuntimeEngine(path)
    assert engine.input_names == INPUTS and engine.output_names == OUTPUTS
    assert report["shapes"]["latents"][0] == "frames" and report["dtypes"]["frames"] == "uint8" and report["opset"] >= 17
    codec, _ = load_model(CHECKPOINT_ROOT / "codec")
    images = torch.from_numpy(simulator_frames(3, seed=4)).permute(0, 3, 1, 2).float() / 255.0
    latents = codec.encode(images).contiguous()
    decoded = engine.run({"latents": latents.numpy()})
    with torch.no_grad():
        expected = (codec.decode(latents).permute(0, 2, 3, 1) * 255.0).round().to(torch.uint8).numpy()
    assert decoded["frames"].shape == (3, 64, 64, 3) and decoded["frames"].dtype == np.uint8
    assert np.abs(decoded["frames"].astype(int) - expected.astype(int)).max() <= 1
    assert decoded["image"].min() >= 0.0 and decoded["image"].max() <= 1.0


def test_corrupt_file_and_unwritable_path_are_refused(exported, tmp_path):
    path, _ = exported
    corrupt = tmp_path / "frame_decoder.onnx"
    corrupt.write_bytes(path.read_bytes()[:200])
    with pytest.raises(EngineUnavailableError, match="frame_decoder.onnx"):
        OnnxRuntimeEngine(corrupt)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot write the export to"):
        export_frame_decoder(blocker / "d.onnx")
    with pytest.raises(ValueError, match="frames must be >= 2"):
        export_frame_decoder(tmp_path / "d.onnx", frames=1)

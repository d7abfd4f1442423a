"""Engines behind one interface: ONNX Runtime matches eager torch on an exported step,
runs with explicit threads and no spinning, reports the providers it got; TensorRT fails
with a clear message without a GPU and make_engine falls back to ONNX Runtime on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genxr.deploy.engines.base import (
    EngineUnavailableError,
    OnnxRuntimeEngine,
    TensorRTEngine,
    TorchEngine,
    make_engine,
    tensorrt_status,
)

GPU = tensorrt_status()[0]


class RingStep(torch.nn.Module):
    """A streaming step with state as plain tensors: writes x into a ring buffer at index pos
    and returns the attention-free mix of the buffer (shapes stay static)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(8, 8)

    def forward(self, x, ring, pos):  # (1, 8), (4, 8), (1,) int64
        slot = torch.nn.functional.one_hot(pos % 4, 4).to(x.dtype).T  # (4, 1)
        ring = ring * (1 - slot) + slot * self.proj(x)
        return ring.mean(0, keepdim=True).tanh(), ring, pos + 1


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    module = RingStep().eval()
    path = tmp_path_factory.mktemp("onnx") / "ring_step.onnx"
    example = (torch.randn(1, 8), torch.zeros(4, 8), torch.zeros(1, dtype=torch.int64))
    torch.onnx.export(module, example, str(path), input_names=["x", "ring", "pos"],
                      output_names=["y", "ring_out", "pos_out"], dynamo=True)
    return module, path


def rollout(engine, steps: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    ring, pos, outs = np.zeros((4, 8), np.float32), np.zeros(1, np.int64), []
    for _ in range(steps):
        result = engine.run({"x": rng.normal(size=(1, 8)).astype(np.float32), "ring": ring, "pos": pos})
        ring, pos = result["ring_out"], result["pos_out"]
        outs.append(result["y"])
    return outs


def test_onnxruntime_matches_torch_over_a_stateful_rollout(exported):
    module, path = exported
    reference = rollout(TorchEngine(module, ("x", "ring", "pos"), ("y", "ring_out", "pos_out")))
    ort = OnnxRuntimeEngine(path, threads=1)
    assert ort.providers[0] == "CPUExecutionProvider"
    got = rollout(ort)
    assert max(float(np.abs(a - b).max()) for a, b in zip(reference, got)) <= 1e-5


def test_onnxruntime_session_does_not_spin(exported):
    engine = OnnxRuntimeEngine(exported[1], threads=1)
    config = engine.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")
    assert config == "0"


def test_missing_inputs_and_files_are_named(exported, tmp_path):
    engine = OnnxRuntimeEngine(exported[1])
    with pytest.raises(ValueError, match=r"missing \['pos'\]"):
        engine.run({"x": np.zeros((1, 8), np.float32), "ring": np.zeros((4, 8), np.float32)})
    with pytest.raises(FileNotFoundError, match="genxr export onnx"):
        OnnxRuntimeEngine(tmp_path / "absent.onnx")


def test_corrupt_onnx_file_is_a_clear_error(tmp_path):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(b"\x08\x07 not a model")
    with pytest.raises(EngineUnavailableError, match="ONNX Runtime cannot load"):
        OnnxRuntimeEngine(path)


def test_asking_for_a_provider_the_session_does_not_get_is_an_error(exported):
    with pytest.raises(EngineUnavailableError), pytest.warns(UserWarning, match="not in available provider"):
        OnnxRuntimeEngine(exported[1], providers=("CUDAExecutionProvider", "CPUExecutionProvider"))


@pytest.mark.skipif(GPU, reason="this machine has a usable NVIDIA GPU: TensorRT does not fail here")
def test_tensorrt_without_a_gpu_names_what_is_missing_and_make_engine_falls_back(exported):
    with pytest.raises(EngineUnavailableError, match="TensorRT engine unavailable"):
        TensorRTEngine(exported[1])
    with pytest.warns(RuntimeWarning, match="falling back to ONNX Runtime on the CPU"):
        engine = make_engine("tensorrt", onnx_path=exported[1])
    assert isinstance(engine, OnnxRuntimeEngine) and engine.providers[0] == "CPUExecutionProvider"


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason=f"TensorRT path needs an NVIDIA GPU: {tensorrt_status()[1]}")
def test_tensorrt_matches_torch_on_a_gpu(exported):
    module, path = exported
    reference = rollout(TorchEngine(module, ("x", "ring", "pos"), ("y", "ring_out", "pos_out")))
    got = rollout(TensorRTEngine(path, fp16=False))
    assert max(float(np.abs(a - b).max()) for a, b in zip(reference, got)) <= 1e-3


def test_unknown_engine_and_missing_arguments():
    with pytest.raises(ValueError, match="unknown engine 'tpu'"):
        make_engine("tpu", onnx_path="x.onnx")
    with pytest.raises(ValueError, match="needs the module"):
        make_engine("torch")
    with pytest.raises(ValueError, match="needs an ONNX file"):
        make_engine("onnxruntime")

"""Every inference engine keeps the :class:`~genxr.deploy.engines.base.Engine` contract.

One suite, run against eager torch, ONNX Runtime and TensorRT (the TensorRT case is skipped,
with the reason, where no NVIDIA GPU / tensorrt is usable) on a tiny streaming step built
here: a linear layer mixed into a ring buffer at an int64 position, the shape of genxr's
exported steps (state in, state out, as plain tensors), exported with ``torch.onnx.export``.

The contract, from :mod:`genxr.deploy.engines.base`:

* an engine has a ``name`` (its kind), and the model's ``input_names`` and ``output_names``;
* ``run({input_name: array})`` gives ``{output_name: numpy array}`` with the model's dtypes
  (float32 unless the model says otherwise: here int64 for the position) and shapes, equal to
  the eager module's within the engine's tolerance, step after step with the state fed back;
* the engine holds no state of its own between runs (the state passes through the tensors),
  and one run's outputs are not overwritten by the next;
* inputs must hold every input name and no other (a ValueError naming them); an input the
  model cannot take (wrong dtype or shape) is an error, not a silently wrong answer; any
  numpy layout (strided views, Fortran order, read-only arrays) is taken, and left unchanged;
* :func:`make_engine` builds the engine by its name.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genxr.deploy.engines.base import (
    Engine,
    OnnxRuntimeEngine,
    TensorRTEngine,
    TorchEngine,
    describe_engine,
    make_engine,
    tensorrt_status,
)

INPUTS = ("x", "ring", "pos")
OUTPUTS = ("y", "ring_out", "pos_out")
SHAPES = {"y": (1, 8), "ring_out": (4, 8), "pos_out": (1,)}
DTYPES = {"y": np.float32, "ring_out": np.float32, "pos_out": np.int64}
TOLERANCE = {"torch": 0.0, "onnxruntime": 1e-5, "tensorrt": 1e-3}
"""Largest difference from the eager module over a rollout (TensorRT may pick other kernels)."""
GPU, NO_GPU_REASON = tensorrt_status()


class RingMix(torch.nn.Module):
    """One streaming step: writes proj(x) into slot pos % 4 of the ring and returns the ring's
    mean (tanh), the new ring and pos + 1. Static shapes, state as plain tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(8, 8)

    def forward(self, x, ring, pos):  # (1, 8) float32, (4, 8) float32, (1,) int64
        slot = torch.nn.functional.one_hot(pos % 4, 4).to(x.dtype).T  # (4, 1)
        ring = ring * (1 - slot) + slot * self.proj(x)
        return ring.mean(0, keepdim=True).tanh(), ring, pos + 1


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(0)
    module = RingMix().eval()
    path = tmp_path_factory.mktemp("engines") / "ring_mix.onnx"
    example = (torch.randn(1, 8), torch.zeros(4, 8), torch.zeros(1, dtype=torch.int64))
    torch.onnx.export(module, example, str(path), input_names=list(INPUTS), output_names=list(OUTPUTS), dynamo=True)
    return module, path


BUILDERS = {
    "torch": lambda module, path: TorchEngine(module, INPUTS, OUTPUTS),
    "onnxruntime": lambda module, path: OnnxRuntimeEngine(path, threads=1),
    "tensorrt": lambda module, path: TensorRTEngine(path, fp16=False),
}
CLASSES = {"torch": TorchEngine, "onnxruntime": OnnxRuntimeEngine, "tensorrt": TensorRTEngine}


@pytest.fixture(scope="module", params=[
    pytest.param("torch", id="torch"),
    pytest.param("onnxruntime", id="onnxruntime"),
    pytest.param("tensorrt", id="tensorrt", marks=[
        pytest.mark.gpu, pytest.mark.skipif(not GPU, reason=f"TensorRT needs an NVIDIA GPU: {NO_GPU_REASON}")]),
])
def kind(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def engine(kind, model) -> Engine:
    return BUILDERS[kind](*model)


def step_inputs(rng: np.random.Generator, ring=None, pos=None) -> dict[str, np.ndarray]:
    return {"x": rng.normal(size=(1, 8)).astype(np.float32),
            "ring": np.zeros((4, 8), np.float32) if ring is None else ring,
            "pos": np.zeros(1, np.int64) if pos is None else pos}


def eager(module, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The module called directly (not through an engine): the reference."""
    with torch.no_grad():
        outputs = module(*(torch.from_numpy(np.array(inputs[name])) for name in INPUTS))
    return {name: out.numpy() for name, out in zip(OUTPUTS, outputs)}


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray], atol: float) -> None:
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=atol, err_msg=name)


def test_is_an_engine_named_by_its_kind_with_the_models_names(engine, kind):
    assert isinstance(engine, Engine)
    assert engine.name.split(":")[0] == kind
    assert tuple(engine.input_names) == INPUTS and tuple(engine.output_names) == OUTPUTS
    assert describe_engine(engine).startswith(engine.name)


def test_run_gives_numpy_outputs_by_name_with_the_models_dtypes_and_shapes(engine):
    result = engine.run(step_inputs(np.random.default_rng(0)))
    assert set(result) == set(OUTPUTS)
    for name, value in result.items():
        assert isinstance(value, np.ndarray), f"{name} is a {type(value).__name__}, not a numpy array"
        assert value.dtype == DTYPES[name] and value.shape == SHAPES[name], (name, value.dtype, value.shape)


def test_outputs_match_the_eager_module_over_a_stateful_rollout(engine, kind, model):
    module, _ = model
    rng = np.random.default_rng(1)
    ring, pos = np.zeros((4, 8), np.float32), np.zeros(1, np.int64)
    ref_ring, ref_pos = ring, pos
    for _ in range(6):
        x = rng.normal(size=(1, 8)).astype(np.float32)
        got = engine.run({"x": x, "ring": ring, "pos": pos})
        want = eager(module, {"x": x, "ring": ref_ring, "pos": ref_pos})
        assert_same(got, want, TOLERANCE[kind])
        ring, pos = got["ring_out"], got["pos_out"]  # the engine's own state, fed back
        ref_ring, ref_pos = want["ring_out"], want["pos_out"]
    assert int(pos[0]) == 6 and np.abs(ring).min() > 0, "every slot of the ring was written"


def test_the_engine_keeps_no_state_and_a_run_overwrites_neither_its_inputs_nor_earlier_outputs(engine, kind):
    rng = np.random.default_rng(2)
    first_inputs, other_inputs = step_inputs(rng), step_inputs(rng)
    first_inputs["ring"] = rng.normal(size=(4, 8)).astype(np.float32)
    sent = {name: value.copy() for name, value in first_inputs.items()}
    first = engine.run(first_inputs)
    assert_same(first_inputs, sent, 0.0)  # writable inputs are not written to either
    kept = {name: value.copy() for name, value in first.items()}
    other = engine.run(other_inputs)
    again = engine.run(first_inputs)
    assert_same(first, kept, 0.0)
    assert_same(again, kept, max(TOLERANCE[kind], 1e-6))
    assert not np.allclose(other["y"], kept["y"]), "different inputs give different outputs"


def test_inputs_must_hold_every_input_name_and_no_other(engine):
    inputs = step_inputs(np.random.default_rng(3))
    with pytest.raises(ValueError, match=r"missing \['pos'\]"):
        engine.run({name: value for name, value in inputs.items() if name != "pos"})
    with pytest.raises(ValueError, match=r"unexpected \['extra'\]"):
        engine.run({**inputs, "extra": np.zeros(1, np.float32)})


@pytest.mark.parametrize("name, bad", [
    ("x", np.zeros((1, 8), np.float64)),
    ("pos", np.zeros(1, np.int32)),
    ("x", np.zeros((2, 8), np.float32)),
    ("ring", np.zeros((3, 8), np.float32)),
], ids=["float64-x", "int32-pos", "x-of-2-rows", "ring-of-3-slots"])
def test_an_input_the_model_cannot_take_is_an_error_not_a_wrong_answer(engine, name, bad):
    inputs = step_inputs(np.random.default_rng(4))
    with pytest.raises(Exception) as raised:  # the interface names no type: torch, ORT and TensorRT each have theirs
        engine.run({**inputs, name: bad})
    assert not isinstance(raised.value, (KeyboardInterrupt, SystemExit))


def test_any_numpy_layout_is_taken_and_left_unchanged(engine, kind):
    contiguous = step_inputs(np.random.default_rng(5))
    contiguous["ring"] = np.random.default_rng(6).normal(size=(4, 8)).astype(np.float32)
    contiguous["pos"] = np.array([2], np.int64)
    wide = np.zeros((1, 16), np.float32)
    wide[:, ::2] = contiguous["x"]
    laid_out = {"x": wide[:, ::2], "ring": np.asfortranarray(contiguous["ring"]), "pos": contiguous["pos"].copy()}
    assert not laid_out["x"].flags.c_contiguous and not laid_out["ring"].flags.c_contiguous
    for value in laid_out.values():
        value.flags.writeable = False  # as arrays taken from a bus message are
    before = {name: value.copy() for name, value in laid_out.items()}
    assert_same(engine.run(laid_out), engine.run(contiguous), max(TOLERANCE[kind], 1e-6))
    assert_same(laid_out, before, 0.0)


def test_make_engine_builds_it_by_name(kind, model):
    module, path = model
    built = make_engine(kind, onnx_path=path, module=module, input_names=INPUTS, output_names=OUTPUTS, fp16=False)
    assert type(built) is CLASSES[kind]
    assert tuple(built.input_names) == INPUTS and tuple(built.output_names) == OUTPUTS

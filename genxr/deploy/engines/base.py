"""Inference engines behind one interface: eager torch, ONNX Runtime, TensorRT.

An :class:`Engine` runs one exported step: ``run({input_name: array}) -> {output_name:
array}`` with numpy arrays in and out (float32 unless the model says otherwise), so a
streaming model's state (a KV cache ring buffer, a position index) passes through as plain
tensors and the caller does not care which engine runs.

* :class:`TorchEngine` - the eager module (the reference for parity tests).
* :class:`OnnxRuntimeEngine` - ONNX Runtime with explicit threads and no spinning (a
  spinning thread pool steals the core the frame loop needs on a 2-core machine). It checks
  the providers the session really got: onnxruntime-gpu silently falls back to CPU.
* :class:`TensorRTEngine` - builds an engine from the ONNX file with the ``tensorrt`` Python
  API (FP16 where the builder supports it) and runs it on CUDA through torch tensors.
  TensorRT 10.x has ``BuilderFlag.FP16``; 11.x builds strongly typed networks and removed
  it, so for 11.x the ONNX graph must already be FP16 (``fp16=True`` then fails with that
  explanation instead of silently building FP32). Without an NVIDIA GPU it raises
  :class:`EngineUnavailableError` naming what is missing.

:func:`make_engine` picks one by name and falls back from TensorRT to ONNX Runtime on the
CPU with a warning when TensorRT cannot run here.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

ENGINES = ("torch", "onnxruntime", "tensorrt")
"""Engine names, in order of preference on a machine with a GPU."""

class EngineUnavailableError(RuntimeError):
    """The engine cannot run on this machine; the message says what is missing."""


class Engine(ABC):
    """One exported model step: named numpy inputs -> named numpy outputs."""

    name: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    @abstractmethod
    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the step; ``inputs`` must hold every name in ``input_names``."""

    def _check_inputs(self, inputs: dict[str, np.ndarray]) -> None:
        missing = set(self.input_names) - set(inputs)
        extra = set(inputs) - set(self.input_names)
        if missing or extra:
            raise ValueError(f"{self.name} engine expects inputs {list(self.input_names)}; "
                             f"missing {sorted(missing)}, unexpected {sorted(extra)}")


class TorchEngine(Engine):
    """The eager torch module; ``module(*inputs)`` returns a tensor or a tuple in ``output_names`` order."""

    name = "torch"

    def __init__(self, module: Any, input_names: tuple[str, ...], output_names: tuple[str, ...]) -> None:
        self.module = module.eval()
        self.input_names, self.output_names = tuple(input_names), tuple(output_names)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        self._check_inputs(inputs)
        with torch.inference_mode():
            outputs = self.module(*(torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in self.input_names))
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        return {name: out.numpy() for name, out in zip(self.output_names, outputs)}


class OnnxRuntimeEngine(Engine):
    """ONNX Runtime session over ``path`` with ``providers`` (first one required) and explicit threads."""

    def __init__(self, path: str | os.PathLike[str], *, threads: int = 1, allow_spinning: bool = False,
                 providers: tuple[str, ...] = ("CPUExecutionProvider",),
                 provider_options: tuple[dict[str, Any], ...] | None = None) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file {str(path)!r} does not exist; export it with `genxr export onnx`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=list(providers),
                                                provider_options=list(provider_options) if provider_options else None)
        except Exception as err:  # ORT raises its own exception types for corrupt models and bad providers
            raise EngineUnavailableError(f"ONNX Runtime cannot load {str(path)!r} with {list(providers)}: {err}") from err
        got = self.session.get_providers()
        if got[0] != providers[0]:
            raise EngineUnavailableError(f"asked ONNX Runtime for {providers[0]} but the session got {got}")
        self.providers = tuple(got)
        self.name = "onnxruntime" if providers[0] == "CPUExecutionProvider" else f"onnxruntime:{providers[0]}"
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.output_names = tuple(o.name for o in self.session.get_outputs())

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check_inputs(inputs)
        outputs = self.session.run(list(self.output_names), {n: np.ascontiguousarray(inputs[n]) for n in self.input_names})
        return dict(zip(self.output_names, outputs))


def tensorrt_status() -> tuple[bool, str]:
    """(usable, why not): TensorRT needs the ``tensorrt`` package and a CUDA device visible to torch."""
    try:
        import tensorrt
    except ImportError:
        return False, "the tensorrt package is not installed (pip install -e '.[gpu]' on a machine with an NVIDIA GPU)"
    try:
        import torch

        cuda = torch.cuda.is_available()
    except Exception as err:  # a broken CUDA install surfaces as various errors
        return False, f"torch.cuda failed: {err}"
    if not cuda:
        return False, f"tensorrt {tensorrt.__version__} is installed but no NVIDIA GPU / CUDA device is visible"
    return True, ""


class TensorRTEngine(Engine):
    """A TensorRT engine built from an ONNX file (see module docstring); GPU only."""

    name = "tensorrt"

    def __init__(self, path: str | os.PathLike[str], *, fp16: bool = True, workspace_mb: int = 1024) -> None:
        usable, why = tensorrt_status()
        if not usable:
            raise EngineUnavailableError(f"TensorRT engine unavailable: {why}")
        import tensorrt as trt
        import torch

        self._torch = torch
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        major = int(trt.__version__.split(".")[0])
        network = builder.create_network(0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(Path(path).read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise EngineUnavailableError(f"TensorRT cannot parse {str(path)!r}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
        if fp16:
            if not hasattr(trt.BuilderFlag, "FP16"):
                raise EngineUnavailableError(
                    f"tensorrt {trt.__version__} builds strongly typed networks (no BuilderFlag.FP16): "
                    "convert the ONNX graph to FP16 first, or pass fp16=False")
            if builder.platform_has_fast_fp16:
                config.set_flag(trt.BuilderFlag.FP16)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise EngineUnavailableError(f"TensorRT failed to build an engine from {str(path)!r}")
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self._dtypes = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
                        trt.int64: torch.int64, trt.bool: torch.bool}
        self.input_names = tuple(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output_names = tuple(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        self._check_inputs(inputs)
        device_inputs = {n: torch.from_numpy(np.ascontiguousarray(inputs[n])).cuda() for n in self.input_names}
        for name, tensor in device_inputs.items():
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        outputs = {}
        for name in self.output_names:
            shape = tuple(self.context.get_tensor_shape(name))
            outputs[name] = torch.empty(shape, dtype=self._dtypes[self.engine.get_tensor_dtype(name)], device="cuda")
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        stream.synchronize()
        return {name: (tensor.float() if tensor.is_floating_point() else tensor).cpu().numpy()
                for name, tensor in outputs.items()}


def make_engine(kind: str, *, onnx_path: str | os.PathLike[str] | None = None, module: Any = None,
                input_names: tuple[str, ...] = (), output_names: tuple[str, ...] = (), threads: int = 1,
                fp16: bool = True) -> Engine:
    """The engine named ``kind`` ("torch", "onnxruntime", "tensorrt"); TensorRT falls back to
    ONNX Runtime on the CPU with a warning when it cannot run here."""
    if kind == "torch":
        if module is None:
            raise ValueError("the torch engine needs the module")
        return TorchEngine(module, input_names, output_names)
    if onnx_path is None:
        raise ValueError(f"the {kind} engine needs an ONNX file (onnx_path)")
    if kind == "onnxruntime":
        return OnnxRuntimeEngine(onnx_path, threads=threads)
    if kind == "tensorrt":
        try:
            return TensorRTEngine(onnx_path, fp16=fp16)
        except EngineUnavailableError as err:
            warnings.warn(f"{err}; falling back to ONNX Runtime on the CPU", RuntimeWarning, stacklevel=2)
            return OnnxRuntimeEngine(onnx_path, threads=threads)
    raise ValueError(f"unknown engine {kind!r}; known: torch, onnxruntime, tensorrt")


def default_engine() -> str:
    """``onnxruntime`` where it is importable, else ``torch``."""
    return "onnxruntime" if importlib.util.find_spec("onnxruntime") is not None else "torch"


def check_engine_name(engine: str) -> str:
    """``engine`` if it is one of :data:`ENGINES`; a ValueError naming the value otherwise."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    return engine


def describe_engine(engine: Engine | None) -> str:
    """``torch``, or the engine's name and the providers its session really got."""
    if engine is None:
        return "torch"
    providers = getattr(engine, "providers", None)
    return engine.name if not providers else f"{engine.name}[{','.join(providers)}]"

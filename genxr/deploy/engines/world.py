"""The world-model student with its steady-state chunk step run by an engine.

:class:`EngineStudentWorld` is :class:`~genxr.components.worldmodel.service.StudentWorld`
(same pacing and reset policy, same ``WorldFrameRequest -> WorldFrame`` contract) whose
stream runs the student's chunk step through an :class:`~genxr.deploy.engines.base.Engine`
(``torch``, ``onnxruntime`` or ``tensorrt``, see :func:`~genxr.deploy.engines.base.make_engine`).
Its frames carry the engine that really ran in ``WorldFrame.model``, e.g.
``worldmodel-student@onnxruntime[CPUExecutionProvider]`` (a TensorRT request that fell back
to ONNX Runtime on the CPU says so).

Which steps go to the engine (:class:`EngineChunkStep`): the exported step
(:mod:`genxr.deploy.export.student`) is the steady state - the cache holds the sink frame and a
full window, and the previous chunk's clean output comes in with the next chunk's first
denoising step (the stream's fused step). The anchor write, the first chunks of a stream
(cache still filling) and, when a stream takes more than one Euler step, its later steps
run in torch; with the default single step every steady-state forward runs in the engine,
which carries the cache as two stacked tensors (L, 1, heads, T, head_dim).

The ONNX file is exported once per student checkpoint into the cache folder
(:mod:`genxr.deploy.export.cache`: ``~/.cache/genxr/onnx`` by default) named by the
checkpoint's content hash, and reused by every later replica or session; a cached file
that does not load as ONNX, or whose inputs are not the step's, is re-exported with a
warning.

Parity (``tests/deploy/engines/test_world.py``): ONNX Runtime against the torch stream over
four steady-state chunks, each carrying its own cache forward: decoded frames differ by at
most 1 of 255 per pixel (fp32 step error ~2e-6, see ``docs/deploy.md``).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genxr.components.worldmodel.checkpoint import CHECKPOINT_ROOT
from genxr.components.worldmodel.conditioning import Tracking
from genxr.components.worldmodel.dit import KVCache, VideoDiT
from genxr.components.worldmodel.service import (
    MODEL_NAME,
    StudentWorld,
    StudentWorldConfig,
)
from genxr.deploy.engines.base import Engine, make_engine
from genxr.deploy.export.student import INPUTS, prior_input
from genxr.deploy.export.cache import cached_onnx, check_onnx, content_hash
from genxr.platform.messages import WorldFrame, WorldFrameRequest
from genxr.deploy.engines.base import check_engine_name, describe_engine

PARITY_MAX_PIXEL_ERROR = 1
"""Documented tolerance: engine-run frames differ from the torch stream's by at most this (uint8 levels)."""




def student_onnx(folder: Path | None = None) -> Path:
    """The shipped student's steady-state chunk step as ONNX, exported once into the cache."""
    import genxr.deploy.export.student as exporter
    from genxr.components.worldmodel import dit
    from genxr.deploy.export.student import export_student_step

    # the whole world-model package: the step's graph comes from dit.py, conditioning.py and more
    key = f"student-step-{content_hash(CHECKPOINT_ROOT / 'student', Path(exporter.__file__), Path(dit.__file__).parent)}"
    return cached_onnx(key, lambda out: export_student_step(out=out, seed=1),
                       lambda path: check_onnx(path, INPUTS), folder)


def student_engine(engine: str, threads: int = 1) -> Engine | None:
    """One engine per process, name and thread count for the shipped student's step (ONNX
    Runtime sessions are thread-safe and hold the weights once); None for ``torch`` (the
    stream runs as is)."""
    return _student_engine(engine, threads)


@functools.cache  # called with every argument in place, so equal calls share one entry
def _student_engine(engine: str, threads: int) -> Engine | None:
    if check_engine_name(engine) == "torch":
        return None
    return make_engine(engine, onnx_path=student_onnx(), threads=threads)



class EngineChunkStep:
    """Stands in for the student (:class:`VideoDiT`) inside a ``WorldModelStream``: the
    steady-state fused step (clean write + first denoising step) runs in ``engine``, every other
    one in torch (see module docstring).

    ``step(latents, sigma, tracking, cache, pending) -> (velocity, cache)`` as :meth:`VideoDiT.step`; ``engine_steps`` / ``torch_steps`` count where the forwards ran."""

    def __init__(self, student: VideoDiT, engine: Engine) -> None:
        self.student = student.eval()
        self.engine = engine
        self.config = student.config
        self.full_frames = self.config.sink_frames + self.config.window_frames
        self.engine_steps = 0
        self.torch_steps = 0
        self._count_lock = threading.Lock()

    def eval(self) -> EngineChunkStep:
        return self

    def step(self, latents: torch.Tensor, sigma: torch.Tensor, tracking: Tracking, cache: KVCache | None,
             pending: int = 0) -> tuple[torch.Tensor, KVCache]:
        f = self.config.chunk_frames
        steady = (cache is not None and cache.frames == self.full_frames and latents.shape[0] == 1
                  and pending == f and latents.shape[1] == 2 * f)
        if not steady:
            with self._count_lock:
                self.torch_steps += 1
            return self.student.step(latents, sigma, tracking, cache, pending)
        tensors = (latents, sigma, tracking.head_pose, tracking.hand_positions, tracking.joint_valid,
                   tracking.reference, prior_input(tracking, latents), torch.stack(cache.keys), torch.stack(cache.values))
        feeds = {name: t.numpy() for name, t in zip(INPUTS, tensors)}
        outputs = self.engine.run({name: feeds[name] for name in self.engine.input_names})
        with self._count_lock:
            self.engine_steps += 1
        keys, values = torch.from_numpy(outputs["keys_out"]), torch.from_numpy(outputs["values_out"])
        return (torch.from_numpy(np.ascontiguousarray(outputs["velocity"])),
                KVCache(list(keys.unbind(0)), list(values.unbind(0)), self.full_frames))


class EngineStudentWorld(StudentWorld):
    """:class:`StudentWorld` on the shipped student with its chunk step run by ``engine``
    (a name from :data:`ENGINES`, or an Engine already built for the student's ONNX step)."""

    def __init__(self, engine: str | Engine = "onnxruntime", seed: int = 0,
                 config: StudentWorldConfig | None = None) -> None:
        super().__init__(None, seed, config)
        built = student_engine(engine) if isinstance(engine, str) else engine
        if built is not None:
            self.stream.student = EngineChunkStep(self.stream.student, built)
        self.engine = built
        self.model_name = f"{MODEL_NAME}@{describe_engine(built)}"

    def describe(self) -> dict[str, Any]:
        """What runs this session's world: model name, engine, providers, steps per engine so far."""
        step = self.stream.student
        return {"model": self.model_name, "engine": describe_engine(self.engine),
                "engine_steps": getattr(step, "engine_steps", 0), "torch_steps": getattr(step, "torch_steps", None)}

    def __call__(self, request: WorldFrameRequest) -> WorldFrame:
        return super().__call__(request).model_copy(update={"model": self.model_name})

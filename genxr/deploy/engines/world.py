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

``fold=RATIO`` (``session.world_fold``, ``genxr serve --fold``) runs the student folded
(:func:`~genxr.deploy.export.compressed.compress_student`, ``RATIO`` of the channels of every
compressed group removed): the shipped student is folded once per process and ratio
(:func:`folded_student`, deterministic), its step exported into the cache under a key
holding the ratio and the hash of the checkpoint, the step's and the fold's code
(``student-step-fold0.2-<hash>.onnx``), and the chunk steps the engine does not run (the
anchor write, the warm-up chunks) run on the same folded torch module, so a stream is one
model. The export's report carries a fingerprint of the folded weights; a cached file whose
fingerprint is not the process's folded student is re-exported with a warning. Frames and
:meth:`EngineStudentWorld.describe` name it: ``worldmodel-student-fold0.2@onnxruntime[...]``.
``fold`` 0 or None is the student as shipped (``worldmodel-student@...``).

Parity (``tests/deploy/engines/test_world.py``): ONNX Runtime against the torch stream over
four steady-state chunks, each carrying its own cache forward: decoded frames differ by at
most 1 of 255 per pixel (fp32 step error ~2e-6, see ``docs/deploy.md``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
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
from genxr.deploy.engines.base import Engine, check_engine_name, describe_engine, make_engine
from genxr.deploy.export.cache import cached_onnx, check_onnx, content_hash
from genxr.deploy.export.student import HAND_INPUTS, INPUTS, prior_input
from genxr.platform.messages import WorldFrame, WorldFrameRequest

PARITY_MAX_PIXEL_ERROR = 1
"""Documented tolerance: engine-run frames differ from the torch stream's by at most this (uint8 levels)."""




def check_fold(fold: float | None, name: str = "fold") -> float | None:
    """``fold`` as the ratio to fold the student at, or None for the student as shipped (``fold``
    None or 0); ValueError naming ``name`` and the value unless it is a number in [0, 1)."""
    if fold is None:
        return None
    try:
        ratio = float(fold)
    except (TypeError, ValueError):
        ratio = math.nan
    if isinstance(fold, bool) or not 0.0 <= ratio < 1.0:
        raise ValueError(f"{name} must be a fraction of channels in [0, 1) (0: the student as shipped), got {fold!r}")
    return ratio or None


STUDENTS = ("student", "student_head_only")
"""The shipped students a session can run: the hand-conditioned one (the default) and the head-only
ablation (camera conditioning only, distilled from ``teacher_head_only``)."""


def check_student(student: str) -> str:
    """``student`` if it names a shipped student (:data:`STUDENTS`), else ValueError naming it."""
    if student not in STUDENTS:
        raise ValueError(f"student must be one of {', '.join(STUDENTS)}, got {student!r}")
    return student


def model_name(fold: float | None = None, student: str = "student") -> str:
    """The student's name in frames and reports: ``worldmodel-student``, folded ``worldmodel-student-fold0.2``,
    the head-only ablation ``worldmodel-student-head-only`` (``-fold0.2`` folded)."""
    ratio = check_fold(fold)
    base = MODEL_NAME if check_student(student) == "student" else f"{MODEL_NAME}-head-only"
    return base if ratio is None else f"{base}-fold{ratio:g}"


_fold_lock = threading.Lock()


def folded_student(ratio: float, student: str = "student") -> tuple[VideoDiT, dict[str, Any]]:
    """(module, compression report as a dict) of the shipped ``student`` folded at ``ratio`` in (0, 1),
    folded once per process and ratio (sessions share the module: inference only, the streaming
    state lives in each stream). ValueError for a ratio that leaves a group without channels."""
    ratio = check_fold(ratio)
    if ratio is None:
        raise ValueError("folded_student needs a ratio in (0, 1)")
    with _fold_lock:
        return _folded_student(ratio, check_student(student))


@functools.cache
def _folded_student(ratio: float, student: str) -> tuple[VideoDiT, dict[str, Any]]:
    from genxr.components.worldmodel.checkpoint import load_model
    from genxr.deploy.export.compressed import compress_student

    module, _ = load_model(CHECKPOINT_ROOT / student)
    folded, report = compress_student(module, ratio, "fold")
    return folded.eval(), report.to_dict()


def weights_fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 (16 hex digits) of a module's state dict: names, shapes and values."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def student_onnx_key(fold: float | None = None, student: str = "student") -> str:
    """The cache key (file stem) of the student's step: ``student-step-<hash>`` as shipped,
    ``student-step-fold<ratio>-<hash>`` folded, the hash over the checkpoint, the step's code and,
    folded, the fold's code and the ratio (``student_head_only-step-...`` for the head-only student)."""
    import genxr.compression as compression
    import genxr.deploy.export.compressed as compressed
    import genxr.deploy.export.student as exporter
    from genxr.components.worldmodel import dit

    ratio = check_fold(fold)
    # the whole world-model package: the step's graph comes from dit.py, conditioning.py and more
    sources = [CHECKPOINT_ROOT / check_student(student), Path(exporter.__file__), Path(dit.__file__).parent]
    if ratio is None:
        return f"{student}-step-{content_hash(*sources)}"
    digest = hashlib.sha256(f"{content_hash(*sources, Path(compressed.__file__), Path(compression.__file__).parent)}"
                            f"|fold={ratio!r}".encode()).hexdigest()[:16]
    return f"{student}-step-fold{ratio:g}-{digest}"


def student_onnx_cached(fold: float | None = None, folder: Path | None = None, student: str = "student") -> bool:
    """Whether the student's step (folded at ``fold``) already lies in the cache (no export on first use)."""
    from genxr.deploy.export.cache import cache_folder

    return ((Path(folder) if folder is not None else cache_folder())
            / f"{student_onnx_key(fold, student)}.onnx").is_file()


def student_onnx(folder: Path | None = None, fold: float | None = None, student: str = "student") -> Path:
    """The shipped ``student``'s steady-state chunk step as ONNX (folded at ``fold``, see the module
    docstring), exported once into the cache."""
    from genxr.components.worldmodel.checkpoint import load_model
    from genxr.deploy.export.student import export_student_step

    ratio = check_fold(fold)
    key = student_onnx_key(ratio, student)
    if ratio is None:
        def export_shipped(out: Path) -> None:
            module = None if student == "student" else load_model(CHECKPOINT_ROOT / student)[0]
            export_student_step(out=out, seed=1, student=module)

        return cached_onnx(key, export_shipped, lambda path: check_onnx(path, INPUTS, HAND_INPUTS), folder)
    module, report = folded_student(ratio, student)
    fingerprint = weights_fingerprint(module)

    def export(out: Path) -> None:
        export_student_step(out=out, seed=1, student=module, compression=report)
        written = out.with_suffix(".json")
        recorded = json.loads(written.read_text())
        recorded["weights_fingerprint"] = fingerprint
        written.write_text(json.dumps(recorded, indent=2) + "\n")

    def check(path: Path) -> None:
        check_onnx(path, INPUTS, HAND_INPUTS)
        try:
            recorded = json.loads(path.with_suffix(".json").read_text()).get("weights_fingerprint")
        except (OSError, json.JSONDecodeError, AttributeError) as err:
            raise ValueError(f"the export report beside {str(path)!r} is unusable: {type(err).__name__}: {err}") from err
        if recorded != fingerprint:
            raise ValueError(f"{str(path)!r} holds a student folded to weights {recorded}, this process folds "
                             f"to {fingerprint}")

    return cached_onnx(key, export, check, folder)


def student_engine(engine: str, threads: int = 1, fold: float | None = None, student: str = "student") -> Engine | None:
    """One engine per process, name, thread count, fold ratio and student for the shipped student's step
    (ONNX Runtime sessions are thread-safe and hold the weights once); None for ``torch`` (the
    stream runs as is, folded where asked)."""
    return _student_engine(engine, threads, check_fold(fold), check_student(student))


@functools.cache  # called with every argument in place, so equal calls share one entry
def _student_engine(engine: str, threads: int, fold: float | None, student: str) -> Engine | None:
    if check_engine_name(engine) == "torch":
        return None
    return make_engine(engine, onnx_path=student_onnx(fold=fold, student=student), threads=threads)



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
    """:class:`StudentWorld` on the shipped ``student`` (:data:`STUDENTS`), folded at ``fold`` (None
    or 0: as shipped), with its chunk step run by ``engine`` (a name from :data:`ENGINES`, or an
    Engine already built for that student's ONNX step); the other chunk steps run on the same
    (folded) torch module."""

    def __init__(self, engine: str | Engine = "onnxruntime", seed: int = 0,
                 config: StudentWorldConfig | None = None, fold: float | None = None, student: str = "student") -> None:
        self.fold = check_fold(fold)
        self.student = check_student(student)
        if isinstance(engine, str):
            check_engine_name(engine)
        super().__init__(None, seed, config, student=self.student)
        if self.fold is not None:
            self.stream.student = folded_student(self.fold, self.student)[0]
        built = student_engine(engine, fold=self.fold, student=self.student) if isinstance(engine, str) else engine
        if built is not None:
            self.stream.student = EngineChunkStep(self.stream.student, built)
        self.engine = built
        self.model_name = f"{model_name(self.fold, self.student)}@{describe_engine(built)}"

    def describe(self) -> dict[str, Any]:
        """What runs this session's world: model name, student, fold ratio, engine, providers, steps per engine so far."""
        step = self.stream.student
        return {"model": self.model_name, "student": self.student, "fold": self.fold,
                "engine": describe_engine(self.engine),
                "engine_steps": getattr(step, "engine_steps", 0), "torch_steps": getattr(step, "torch_steps", None)}

    def __call__(self, request: WorldFrameRequest) -> WorldFrame:
        return super().__call__(request).model_copy(update={"model": self.model_name})

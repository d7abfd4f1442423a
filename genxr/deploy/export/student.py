"""ONNX export of the world-model student's chunk step, with its KV cache as plain tensors.

The student (:class:`~genxr.components.worldmodel.dit.VideoDiT`, chunk-causal) keeps a
cache of the sink frame and the newest ``window_frames`` frames. Once the stream has
generated that many frames the cache has a fixed size, and every later step has the same
shapes: it is exported in that steady state. :class:`StudentChunkStep` is the stream's fused
step (:func:`~genxr.components.worldmodel.stream.stream_chunk`): the previous chunk's clean
output, written to the cache, and the next chunk's first denoising step in one forward. It
takes the cache as two stacked tensors and returns the new chunk's velocity and the updated
(trimmed) cache; f = chunk_frames, and the first f of the 2f frames are the clean chunk:

    inputs   latents (1, 2f, C, h, w), sigma (1, 2f: 0 for the clean chunk), head_pose (1, 2f, 7),
             hand_positions, joint_valid (as :class:`~genxr.components.worldmodel.conditioning.Tracking`),
             reference (1, 7), prior (1, f, C, h, w: the reprojected anchor's latents,
             :mod:`~genxr.components.worldmodel.reprojection`, computed outside the graph),
             keys, values (L, 1, heads, T, head_dim)
    outputs  velocity (1, f, C, h, w), keys_out, values_out (same shapes as keys, values)

The first chunks of a stream (cache still filling), and the second and later Euler steps of a
chunk when the stream takes more than one, run in torch. Export uses the
TorchScript-based exporter (``dynamo=False``): the dynamo exporter took minutes on this
graph; both give the same ONNX Runtime result. :func:`export_student_step` also checks
parity against eager torch over a multi-chunk rollout and records it beside the file.

A folded or pruned student (:mod:`genxr.deploy.export.compressed`, ``genxr export onnx --fold RATIO``)
exports the same way: its cache keeps the same shapes (attention heads are left whole), the
parity is then compressed-torch vs compressed-ONNX Runtime, and the compression report
(parameters and MACs before/after, per group) goes into the JSON under ``"compression"``.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genxr.platform.stats import median
from genxr.platform.units import MS_PER_S

INPUTS = ("latents", "sigma", "head_pose", "hand_positions", "joint_valid", "reference", "prior", "keys", "values")
HAND_INPUTS = ("hand_positions", "joint_valid")
"""Inputs a head-only student does not read: its exported step has none of them (engines are fed
their ``input_names`` only)."""
OUTPUTS = ("velocity", "keys_out", "values_out")


class StudentChunkStep(torch.nn.Module):
    """One steady-state fused step of the student: clean write + first denoising step (see module docstring)."""

    def __init__(self, student) -> None:
        super().__init__()
        self.student = student.eval()

    def forward(self, latents, sigma, head_pose, hand_positions, joint_valid, reference, prior, keys, values):
        from genxr.components.worldmodel.conditioning import Tracking
        from genxr.components.worldmodel.dit import KVCache

        config = self.student.config
        cache = KVCache(list(keys.unbind(0)), list(values.unbind(0)), config.sink_frames + config.window_frames)
        tracking = Tracking(head_pose, hand_positions, joint_valid, reference, prior)
        velocity, grown = self.student.step(latents, sigma, tracking, cache, pending=config.chunk_frames)
        return velocity, torch.stack(grown.keys), torch.stack(grown.values)


@dataclass
class SteadyState:
    """A stream whose cache is full, and the tracking of its next chunks (for export and parity)."""

    stream: object
    chunks: list


def steady_state(seed: int = 1, chunks: int = 4, student=None) -> SteadyState:
    """``student`` (default: the shipped one) streaming a simulated user with the shipped codec until
    its cache is full; the tracking of ``chunks`` further chunks comes with it. Streaming there is
    also the check that a folded or pruned student still runs chunk by chunk."""
    from genxr.components.sim.user import ScriptedUser
    from genxr.components.sim.world_service import GroundTruthWorld
    from genxr.components.worldmodel.checkpoint import CHECKPOINT_ROOT, load_model
    from genxr.components.worldmodel.stream import WorldModelStream
    from genxr.platform.messages import WorldFrameRequest

    codec, _ = load_model(CHECKPOINT_ROOT / "codec")
    if student is None:
        student, _ = load_model(CHECKPOINT_ROOT / "student")
    config = student.config
    stream = WorldModelStream(student, codec)
    needed = 1 + (config.sink_frames + config.window_frames + chunks + 1) * config.chunk_frames
    frames = [step.frame for step in ScriptedUser("look_around+press_button", seed=seed).steps(needed)]
    anchor = GroundTruthWorld(seed)(WorldFrameRequest(session_id="export", request_id=0, tracking=[frames[0]]))
    stream.reset(anchor.image, frames[0])
    index = 1
    while stream.cache.frames < config.sink_frames + config.window_frames:
        stream.step(frames[index:index + config.chunk_frames])
        index += config.chunk_frames
    f = config.chunk_frames
    return SteadyState(stream, [frames[index + k * f:index + (k + 1) * f] for k in range(chunks)])


def step_inputs(stream, tracking_frames, latents: torch.Tensor, sigma: float, keys, values) -> dict[str, np.ndarray]:
    """Feeds of one fused step: ``tracking_frames`` and ``latents`` (1, 2f, ...) of the clean chunk then
    the new one, which is at noise level ``sigma``."""
    tracking, _ = stream._tracking(tracking_frames)
    f = latents.shape[1] // 2
    levels = torch.cat([torch.zeros(1, f), torch.full((1, latents.shape[1] - f), sigma)], 1)
    tensors = (latents, levels, tracking.head_pose, tracking.hand_positions,
               tracking.joint_valid, tracking.reference, prior_input(tracking, latents), keys, values)
    return {name: t.numpy() for name, t in zip(INPUTS, tensors)}


def prior_input(tracking, latents: torch.Tensor) -> torch.Tensor:
    """The ``prior`` input of the exported step: the tracking's prior, or zeros shaped like ``latents``
    for a student without reprojection (its graph does not read them)."""
    return tracking.prior if tracking.prior is not None else torch.zeros_like(latents)


def median_ms(call, n: int = 30) -> float:
    """Median wall time of ``call()`` in milliseconds over ``n`` calls after 5 warm-up calls, with
    torch pinned to one intra-op thread meanwhile (ONNX Runtime engines here run one thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(5):
            call()
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            call()
            samples.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return median(samples, scale=MS_PER_S)


def writable_output(out: str | Path) -> Path:
    """``out`` as a Path whose folder exists and which can be written (an empty file for now), or
    OSError naming it - before minutes of export and parity checks, not after."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"")
    except OSError as err:
        raise OSError(f"cannot write the export to {str(out)!r}: {err}") from err
    return out


@dataclass
class ExportedStep:
    """An exported chunk step: the file, both engines (eager torch, ONNX Runtime with one thread),
    the inputs of one steady-state step (``feeds``, for timing) and the parity of the rollout."""

    path: Path
    reference: object
    exported: object
    feeds: dict[str, np.ndarray]
    shapes: dict[str, list[int]]
    parity_max_abs_error_per_chunk: list[float]


def export_step(out: str | Path, seed: int = 1, student=None) -> ExportedStep:
    """Exports ``student``'s (default: the shipped student's) steady-state chunk step to ``out`` (.onnx)
    and checks ONNX Runtime against eager torch over a 4-chunk rollout; writes no report."""
    from genxr.deploy.engines.base import OnnxRuntimeEngine, TorchEngine

    out = writable_output(out)
    state = steady_state(seed, chunks=5, student=student)
    stream = state.stream
    pairs = [a + b for a, b in zip(state.chunks, state.chunks[1:])]  # fused steps: the clean chunk, then the new one
    module = StudentChunkStep(stream.student)
    config = stream.student.config
    generator = torch.Generator().manual_seed(seed)
    shape = (1, 2 * config.chunk_frames, config.latent_channels, config.latent_size, config.latent_size)
    keys, values = torch.stack(stream.cache.keys), torch.stack(stream.cache.values)
    example = step_inputs(stream, pairs[0], torch.randn(shape, generator=generator), 0.5, keys, values)
    with torch.no_grad(), warnings.catch_warnings():
        # The trace is of the steady state by design (fixed cache size); the parity check below is the proof.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, tuple(torch.from_numpy(example[n]) for n in INPUTS), str(out),
                          input_names=list(INPUTS), output_names=list(OUTPUTS), dynamo=False)
    reference, exported = TorchEngine(module, INPUTS, OUTPUTS), OnnxRuntimeEngine(out, threads=1)
    errors, caches = [], {"torch": (keys.numpy(), values.numpy()), "onnxruntime": (keys.numpy(), values.numpy())}
    for chunk in pairs:  # each engine carries its own cache forward: errors would compound
        latents = torch.randn(shape, generator=generator)
        results = {}
        for name, engine in (("torch", reference), ("onnxruntime", exported)):
            k, v = caches[name]
            feeds = step_inputs(stream, chunk, latents, 0.0, torch.from_numpy(k), torch.from_numpy(v))
            results[name] = engine.run({n: feeds[n] for n in engine.input_names})
            caches[name] = (results[name]["keys_out"], results[name]["values_out"])
        errors.append(max(float(np.abs(results["torch"][n] - results["onnxruntime"][n]).max()) for n in OUTPUTS))
    feeds = step_inputs(stream, pairs[0], torch.randn(shape, generator=generator), 0.5, keys, values)
    return ExportedStep(out, reference, exported, feeds, {n: list(example[n].shape) for n in exported.input_names},
                        errors)


def export_student_step(out: str | Path, seed: int = 1, *, student=None, compression=None, timing_runs: int = 30) -> dict:
    """Exports the student's chunk step to ``out`` (.onnx) and writes ``<out>.json`` with the
    input/output names, the parity against torch over a 4-chunk rollout, and the median step time
    (milliseconds, ``timing_runs`` calls) of eager torch and ONNX Runtime (one thread each)
    measured in the same run.

    ``student``: a :class:`~genxr.components.worldmodel.dit.VideoDiT` to export instead of the
    shipped one (e.g. folded, :func:`genxr.deploy.export.compressed.compress_student`); the parity is
    then that model's torch vs ONNX Runtime. ``compression``: its
    :class:`~genxr.compression.CompressionReport` (or that report's dict), recorded under
    ``"compression"`` (method, ratio, parameters and MACs before/after, per group).
    """
    step = export_step(out, seed, student)
    report = {"file": step.path.name, "torch_ms": median_ms(lambda: step.reference.run(step.feeds), timing_runs),
              "onnxruntime_ms": median_ms(lambda: step.exported.run({n: step.feeds[n] for n in step.exported.input_names}),
                                         timing_runs),
              "inputs": list(step.exported.input_names), "outputs": list(OUTPUTS), "shapes": step.shapes,
              "parity_max_abs_error_per_chunk": step.parity_max_abs_error_per_chunk,
              "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if compression is not None:
        report["compression"] = compression if isinstance(compression, dict) else compression.to_dict()
    step.path.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report

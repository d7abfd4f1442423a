"""``genxr bench avatar``: streamed motion frames per second, causal stream vs non-causal baseline,
each pair on the same engine.

Both run the same checkpoint through the same streaming interface on the same held-out
conversation with the same Euler steps and classifier-free guidance (batch of 2):
the causal stream generates one latent token per 4-frame step on KV caches; the baseline
(same width, depth and window) regenerates and decodes its whole window each step. Engines:

* ``torch``: eager :class:`AvatarStream` and :class:`WindowBaseline`;
* ``onnxruntime``: the fixed-shape steps exported to ONNX and run by ONNX Runtime
  (:class:`~genxr.deploy.engines.avatar.EngineAvatarStream` over
  :func:`~genxr.deploy.serving.avatar.avatar_onnx`,
  :class:`~genxr.deploy.export.avatar_baseline.EngineWindowBaseline` over
  :func:`~genxr.deploy.export.avatar_baseline.baseline_onnx`; exported once per checkpoint into
  the ONNX cache, with parity checked at export).

Timed: ``step`` calls only (feature extraction, generation, decoding, seam filter, 6D
re-orthonormalisation), after a warm-up that fills the window; frames per second = frames per
step / the median step's wall seconds (the median, not the mean: on a shared machine another
job's burst lands on whichever of the two runs is timed then; docs/avatar.md, "Speed"). The
stream and the baseline of one engine are measured back to back in the same process. ``stream_fps``, ``baseline_fps`` and ``speedup`` are those of the first
engine asked for; ``by_engine`` holds every engine's. Default one thread: at these sizes
intra-op parallelism does not pay, and on a shared machine two torch threads wait on each
other (docs/avatar.md, "Speed").
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from genxr.components.avatar.checkpoint import load_checkpoint, shipped_checkpoint
from genxr.components.avatar.features import SAMPLE_RATE_HZ
from genxr.components.avatar.frames import AgentPlacement
from genxr.components.avatar.stream import AvatarStream, WindowBaseline
from genxr.components.avatar.train import EVAL_SEED
from genxr.components.sim.conversation.dataset import simulate_conversation
from genxr.platform.messages import AudioChunk, Pose
from genxr.platform.stats import median
from genxr.platform.units import MS_PER_S, NS_PER_S

ENGINES = ("torch", "onnxruntime")


def _frames_per_second(stream: AvatarStream, seconds: float, warmup_steps: int) -> float:
    talk = simulate_conversation(EVAL_SEED, 0, seconds + warmup_steps * stream.stride / 30.0 + 1.0)
    placement = AgentPlacement()
    stream.reset(placement=placement)
    user = placement.to_reference(talk.user_head)
    s = stream.stride
    inputs = []
    for k in range(talk.frames // s):
        first, last = k * s * SAMPLE_RATE_HZ // 30, (k + 1) * s * SAMPLE_RATE_HZ // 30
        audio = [AudioChunk(speaker=name, start_time_ns=round(first * NS_PER_S / SAMPLE_RATE_HZ), sample_rate_hz=SAMPLE_RATE_HZ,
                            samples=track[first:last]) for name, track in (("user", talk.user_audio), ("agent", talk.agent_audio))]
        inputs.append((Pose(position=tuple(user[(k + 1) * s - 1])), audio))
    for pose, audio in inputs[:warmup_steps]:
        stream.step(pose, audio)
    step_seconds = []
    for pose, audio in inputs[warmup_steps:warmup_steps + int(seconds * 30) // s]:
        start = time.perf_counter()
        frames = len(stream.step(pose, audio).rotations_6d)
        step_seconds.append(time.perf_counter() - start)
    return frames / median(step_seconds)


def engines_headed_by(engine: str) -> tuple[str, ...]:
    """Every engine of :data:`ENGINES`, ``engine`` first (the one reported in the top-level keys)."""
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r}: choose from {list(ENGINES)}")
    return (engine, *(other for other in ENGINES if other != engine))


def engine_pair(engine: str, checkpoint: Path, threads: int) -> tuple[AvatarStream, AvatarStream]:
    """(causal stream, non-causal baseline) of ``checkpoint`` on ``engine`` (one of :data:`ENGINES`)."""
    if engine == "torch":
        models, _ = load_checkpoint(checkpoint)
        return AvatarStream(models["vae"], models["generator"]), WindowBaseline(models["vae"], models["baseline"])
    if engine == "onnxruntime":
        from genxr.deploy.engines.avatar import EngineAvatarStream
        from genxr.deploy.export.avatar_baseline import EngineWindowBaseline, baseline_onnx
        from genxr.deploy.serving.avatar import avatar_onnx

        return (EngineAvatarStream.from_onnx(avatar_onnx(checkpoint), threads),
                EngineWindowBaseline.from_onnx(baseline_onnx(checkpoint), threads))
    raise ValueError(f"engine {engine!r}: choose from {list(ENGINES)}")


def run(preset: str = "cpu", seconds: float = 20.0, threads: int = 1, engines: tuple[str, ...] = ENGINES,
        checkpoint: Path | None = None) -> dict:
    """Frames per second of stream and baseline per engine and their ratio (``speedup`` = stream /
    baseline); the top-level ``stream_fps``/``baseline_fps``/``speedup`` are ``engines[0]``'s."""
    unknown = [engine for engine in engines if engine not in ENGINES]
    if not engines or unknown:
        raise ValueError(f"engines {list(engines)}: choose one or more of {list(ENGINES)}")
    torch.set_num_threads(threads)
    checkpoint = Path(checkpoint) if checkpoint is not None else shipped_checkpoint(preset)
    models, _ = load_checkpoint(checkpoint)
    warmup = models["generator"].config.transformer.window
    by_engine = {}
    for engine in engines:
        stream, baseline = engine_pair(engine, checkpoint, threads)
        stream_fps = _frames_per_second(stream, seconds, warmup)
        baseline_fps = _frames_per_second(baseline, seconds, warmup)
        by_engine[engine] = {"stream_fps": stream_fps, "baseline_fps": baseline_fps, "speedup": stream_fps / baseline_fps,
                             "stream_ms_per_step": MS_PER_S * stream.stride / stream_fps,
                             "baseline_ms_per_step": MS_PER_S * stream.stride / baseline_fps}
    headline = by_engine[engines[0]]
    return {
        "preset": preset,
        "checkpoint": str(checkpoint),
        "threads": threads,
        "seconds_streamed": seconds,
        "euler_steps": len(AvatarStream(models["vae"], models["generator"]).sigmas) - 1,
        "frames_per_step": models["vae"].config.stride,
        "window_tokens": models["baseline"].config.transformer.window,
        "engine": engines[0],
        "stream_fps": headline["stream_fps"],
        "baseline_fps": headline["baseline_fps"],
        "speedup": headline["speedup"],
        "stream_ms_per_step": headline["stream_ms_per_step"],
        "realtime_factor": headline["stream_fps"] / 30.0,
        "by_engine": by_engine,
    }

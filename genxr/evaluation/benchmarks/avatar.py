"""``genxr bench avatar``: streamed motion frames per second, causal stream vs non-causal baseline.

Both run the shipped checkpoint through the same streaming interface on the same
held-out conversation with the same Euler steps and classifier-free guidance (batch of
2): :class:`AvatarStream` generates one latent token per 4-frame step on KV caches;
:class:`WindowBaseline` (same width, depth and window) regenerates and decodes its whole
window each step. Timed: ``step`` calls only (feature extraction, generation, decoding,
6D re-orthonormalisation), after a warm-up that fills the window; frames per second =
frames returned / wall seconds, measured one after the other in the same process.
Default one torch thread: at these sizes intra-op parallelism does not pay, and on a shared
2-core machine two threads collapsed to 27 frames/s (measured) while one held ~420.
"""

from __future__ import annotations

import time

import torch

from genxr.components.avatar.checkpoint import load_checkpoint, shipped_checkpoint
from genxr.components.avatar.features import SAMPLE_RATE_HZ
from genxr.components.avatar.frames import AgentPlacement
from genxr.components.avatar.stream import AvatarStream, WindowBaseline
from genxr.components.avatar.train import EVAL_SEED
from genxr.components.sim.conversation.dataset import simulate_conversation
from genxr.platform.messages import AudioChunk, Pose


def _frames_per_second(stream: AvatarStream, seconds: float, warmup_steps: int) -> float:
    talk = simulate_conversation(EVAL_SEED, 0, seconds + warmup_steps * stream.stride / 30.0 + 1.0)
    placement = AgentPlacement()
    stream.reset(placement=placement)
    user = placement.to_reference(talk.user_head)
    s = stream.stride
    inputs = []
    for k in range(talk.frames // s):
        first, last = k * s * SAMPLE_RATE_HZ // 30, (k + 1) * s * SAMPLE_RATE_HZ // 30
        audio = [AudioChunk(speaker=name, start_time_ns=round(first * 1e9 / SAMPLE_RATE_HZ), sample_rate_hz=SAMPLE_RATE_HZ,
                            samples=track[first:last]) for name, track in (("user", talk.user_audio), ("agent", talk.agent_audio))]
        inputs.append((Pose(position=tuple(user[(k + 1) * s - 1])), audio))
    for pose, audio in inputs[:warmup_steps]:
        stream.step(pose, audio)
    timed = inputs[warmup_steps:warmup_steps + int(seconds * 30) // s]
    start = time.perf_counter()
    frames = sum(len(stream.step(pose, audio).rotations_6d) for pose, audio in timed)
    return frames / (time.perf_counter() - start)


def run(preset: str = "cpu", seconds: float = 20.0, threads: int = 1) -> dict[str, float | int | str]:
    """Frames per second of both and their ratio (``speedup`` = stream / baseline)."""
    torch.set_num_threads(threads)
    models, _ = load_checkpoint(shipped_checkpoint(preset))
    stream = AvatarStream(models["vae"], models["generator"])
    baseline = WindowBaseline(models["vae"], models["baseline"])
    warmup = models["generator"].config.transformer.window
    stream_fps = _frames_per_second(stream, seconds, warmup)
    baseline_fps = _frames_per_second(baseline, seconds, warmup)
    return {
        "preset": preset,
        "threads": threads,
        "seconds_streamed": seconds,
        "euler_steps": len(stream.sigmas) - 1,
        "frames_per_step": stream.stride,
        "window_tokens": baseline.window,
        "stream_fps": stream_fps,
        "baseline_fps": baseline_fps,
        "speedup": stream_fps / baseline_fps,
        "stream_ms_per_step": 1e3 * stream.stride / stream_fps,
        "realtime_factor": stream_fps / 30.0,
    }

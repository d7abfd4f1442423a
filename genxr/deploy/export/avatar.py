"""ONNX export of the avatar's chunk step (:class:`~genxr.deploy.engines.avatar.AvatarChunkStep`).

:func:`export_avatar_step` traces the shipped avatar's fixed-shape step (ring-buffer caches,
one call per chunk with the Euler steps unrolled) with the ``torch.export``-based exporter
(``dynamo=True``; the TorchScript exporter used for the world-model student has no symbolic
for the transformers' ``aten::rms_norm`` at opset 20), then checks parity over a rollout of a
simulated conversation long enough for both ring buffers to fill and wrap (the generator's
31-token ring wraps at chunk 32, the decoder's 79-token ring at chunk 15). Three streams see
the same audio, user poses and noise seed:

* ``AvatarStream`` (eager torch, growing list caches) - the behaviour being exported;
* ``EngineAvatarStream`` over eager torch :class:`AvatarChunkStep` (fixed shapes);
* ``EngineAvatarStream`` over ONNX Runtime, carrying its own caches forward.

Per chunk the report records

* ``parity_onnxruntime_vs_torch_per_chunk``: ONNX Runtime and torch given the same inputs
  (the torch stream's state at that chunk): max abs error over every output (motion,
  pending latent and condition, all four caches) - the error of one exported call;
* ``parity_fixed_shape_vs_stream_per_chunk``: motion (6D rotations, root translation in
  metres) of ``AvatarStream`` vs the fixed-shape torch stream, each on its own state;
* ``drift_onnxruntime_vs_torch_per_chunk``: motion of the free-running ONNX Runtime stream
  vs the torch one, each on its own state.

The free-running errors compound through the autoregressive state (each chunk's latent is
the next chunk's context): float rounding (another softmax summation order, other kernels)
grows with the chunk count, so they are reported separately from the per-call error. The
yardstick, measured in the same run: ``drift_torch_after_one_ulp_noise_change_per_chunk`` is
the motion difference between two torch streams whose only difference is the first chunk's
noise moved by one float32 ulp. The
report (JSON beside the .onnx) also holds the step's spec, read back by
:meth:`EngineAvatarStream.from_onnx`, and the median step times of torch and ONNX Runtime
(one thread each) measured in the same run.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from genxr.components.avatar.checkpoint import load_checkpoint, shipped_checkpoint
from genxr.components.avatar.features import FPS, SAMPLE_RATE_HZ
from genxr.components.avatar.frames import AgentPlacement
from genxr.components.avatar.stream import AvatarStream, MotionChunk
from genxr.components.sim.conversation.dataset import simulate_conversation
from genxr.deploy.engines.avatar import INPUTS, OUTPUTS, AvatarChunkStep, EngineAvatarStream
from genxr.deploy.engines.base import OnnxRuntimeEngine, TorchEngine
from genxr.deploy.export.decoder import onnx_opset
from genxr.deploy.export.student import median_ms, writable_output
from genxr.platform.messages import AudioChunk, Pose
from genxr.platform.units import NS_PER_S

ROLLOUT_SEED = 7
"""Simulator data set of the parity rollout's conversation (any seed; the conversation is only input)."""


def conversation_chunks(chunks: int, stride: int, placement: AgentPlacement, seed: int = ROLLOUT_SEED
                        ) -> Iterator[tuple[Pose, list[AudioChunk]]]:
    """``chunks`` steps of a simulated conversation: the user's head (reference space) at each
    chunk's last frame and both speakers' 16 kHz audio of the chunk, as a deployed stream gets them."""
    talk = simulate_conversation(seed, 0, chunks * stride / FPS)
    user_head = placement.to_reference(talk.user_head)
    for k in range(chunks):
        first, last = k * stride * SAMPLE_RATE_HZ // FPS, (k + 1) * stride * SAMPLE_RATE_HZ // FPS
        start_ns = round(first * NS_PER_S / SAMPLE_RATE_HZ)
        audio = [AudioChunk(speaker=name, start_time_ns=start_ns, sample_rate_hz=SAMPLE_RATE_HZ, samples=track[first:last])
                 for name, track in (("user", talk.user_audio), ("agent", talk.agent_audio))]
        yield Pose(position=tuple(user_head[(k + 1) * stride - 1])), audio


def motion_error(a: MotionChunk, b: MotionChunk) -> float:
    """Max abs difference of two chunks' 6D rotations and root translations (metres)."""
    return float(max(np.abs(a.rotations_6d - b.rotations_6d).max(), np.abs(a.root_translation - b.root_translation).max()))


def export_avatar_step(out: str | Path, seed: int = 0, chunks: int = 40, guidance_scale: float = 1.0,
                       checkpoint: Path | None = None, generator: str = "generator") -> dict:
    """Exports the avatar checkpoint's chunk step (default: the shipped one; ``generator``: its
    ``generator`` or the spatial ablation ``generator_no_user``) to ``out`` (.onnx) and
    writes ``<out>.json``: input/output names and shapes, the spec, per-chunk parity over a
    ``chunks``-chunk rollout (noise seed ``seed``, CFG scale ``guidance_scale``) and median step
    times. Raises ``ValueError`` if ``chunks`` is too short for both ring buffers to wrap."""
    out = Path(out)
    models, _ = load_checkpoint(checkpoint or shipped_checkpoint())
    module = AvatarChunkStep(models["vae"], models[generator])
    spec = module.spec()
    stride = spec.stride
    generator_wraps = spec.state_shapes["generator_keys"][3] + 1  # chunk k writes clean token k - 1
    decoder_wraps = -(-(spec.state_shapes["decoder_keys"][3] - stride) // (stride + 1))  # chunk k: tokens 5k .. 5k + 4
    if chunks <= max(generator_wraps, decoder_wraps):
        raise ValueError(f"chunks={chunks} is too short: the rings wrap at chunks {generator_wraps} (generator) and "
                         f"{decoder_wraps} (decoder); use more than {max(generator_wraps, decoder_wraps)}")
    out = writable_output(out)
    example = module.example_inputs()
    with torch.no_grad(), warnings.catch_warnings():
        # Constants (masks, aranges) are traced on purpose: every call has these shapes; parity below checks it.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, tuple(torch.from_numpy(example[n]) for n in INPUTS), str(out),
                          input_names=list(INPUTS), output_names=list(OUTPUTS), dynamo=True,
                          external_data=False,  # one self-contained file (~5 MB), no `.onnx.data` beside it
                          verbose=False)  # the dynamo exporter's progress lines would corrupt `--json` stdout
    reference_engine, exported_engine = TorchEngine(module, INPUTS, OUTPUTS), OnnxRuntimeEngine(out, threads=1)
    placement = AgentPlacement()
    original = AvatarStream(models["vae"], models[generator], spec.euler_steps, spec.shift)
    fixed, onnx = EngineAvatarStream(reference_engine, spec), EngineAvatarStream(exported_engine, spec)
    nudged = EngineAvatarStream(reference_engine, spec)  # torch again, first noise draw one ulp larger
    for stream in (original, fixed, onnx, nudged):
        stream.reset(seed=seed, guidance_scale=guidance_scale, placement=placement)
    stream_errors, onnx_errors, onnx_drift, sensitivity = [], [], [], []
    for k, (pose, audio) in enumerate(conversation_chunks(chunks, stride, placement)):
        feeds = fixed.feeds(pose, audio)
        torch_outputs, onnx_outputs = reference_engine.run(feeds), exported_engine.run(feeds)
        onnx_errors.append(max(float(np.abs(torch_outputs[n] - onnx_outputs[n]).max()) for n in OUTPUTS))
        nudged_feeds = nudged.feeds(pose, audio)
        if k == 0:
            nudged_feeds["noise"] = np.nextafter(nudged_feeds["noise"], np.float32(np.inf))
        motion = (original.step(pose, audio), fixed.advance(torch_outputs), onnx.step(pose, audio),
                  nudged.advance(reference_engine.run(nudged_feeds)))
        stream_errors.append(motion_error(motion[0], motion[1]))
        onnx_drift.append(motion_error(motion[1], motion[2]))
        sensitivity.append(motion_error(motion[1], motion[3]))
    feeds = fixed.feeds(None)  # a steady-state chunk: both rings full
    pose = Pose(position=(0.0, 1.6, 1.5))
    report = {
        "file": out.name, "opset": onnx_opset(out), "inputs": list(INPUTS), "outputs": list(OUTPUTS),
        "shapes": {n: list(example[n].shape) for n in INPUTS}, "spec": spec.to_dict(),
        "rollout": {"chunks": chunks, "seed": seed, "guidance_scale": guidance_scale,
                    "generator_ring_wraps_at_chunk": generator_wraps, "decoder_ring_wraps_at_chunk": decoder_wraps},
        "parity_fixed_shape_vs_stream_per_chunk": stream_errors,
        "parity_onnxruntime_vs_torch_per_chunk": onnx_errors,
        "drift_onnxruntime_vs_torch_per_chunk": onnx_drift,
        "drift_torch_after_one_ulp_noise_change_per_chunk": sensitivity,
        "torch_ms": median_ms(lambda: reference_engine.run(feeds)),
        "onnxruntime_ms": median_ms(lambda: exported_engine.run(feeds)),
        "stream_step_ms": {"AvatarStream": median_ms(lambda: original.step(pose)),
                           "EngineAvatarStream_onnxruntime": median_ms(lambda: onnx.step(pose))},
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def export_and_summarise(model: str, out: Path) -> str:
    """``genxr export onnx --model avatar|decoder``: exports to ``out`` and returns one line of parity
    and timing from the report."""
    if model == "avatar":
        report = export_avatar_step(out)
        return (f"wrote {out}; over {report['rollout']['chunks']} chunks ONNX Runtime vs torch max abs error "
                f"{max(report['parity_onnxruntime_vs_torch_per_chunk']):.2e} per call, fixed-shape vs AvatarStream "
                f"{max(report['parity_fixed_shape_vs_stream_per_chunk']):.2e}; step {report['onnxruntime_ms']:.2f} ms "
                f"(torch {report['torch_ms']:.2f} ms)")
    if model == "decoder":
        from genxr.deploy.export.decoder import export_frame_decoder

        report = export_frame_decoder(out)
        worst = max(p["image_max_abs_error"] for p in report["parity_by_batch"].values())
        levels = max(p["frames_max_level_difference"] for p in report["parity_by_batch"].values())
        return f"wrote {out}; max abs error {worst:.2e} (image), {levels} uint8 levels (frames), dynamic batch"
    raise ValueError(f"model {model!r}: export_and_summarise knows 'avatar' and 'decoder'")

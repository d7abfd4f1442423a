"""The non-causal avatar baseline's step with fixed shapes, a stream over any engine, and its ONNX export.

:class:`~genxr.components.avatar.stream.WindowBaseline` regenerates the generator's whole
window of latents from noise at every 4-frame step (bidirectional attention, no cache) and
decodes the whole window; its sequence grows from 1 to ``window`` chunks and then stays
there. :class:`WindowBaselineStep` is the same computation at the full window every call, so
it can be exported the way :mod:`genxr.deploy.export.avatar` exports the causal stream's step
and both run on the same engine in ``genxr bench avatar --engine onnxruntime``:

* the window of condition embeddings is **left-padded**: slot ``window - 1`` holds the newest
  chunk, and ``filled`` (int64, chunks in the window before this call) says how many slots
  to its left are real; padded slots are masked out of attention (each attends only to
  itself, so no row of the softmax is empty), so the real tokens see exactly what
  ``WindowBaseline`` gives them (attention sees only distances: ALiBi);
* one call: the new chunk's condition, ``euler_steps`` unrolled Euler steps over the window
  with classifier-free guidance (rows: gaze kept, gaze dropped), the VAE decoder over the
  window (causal, its own token window), and the last chunk's frames.

    inputs   audio_features (1, S, 6), user_features (1, S, 9) (avatar frame, see
             genxr.components.avatar.features), gaze_target (1,) in [0, 1], guidance_scale (1,),
             noise (1, K, D) standard normal (padded slots: any value), condition_window
             (2, K, W) the previous calls' conditions, filled (1,) int64 in [0, K]
    outputs  motion (1, S, 135) raw motion features of the newest chunk (avatar frame),
             condition_window_out (2, K, W): the next call's condition_window

with K the generator's window in chunks (32 for the shipped model) and W its width.
:class:`EngineWindowBaseline` has ``WindowBaseline``'s API and draws the same noise (one
``torch.Generator`` per session, ``(1, chunks in window, D)`` per step), so the same seed
gives the same motion up to float rounding - checked by :func:`export_baseline_step` over a
rollout that fills the window and runs past it.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genxr.components import flow_matching as fm
from genxr.components.avatar.checkpoint import load_checkpoint, shipped_checkpoint
from genxr.components.avatar.features import AUDIO_DIM, USER_DIM
from genxr.components.avatar.frames import AgentPlacement
from genxr.components.avatar.generator import LatentGenerator
from genxr.components.avatar.stream import (
    AvatarStream,
    MotionChunk,
    WindowBaseline,
)
from genxr.components.avatar.transformer import attention_bias
from genxr.components.avatar.vae import MotionVAE
from genxr.deploy.engines.base import Engine, OnnxRuntimeEngine, TorchEngine
from genxr.deploy.export.avatar import conversation_chunks, motion_error
from genxr.deploy.export.decoder import onnx_opset
from genxr.deploy.export.student import median_ms, writable_output
from genxr.platform.messages import AudioChunk, Pose

INPUTS = ("audio_features", "user_features", "gaze_target", "guidance_scale", "noise", "condition_window", "filled")
OUTPUTS = ("motion", "condition_window_out")


@dataclass(frozen=True)
class BaselineStepSpec:
    """``stride`` frames per chunk, ``window`` chunks, ``latent_dim``, ``width`` of a condition,
    the training mean gaze score, ``euler_steps``/``shift`` baked into the graph, and the frame
    the decoded motion is in (``root_heading``, as :class:`~genxr.components.avatar.vae.MotionVAEConfig`)."""

    stride: int
    window: int
    latent_dim: int
    width: int
    gaze_mean: float
    euler_steps: int
    shift: float
    root_heading: str = "absolute"


class WindowBaselineStep(nn.Module):
    """One step of the non-causal baseline at the full window (see the module docstring)."""

    def __init__(self, vae: MotionVAE, generator: LatentGenerator, euler_steps: int = 4, shift: float = 1.0) -> None:
        super().__init__()
        if generator.config.causal:
            raise ValueError("WindowBaselineStep needs a non-causal generator (generator.config.causal is True)")
        self.vae, self.generator = vae.eval(), generator.eval()
        self.sigmas = fm.euler_sigmas(euler_steps, shift).tolist()
        self.euler_steps, self.shift = euler_steps, shift
        with torch.no_grad():
            times = [generator.time_embed(generator.time_proj(torch.tensor([s * 1000.0])))[:, None] for s in self.sigmas[:-1]]
        self.register_buffer("times", torch.stack(times), persistent=False)  # (steps, 1, 1, width)
        self.eval()

    def spec(self) -> BaselineStepSpec:
        g = self.generator.config
        return BaselineStepSpec(stride=g.stride, window=g.transformer.window, latent_dim=g.latent_dim,
                                width=g.transformer.width, gaze_mean=float(self.generator.gaze_mean),
                                euler_steps=self.euler_steps, shift=self.shift, root_heading=self.vae.config.root_heading)

    def example_inputs(self) -> dict[str, np.ndarray]:
        """First-call inputs (zero features, empty window): the shapes and dtypes of every input."""
        spec = self.spec()
        return {"audio_features": np.zeros((1, spec.stride, AUDIO_DIM), np.float32),
                "user_features": np.zeros((1, spec.stride, USER_DIM), np.float32),
                "gaze_target": np.full(1, spec.gaze_mean, np.float32), "guidance_scale": np.ones(1, np.float32),
                "noise": np.zeros((1, spec.window, spec.latent_dim), np.float32),
                "condition_window": np.zeros((2, spec.window, spec.width), np.float32), "filled": np.zeros(1, np.int64)}

    def forward(self, audio_features, user_features, gaze_target, guidance_scale, noise, condition_window, filled):
        """One step; inputs and outputs (in :data:`INPUTS` / :data:`OUTPUTS` order) as in the module docstring."""
        generator, vae = self.generator, self.vae
        k, s = noise.shape[1], audio_features.shape[1]
        condition = generator.condition(audio_features.expand(2, -1, -1), user_features.expand(2, -1, -1),
                                        gaze_target.reshape(1, 1).expand(2, 1), torch.tensor([True, False]))
        window = torch.cat([condition_window[:, 1:], condition], 1)  # (2, K, W), newest last
        real = torch.arange(k) >= k - (filled + 1).clamp(max=k)  # (K,) chunks in the window
        chunk_positions = torch.arange(k)
        alone = torch.eye(k, dtype=torch.bool)
        bias = attention_bias(chunk_positions, chunk_positions, (real[:, None] & real[None, :]) | alone,
                              generator.transformer.slopes, generator.transformer.config.window)
        x = noise
        for index in range(self.euler_steps):
            tokens = generator._add(x.expand(2, -1, -1), self.times[index], window)
            velocity = generator.velocity_out(generator.transformer(tokens, bias))
            x = fm.euler_step(x, fm.guided_velocity(velocity[1:], velocity[:1], guidance_scale), self.sigmas[index],
                              self.sigmas[index + 1])
        tokens = vae._decoder_tokens(x * generator.latent_std + generator.latent_mean)  # (1, K (1 + S), width)
        token_positions = torch.arange(tokens.shape[1])
        token_real = real.repeat_interleave(s + 1)
        causal = token_positions[None, :] <= token_positions[:, None]
        allowed = causal & (token_real[None, :] | torch.eye(tokens.shape[1], dtype=torch.bool))
        bias = attention_bias(token_positions, token_positions, allowed, vae.decoder.slopes, vae.decoder.config.window)
        motion = vae._frames(vae.decoder(tokens, bias))[:, -s:]
        return motion, window


class EngineWindowBaseline(AvatarStream):
    """``WindowBaseline``'s API over an :class:`Engine` running :class:`WindowBaselineStep`: the
    same audio buffering, user features, noise draws and :class:`SeamFilter` (outside the graph)."""

    def __init__(self, engine: Engine, spec: BaselineStepSpec, smooth_seams: bool = True) -> None:
        if tuple(engine.input_names) != INPUTS or tuple(engine.output_names) != OUTPUTS:
            raise ValueError(f"engine {engine.name!r} has inputs {list(engine.input_names)} and outputs "
                             f"{list(engine.output_names)}; a baseline step needs {list(INPUTS)} -> {list(OUTPUTS)}")
        self.engine, self.spec = engine, spec
        self.stride, self.window = spec.stride, spec.window
        self.smooth_seams = smooth_seams
        self.reset()

    @classmethod
    def from_onnx(cls, path: str | Path, threads: int = 1) -> EngineWindowBaseline:
        """ONNX Runtime over ``path``; the spec comes from the ``.json`` report written beside it."""
        path = Path(path)
        try:
            spec = BaselineStepSpec(**json.loads(path.with_suffix(".json").read_text())["spec"])
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{str(path.with_suffix('.json'))!r} is not a baseline export report "
                             f"({type(err).__name__}: {err}); export with export_baseline_step") from None
        return cls(OnnxRuntimeEngine(path, threads=threads), spec)

    def _gaze_mean(self) -> float:
        return self.spec.gaze_mean

    def _user_facing(self) -> bool:
        """The baseline generator takes the user input."""
        return self.spec.root_heading == "user"

    def _reset_state(self) -> None:
        """The window restarts empty."""
        self.condition_window = np.zeros((2, self.window, self.spec.width), np.float32)
        self.filled = 0

    def feeds(self, user_pose: Pose | np.ndarray | None, audio_chunks: Sequence[AudioChunk] = ()) -> dict[str, np.ndarray]:
        """The engine inputs of the next step (consumes its audio, user position and noise draw)."""
        audio, user = self._frame_features(user_pose, audio_chunks)
        chunks = min(self.filled + 1, self.window)
        noise = np.zeros((1, self.window, self.spec.latent_dim), np.float32)
        noise[:, self.window - chunks:] = torch.randn((1, chunks, self.spec.latent_dim), generator=self.noise).numpy()
        return {"audio_features": audio[None].astype(np.float32), "user_features": user[None].astype(np.float32),
                "gaze_target": np.full(1, self.gaze_target, np.float32),
                "guidance_scale": np.full(1, self.guidance_scale, np.float32), "noise": noise,
                "condition_window": self.condition_window, "filled": np.full(1, self.filled, np.int64)}

    def step(self, user_pose: Pose | np.ndarray | None, audio_chunks: Sequence[AudioChunk] = ()) -> MotionChunk:
        """As :meth:`WindowBaseline.step`: the next ``stride`` frames, one engine call."""
        outputs = self.engine.run(self.feeds(user_pose, audio_chunks))
        self.condition_window = outputs["condition_window_out"]
        self.filled = min(self.filled + 1, self.window)
        return self._chunk(torch.from_numpy(np.asarray(outputs["motion"][0])))


def export_baseline_step(out: str | Path, seed: int = 0, extra_chunks: int = 8, checkpoint: Path | None = None) -> dict:
    """Exports the avatar checkpoint's non-causal baseline step (default: the shipped one) to ``out``
    (.onnx) and writes ``<out>.json``: names, shapes, the spec, per-chunk motion parity of
    ``WindowBaseline`` vs the fixed-shape torch step vs ONNX Runtime over a rollout that fills
    the window and runs ``extra_chunks`` past it (same noise seed), and median step times."""
    out = Path(out)
    models, _ = load_checkpoint(checkpoint or shipped_checkpoint())
    module = WindowBaselineStep(models["vae"], models["baseline"])
    spec = module.spec()
    out = writable_output(out)
    example = module.example_inputs()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, tuple(torch.from_numpy(example[n]) for n in INPUTS), str(out),
                          input_names=list(INPUTS), output_names=list(OUTPUTS), dynamo=True, external_data=False,
                          verbose=False)  # its progress lines would corrupt `genxr bench avatar --json`
    torch_engine, onnx_engine = TorchEngine(module, INPUTS, OUTPUTS), OnnxRuntimeEngine(out, threads=1)
    placement = AgentPlacement()
    original = WindowBaseline(models["vae"], models["baseline"], spec.euler_steps, spec.shift)
    fixed, onnx = EngineWindowBaseline(torch_engine, spec), EngineWindowBaseline(onnx_engine, spec)
    for stream in (original, fixed, onnx):
        stream.reset(seed=seed, placement=placement)
    fixed_errors, onnx_errors = [], []
    for pose, audio in conversation_chunks(spec.window + extra_chunks, spec.stride, placement):
        reference = original.step(pose, audio)
        fixed_errors.append(motion_error(reference, fixed.step(pose, audio)))
        onnx_errors.append(motion_error(reference, onnx.step(pose, audio)))
    feeds = fixed.feeds(None)  # a full window
    report = {
        "file": out.name, "opset": onnx_opset(out), "inputs": list(INPUTS), "outputs": list(OUTPUTS),
        "shapes": {n: list(example[n].shape) for n in INPUTS}, "spec": asdict(spec),
        "rollout": {"chunks": spec.window + extra_chunks, "seed": seed},
        "parity_fixed_shape_vs_window_baseline_per_chunk": fixed_errors,
        "parity_onnxruntime_vs_window_baseline_per_chunk": onnx_errors,
        "torch_ms": median_ms(lambda: torch_engine.run(feeds)),
        "onnxruntime_ms": median_ms(lambda: onnx_engine.run(feeds)),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _check_baseline_export(path: Path) -> None:
    from genxr.deploy.export.cache import check_onnx

    check_onnx(path, INPUTS)
    report = path.with_suffix(".json")
    try:
        BaselineStepSpec(**json.loads(report.read_text())["spec"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"the export report {str(report)!r} with the step's spec is unusable: "
                         f"{type(err).__name__}: {err}") from err


def baseline_onnx(checkpoint: Path | None = None, folder: Path | None = None) -> Path:
    """The checkpoint's baseline step (default: the shipped one) as ONNX, exported once into the ONNX
    cache (keyed by the checkpoint, this file's source and the avatar package's)."""
    from genxr.deploy.export.cache import cached_onnx, content_hash

    directory = Path(checkpoint) if checkpoint is not None else shipped_checkpoint()
    import genxr.components.avatar as avatar_package

    key = f"avatar-baseline-step-{content_hash(directory, Path(__file__), Path(avatar_package.__file__).parent)}"
    return cached_onnx(key, lambda out: export_baseline_step(out, checkpoint=directory), _check_baseline_export, folder)

"""The avatar's streaming step with fixed shapes, and a stream that runs it through any engine.

:class:`~genxr.components.avatar.stream.AvatarStream` keeps Python lists of KV tensors that
grow and are trimmed to the transformers' windows, so its shapes change from chunk to
chunk. :class:`AvatarChunkStep` is the same computation on fixed-size **ring buffers**:

* the generator's cache holds ``window - 1`` clean tokens per layer (31 for the shipped
  model); clean token ``t`` lives in slot ``t mod capacity``;
* the VAE decoder's cache holds ``window - 1`` tokens (79); chunk ``k`` writes its
  ``1 + stride`` tokens ``(1 + stride) k ...`` to the same modular slots;
* the only position is ``chunk_index`` (int64, chunks generated so far). From it the graph
  derives which token each slot holds (:func:`slot_positions`, negative = empty) and the
  ALiBi distances; empty slots and slots beyond the window get ``-inf`` in the attention
  mask, so a ring attends to exactly the tokens the trimmed list cache holds.

Attention only sees distances (ALiBi), so a ring in slot order gives the same result as the
list cache in time order up to the summation order of the softmax (float rounding).

One call is one whole chunk: the condition embedding, ``euler_steps`` unrolled Euler steps
with classifier-free guidance (rows: gaze kept, gaze dropped) of which the first also
writes the previous chunk's clean latent into the generator ring (masked out at chunk 0),
and one VAE-decoder step:

    inputs   audio_features (1, S, 6), user_features (1, S, 9) (avatar frame, see
             genxr.components.avatar.features), gaze_target (1,) in [0, 1],
             guidance_scale (1,), noise (1, 1, D) standard normal, pending_latent (1, 1, D)
             normalised, pending_condition (2, 1, W), chunk_index (1,) int64,
             generator_keys, generator_values (Lg, 2, heads, Cg, W / heads),
             decoder_keys, decoder_values (Lv, 1, heads, Cv, W / heads)
    outputs  motion (1, S, 135) raw motion features (avatar frame; 22 local 6D rotations then
             the pelvis translation in metres), latent (1, 1, D) and condition (2, 1, W): the
             next call's pending_latent / pending_condition, and the four updated caches

Every input and output has the same shape at every chunk. :class:`EngineAvatarStream` has
the public API of ``AvatarStream`` (``reset(...)``, ``step(user_pose, audio_chunks) ->
MotionChunk``, ``guidance_scale``, ``placement``; the same :class:`SeamFilter` on the decoded
frames, outside the graph) and so works with
:func:`~genxr.components.avatar.stream.serve_request`. Constructors:

* ``EngineAvatarStream(engine, spec)``: any :class:`~genxr.deploy.engines.base.Engine` whose
  inputs/outputs are :data:`INPUTS`/:data:`OUTPUTS`, and its :class:`AvatarStepSpec`;
* ``EngineAvatarStream.from_onnx(path, threads=1)``: an ONNX file written by
  :func:`genxr.deploy.export.avatar.export_avatar_step`, run by ONNX Runtime, its spec read
  from the ``.json`` beside it;
* ``EngineAvatarStream.from_checkpoint(directory=None, euler_steps=4)``: the eager torch
  :class:`AvatarChunkStep` of an avatar checkpoint (default: the shipped one).

Noise is drawn exactly like ``AvatarStream`` (one ``torch.Generator`` per session seeded
with ``reset(seed=...)``), so the same seed gives the same motion up to float rounding.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genxr.components import flow_matching as fm
from genxr.components.avatar.features import AUDIO_DIM, USER_DIM
from genxr.components.avatar.generator import LatentGenerator
from genxr.components.avatar.stream import AvatarStream, MotionChunk
from genxr.components.avatar.transformer import Transformer, attention_bias
from genxr.components.avatar.vae import MotionVAE
from genxr.deploy.engines.base import Engine, OnnxRuntimeEngine, TorchEngine
from genxr.platform.messages import AudioChunk, Pose

INPUTS = ("audio_features", "user_features", "gaze_target", "guidance_scale", "noise", "pending_latent",
          "pending_condition", "chunk_index", "generator_keys", "generator_values", "decoder_keys", "decoder_values")
OUTPUTS = ("motion", "latent", "condition", "generator_keys_out", "generator_values_out", "decoder_keys_out",
           "decoder_values_out")
STATE = {"pending_latent": "latent", "pending_condition": "condition", "generator_keys": "generator_keys_out",
         "generator_values": "generator_values_out", "decoder_keys": "decoder_keys_out",
         "decoder_values": "decoder_values_out"}
"""Each state input and the output that becomes its next value."""


@dataclass(frozen=True)
class AvatarStepSpec:
    """What a stream needs to drive an exported step: ``stride`` frames per chunk, ``latent_dim``,
    the training mean gaze score (default target), ``euler_steps``/``shift`` baked into the
    graph, and the shapes of the state inputs (name -> shape)."""

    stride: int
    latent_dim: int
    gaze_mean: float
    euler_steps: int
    shift: float
    state_shapes: dict[str, tuple[int, ...]]
    root_heading: str = "absolute"

    @classmethod
    def from_dict(cls, values: dict) -> AvatarStepSpec:
        values = dict(values)
        values["state_shapes"] = {name: tuple(shape) for name, shape in values["state_shapes"].items()}
        return cls(**values)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["state_shapes"] = {name: list(shape) for name, shape in self.state_shapes.items()}
        return values


def slot_positions(written: torch.Tensor, capacity: int) -> torch.Tensor:
    """(capacity,) int64 index of the token each ring slot holds after ``written`` (1,) tokens were
    written in order (token ``t`` to slot ``t mod capacity``); negative for slots still empty."""
    last = written - 1
    return last - torch.remainder(last - torch.arange(capacity), capacity)


def ring_write(ring: torch.Tensor, new: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """``ring`` (L, B, H, C, d) with ``new`` (L, B, H, n, d), tokens ``first, first + 1, ...``, written
    to slots ``(first + i) mod C`` (n <= C). A gather and a select: values are copied exactly."""
    capacity, n = ring.shape[3], new.shape[3]
    offset = torch.remainder(torch.arange(capacity) - first, capacity)  # (C,) slot's distance past `first`
    gathered = new.index_select(3, offset.clamp(max=n - 1))
    return torch.where((offset < n)[:, None], gathered, ring)


def ring_pass(transformer: Transformer, tokens: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
              written: torch.Tensor, new_allowed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``tokens`` (B, n, width), at positions ``written, written + 1, ...``, attend to the ring
    ``keys``/``values`` (L, B, heads, C, d) holding tokens ``< written`` and to each other where
    ``new_allowed`` (n, n) bool. Returns the normed output (B, n, width) and the new tokens' keys
    and values (L, B, heads, n, d); the ring itself is not changed."""
    n, capacity = tokens.shape[1], keys.shape[3]
    cached = slot_positions(written, capacity)
    queries = written + torch.arange(n)
    allowed = torch.cat([(cached >= 0)[None].expand(n, capacity), new_allowed], 1)
    bias = attention_bias(queries, torch.cat([cached, queries]), allowed, transformer.slopes, transformer.config.window)
    x, new_keys, new_values = tokens, [], []
    for index, block in enumerate(transformer.blocks):
        x, (k, v) = block(x, bias, (keys[index], values[index]))
        new_keys.append(k[:, :, capacity:])
        new_values.append(v[:, :, capacity:])
    return transformer.norm(x), torch.stack(new_keys), torch.stack(new_values)


class AvatarChunkStep(nn.Module):
    """One chunk of the causal avatar on ring-buffer caches (see the module docstring)."""

    def __init__(self, vae: MotionVAE, generator: LatentGenerator, euler_steps: int = 4, shift: float = 1.0) -> None:
        super().__init__()
        if not generator.config.causal:
            raise ValueError("AvatarChunkStep needs a causal generator (generator.config.causal is False)")
        if vae.config.latent_dim != generator.config.latent_dim or vae.config.stride != generator.config.stride:
            raise ValueError(f"vae (latent_dim {vae.config.latent_dim}, stride {vae.config.stride}) and generator "
                             f"(latent_dim {generator.config.latent_dim}, stride {generator.config.stride}) do not match")
        self.vae, self.generator = vae.eval(), generator.eval()
        self.sigmas = fm.euler_sigmas(euler_steps, shift).tolist()
        self.euler_steps, self.shift = euler_steps, shift
        with torch.no_grad():  # the same embeddings AvatarStream memoises, one per noise level
            times = [generator.time_embed(generator.time_proj(torch.tensor([s * 1000.0])))[:, None]
                     for s in [0.0, *self.sigmas[:-1]]]
        self.register_buffer("times", torch.stack(times), persistent=False)  # (1 + steps, 1, 1, width)
        self.eval()

    def spec(self) -> AvatarStepSpec:
        g, v = self.generator.config, self.vae.config
        generator_cache = (g.transformer.depth, 2, g.transformer.heads, g.transformer.window - 1,
                           g.transformer.width // g.transformer.heads)
        decoder_cache = (v.transformer.depth, 1, v.transformer.heads, v.transformer.window - 1,
                         v.transformer.width // v.transformer.heads)
        return AvatarStepSpec(
            stride=g.stride, latent_dim=g.latent_dim, gaze_mean=float(self.generator.gaze_mean),
            euler_steps=self.euler_steps, shift=self.shift, root_heading=v.root_heading,
            state_shapes={"pending_latent": (1, 1, g.latent_dim), "pending_condition": (2, 1, g.transformer.width),
                          "generator_keys": generator_cache, "generator_values": generator_cache,
                          "decoder_keys": decoder_cache, "decoder_values": decoder_cache})

    def example_inputs(self) -> dict[str, np.ndarray]:
        """Chunk-0 inputs (zero features, empty caches): the shapes and dtypes of every input."""
        spec = self.spec()
        inputs = {"audio_features": np.zeros((1, spec.stride, AUDIO_DIM), np.float32),
                  "user_features": np.zeros((1, spec.stride, USER_DIM), np.float32),
                  "gaze_target": np.full(1, spec.gaze_mean, np.float32), "guidance_scale": np.ones(1, np.float32),
                  "noise": np.zeros((1, 1, spec.latent_dim), np.float32), "chunk_index": np.zeros(1, np.int64)}
        inputs.update({name: np.zeros(shape, np.float32) for name, shape in spec.state_shapes.items()})
        return {name: inputs[name] for name in INPUTS}

    def forward(self, audio_features, user_features, gaze_target, guidance_scale, noise, pending_latent,
                pending_condition, chunk_index, generator_keys, generator_values, decoder_keys, decoder_values):
        """One chunk; inputs and outputs (in :data:`INPUTS` / :data:`OUTPUTS` order) as in the module docstring."""
        generator, vae = self.generator, self.vae
        condition = generator.condition(audio_features.expand(2, -1, -1), user_features.expand(2, -1, -1),
                                        gaze_target.reshape(1, 1).expand(2, 1), torch.tensor([True, False]))
        has_pending = chunk_index > 0
        clean_written = (chunk_index - 1).clamp(min=0)
        # Euler step 1: the pending clean token (position k - 1, hidden at chunk 0) and the noisy one (k).
        link = torch.stack([torch.tensor([True, False]), torch.cat([has_pending, torch.tensor([True])])])  # (2, 2)
        clean = generator._add(pending_latent.expand(2, -1, -1), self.times[0], pending_condition)
        x = noise
        noisy = generator._add(x.expand(2, -1, -1), self.times[1], condition)
        hidden, clean_keys, clean_values = ring_pass(generator.transformer, torch.cat([clean, noisy], 1),
                                                     generator_keys, generator_values, clean_written, link)
        generator_keys = ring_write(generator_keys, clean_keys[:, :, :, :1], clean_written)
        generator_values = ring_write(generator_values, clean_values[:, :, :, :1], clean_written)
        velocity = generator.velocity_out(hidden[:, 1:])
        x = fm.euler_step(x, fm.guided_velocity(velocity[1:], velocity[:1], guidance_scale), self.sigmas[0], self.sigmas[1])
        for index in range(1, self.euler_steps):
            tokens = generator._add(x.expand(2, -1, -1), self.times[index + 1], condition)
            hidden, _, _ = ring_pass(generator.transformer, tokens, generator_keys, generator_values, chunk_index,
                                     torch.ones(1, 1, dtype=torch.bool))
            velocity = generator.velocity_out(hidden)
            x = fm.euler_step(x, fm.guided_velocity(velocity[1:], velocity[:1], guidance_scale), self.sigmas[index],
                              self.sigmas[index + 1])
        latent = x * generator.latent_std + generator.latent_mean
        tokens = vae._decoder_tokens(latent)  # (1, 1 + S, width)
        n = tokens.shape[1]
        decoder_written = chunk_index * n
        causal = torch.arange(n)[None, :] <= torch.arange(n)[:, None]
        hidden, new_keys, new_values = ring_pass(vae.decoder, tokens, decoder_keys, decoder_values, decoder_written, causal)
        motion = vae._frames(hidden)
        return (motion, x, condition, generator_keys, generator_values,
                ring_write(decoder_keys, new_keys, decoder_written), ring_write(decoder_values, new_values, decoder_written))


class EngineAvatarStream(AvatarStream):
    """``AvatarStream``'s API over an :class:`Engine` running :class:`AvatarChunkStep` (see module
    docstring). ``state`` holds the state tensors (numpy, names as in :data:`STATE`). It reuses
    AvatarStream's audio buffering, user features and chunk assembly, and holds no torch modules:
    AvatarStream's ``vae``, ``generator`` and list caches do not exist here."""

    def __init__(self, engine: Engine, spec: AvatarStepSpec, smooth_seams: bool = True) -> None:
        if tuple(engine.input_names) != INPUTS or tuple(engine.output_names) != OUTPUTS:
            raise ValueError(f"engine {engine.name!r} has inputs {list(engine.input_names)} and outputs "
                             f"{list(engine.output_names)}; an avatar step needs {list(INPUTS)} -> {list(OUTPUTS)}")
        self.engine, self.spec = engine, spec
        self.stride = spec.stride
        self.smooth_seams = smooth_seams
        self.reset()

    @classmethod
    def from_onnx(cls, path: str | os.PathLike[str], threads: int = 1) -> EngineAvatarStream:
        """ONNX Runtime over ``path``; the spec comes from the ``.json`` report written beside it."""
        path = Path(path)
        report_path = path.with_suffix(".json")
        if not report_path.is_file():
            raise FileNotFoundError(f"{str(report_path)!r} (the export report with the step's spec) does not exist; "
                                    "export with `genxr export onnx --model avatar`")
        try:
            spec = AvatarStepSpec.from_dict(json.loads(report_path.read_text())["spec"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{str(report_path)!r} is not an avatar export report ({type(err).__name__}: {err})") from None
        return cls(OnnxRuntimeEngine(path, threads=threads), spec)

    @classmethod
    def from_checkpoint(cls, directory: Path | None = None, euler_steps: int = 4) -> EngineAvatarStream:
        """The eager torch step of the avatar checkpoint in ``directory`` (default: the shipped one)."""
        from genxr.components.avatar.checkpoint import load_checkpoint, shipped_checkpoint

        models, _ = load_checkpoint(directory or shipped_checkpoint())
        step = AvatarChunkStep(models["vae"], models["generator"], euler_steps)
        return cls(TorchEngine(step, INPUTS, OUTPUTS), step.spec())

    def _gaze_mean(self) -> float:
        return self.spec.gaze_mean

    def _user_facing(self) -> bool:
        """The exported step is the main generator's, which takes the user input."""
        return self.spec.root_heading == "user"

    def _reset_state(self) -> None:
        """The ring buffers restart empty."""
        self.state = {name: np.zeros(shape, np.float32) for name, shape in self.spec.state_shapes.items()}

    def feeds(self, user_pose: Pose | np.ndarray | None, audio_chunks: Sequence[AudioChunk] = ()
              ) -> dict[str, np.ndarray]:
        """The engine inputs of the next chunk (consumes its audio, user position and noise draw)."""
        audio, user = self._frame_features(user_pose, audio_chunks)
        noise = torch.randn((1, 1, self.spec.latent_dim), generator=self.noise).numpy()
        return {"audio_features": audio[None].astype(np.float32), "user_features": user[None].astype(np.float32),
                "gaze_target": np.full(1, self.gaze_target, np.float32),
                "guidance_scale": np.full(1, self.guidance_scale, np.float32), "noise": noise,
                "chunk_index": np.full(1, self.frame // self.stride, np.int64), **self.state}

    def step(self, user_pose: Pose | np.ndarray | None, audio_chunks: Sequence[AudioChunk] = ()) -> MotionChunk:
        """As :meth:`AvatarStream.step`: the next ``stride`` frames, one engine call."""
        return self.advance(self.engine.run(self.feeds(user_pose, audio_chunks)))

    def advance(self, outputs: dict[str, np.ndarray]) -> MotionChunk:
        """Takes the engine ``outputs`` of the chunk :meth:`feeds` prepared: keeps the new state and
        returns the chunk's motion."""
        self.state = {name: outputs[output] for name, output in STATE.items()}
        return self._chunk(torch.from_numpy(np.asarray(outputs["motion"][0])))

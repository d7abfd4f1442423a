"""Causal flow-matching generator of motion latents, conditioned on audio, user and gaze score.

One token per latent (``stride`` = S frames). Token ``k`` sums projections of: its latent
at noise level ``s`` (B, K, latent_dim, normalised latents), the audio features of both
speakers (S x 6) and the user features (S x 9) of its S frames (see
:mod:`genxr.components.avatar.features`; zeroed when ``use_user_position`` is False, the
spatial ablation), the gaze score (or a learned null embedding where it is dropped, for
classifier-free guidance) and the embedding of ``s`` (diffusers ``Timesteps`` +
``TimestepEmbedding`` of ``1000 s``). The head predicts the flow velocity ``noise - x0``
(:mod:`genxr.components.flow_matching`).

Causal training mirrors streaming exactly (teacher forcing, two streams): the sequence
``[clean_0 .. clean_{K-1}, noisy_0 .. noisy_{K-1}]`` where clean tokens (s = 0) attend
causally to clean tokens, and noisy token ``k`` attends to clean tokens ``< k`` and to
itself. In streaming the clean tokens are the KV cache, written by one pass at s = 0 after
each chunk's last Euler step. With ``causal`` False (the non-causal baseline) all K tokens
share one noise level and attend to each other inside the window.
"""

from __future__ import annotations

from dataclasses import field
from typing import Annotated

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from pydantic import ConfigDict, Field, PositiveInt
from pydantic.dataclasses import dataclass as pydantic_dataclass
from torch import nn

from genxr.components import flow_matching as fm
from genxr.components.avatar.features import AUDIO_DIM, USER_DIM
from genxr.components.avatar.transformer import KVCache, Transformer, TransformerConfig, attention_bias, causal_bias


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class LatentGeneratorConfig:
    """``window`` (tokens) bounds the context; ``gaze_drop_prob`` is the CFG dropout per sequence;
    ``context_noise``: in causal training each context (clean-stream) token is noised to a level drawn
    uniformly from ``[0, context_noise]`` and told its level (noise augmentation, as GameNGen and
    Diffusion Forcing do against exposure bias); streaming writes clean tokens at level 0. Validated."""

    latent_dim: PositiveInt = 16
    stride: PositiveInt = 4
    transformer: TransformerConfig = field(default_factory=lambda: TransformerConfig(width=96, depth=4, heads=4, window=32))
    causal: bool = True
    use_user_position: bool = True
    gaze_drop_prob: Annotated[float, Field(ge=0.0, le=1.0)] = 0.2
    context_noise: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0


GENERATOR_PRESETS: dict[str, LatentGeneratorConfig] = {
    "tiny": LatentGeneratorConfig(transformer=TransformerConfig(width=32, depth=1, heads=2, window=16), context_noise=0.2),
    "cpu": LatentGeneratorConfig(context_noise=0.2),
    "gpu": LatentGeneratorConfig(latent_dim=32, transformer=TransformerConfig(width=256, depth=8, heads=8, window=64),
                                 context_noise=0.2),
}


class LatentGenerator(nn.Module):
    """Velocity field ``v(x_s, s | audio, user, gaze)`` over latent tokens."""

    def __init__(self, config: LatentGeneratorConfig) -> None:
        super().__init__()
        self.config = config
        width = config.transformer.width
        self.latent_in = nn.Linear(config.latent_dim, width)
        self.condition_in = nn.Linear(config.stride * (AUDIO_DIM + USER_DIM), width)
        self.gaze_in = nn.Linear(1, width)
        self.gaze_null = nn.Parameter(torch.zeros(width))
        self.time_proj = Timesteps(width, flip_sin_to_cos=True, downscale_freq_shift=0.0)
        self.time_embed = TimestepEmbedding(width, width)
        self.transformer = Transformer(config.transformer)
        self.velocity_out = nn.Linear(width, config.latent_dim)
        self.register_buffer("latent_mean", torch.zeros(config.latent_dim))
        self.register_buffer("latent_std", torch.ones(config.latent_dim))
        self.register_buffer("gaze_mean", torch.tensor(0.5))
        self.register_buffer("gaze_std", torch.tensor(1.0))
        self._time_memo: dict[float, torch.Tensor] = {}

    def condition(self, audio: torch.Tensor, user: torch.Tensor, gaze: torch.Tensor, gaze_kept: torch.Tensor
                  ) -> torch.Tensor:
        """Per-token condition embedding (B, K, width).

        ``audio`` (B, K * S, 6), ``user`` (B, K * S, 9) per frame; ``gaze`` (B, K) scores in
        [0, 1]; ``gaze_kept`` (B,) or (B, K) bool: False uses the null embedding instead.
        """
        b, t, _ = audio.shape
        k = t // self.config.stride
        if not self.config.use_user_position:
            user = torch.zeros_like(user)
        frames = torch.cat([audio, user], -1)[:, : k * self.config.stride].reshape(b, k, -1)
        gaze_embedding = self.gaze_in(((gaze - self.gaze_mean) / self.gaze_std)[..., None])
        kept = gaze_kept.reshape(b, -1, 1).to(gaze_embedding.dtype)
        return self.condition_in(frames) + kept * gaze_embedding + (1.0 - kept) * self.gaze_null

    def _tokens(self, x: torch.Tensor, s: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        time = self.time_embed(self.time_proj(s.reshape(-1) * 1000.0)).view(*s.shape, -1)
        return self._add(x, time, condition)

    def _add(self, x: torch.Tensor, time: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        if time.dim() == 2:
            time = time[:, None]
        return self.latent_in(x) + condition + time

    def forward_sequence(self, x0: torch.Tensor, x_s: torch.Tensor, s: torch.Tensor, condition: torch.Tensor,
                         s_context: torch.Tensor | None = None) -> torch.Tensor:
        """Training pass. Causal: ``x0`` context and ``x_s`` noisy latents (B, K, D), ``s`` (B, K), and
        ``s_context`` (B, K) the context tokens' noise levels (default 0: clean); non-causal: ``x_s``
        (B, K, D) and ``s`` (B,) (``x0`` unused). Returns velocities (B, K, D)."""
        k = x_s.shape[1]
        window = self.config.transformer.window
        if not self.config.causal:
            tokens = self._tokens(x_s, s, condition)
            return self.velocity_out(self.transformer(tokens, causal_bias(k, self.transformer.slopes, window, causal=False)))
        clean = self._tokens(x0, torch.zeros_like(s) if s_context is None else s_context, condition)
        noisy = self._tokens(x_s, s, condition)
        index = torch.arange(k)
        positions = torch.cat([index, index])
        is_noisy = torch.cat([torch.zeros(k, dtype=torch.bool), torch.ones(k, dtype=torch.bool)])
        query_noisy, key_noisy = is_noisy[:, None], is_noisy[None, :]
        q, kk = positions[:, None], positions[None, :]
        allowed = (~key_noisy & ~query_noisy & (kk <= q)) | (~key_noisy & query_noisy & (kk < q)) | (
            key_noisy & query_noisy & (kk == q))
        bias = attention_bias(positions, positions, allowed, self.transformer.slopes, window)
        hidden = self.transformer(torch.cat([clean, noisy], 1), bias)
        return self.velocity_out(hidden[:, k:])

    def _time_of(self, s: float) -> torch.Tensor:
        """(1, 1, width) embedding of one noise level, memoised for inference (a handful of sigmas)."""
        key = float(s)
        if self.training or key not in self._time_memo:
            embedding = self.time_embed(self.time_proj(torch.tensor([key * 1000.0])))[:, None]
            if self.training:
                return embedding
            self._time_memo[key] = embedding
        return self._time_memo[key]

    def step(self, x_s: torch.Tensor, s: float, condition: torch.Tensor, cache: KVCache | None
             ) -> tuple[torch.Tensor, KVCache]:
        """Streaming: velocity (B, 1, D) of the newest token ``x_s`` (B, 1, D) at level ``s`` given the
        cache of clean past tokens; also returns the cache extended by this token (keep it only
        for the s = 0 pass)."""
        hidden, new_cache = self.transformer.step(self._add(x_s, self._time_of(s), condition), cache)
        return self.velocity_out(hidden), new_cache

    def step_with_clean(self, clean: torch.Tensor, clean_condition: torch.Tensor, x_s: torch.Tensor, s: float,
                        condition: torch.Tensor, cache: KVCache | None) -> tuple[torch.Tensor, KVCache]:
        """:meth:`step` for ``x_s`` preceded, in the same pass, by the previous token ``clean`` (B, 1, D)
        at s = 0; returns the velocity of ``x_s`` and the cache extended by the clean token only."""
        tokens = torch.cat([self._add(clean, self._time_of(0.0), clean_condition), self._add(x_s, self._time_of(s), condition)], 1)
        hidden, new_cache = self.transformer.step(tokens, cache, append=1)
        return self.velocity_out(hidden[:, 1:]), new_cache

    def window_velocity(self, x_s: torch.Tensor, s: float, condition: torch.Tensor) -> torch.Tensor:
        """Non-causal baseline: velocities (B, K, D) of a whole window at one level ``s``, no cache."""
        hidden, _ = self.transformer.step(self._add(x_s, self._time_of(s), condition), None, causal_new=False)
        return self.velocity_out(hidden)

    def loss(self, latents: torch.Tensor, condition_inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Flow-matching loss on normalised ``latents`` (B, K, D) with the gaze score dropped at random."""
        audio, user, gaze = condition_inputs
        b, k, _ = latents.shape
        kept = torch.rand(b, generator=generator) >= self.config.gaze_drop_prob
        condition = self.condition(audio, user, gaze, kept)
        noise = torch.randn(latents.shape, generator=generator)
        shape = (b, k) if self.config.causal else (b,)
        s = fm.sample_noise_levels(shape, generator)
        x_s = fm.interpolate(latents, noise, s)
        context, s_context = latents, None
        if self.config.causal and self.config.context_noise > 0:
            s_context = torch.rand((b, k), generator=generator) * self.config.context_noise
            context = fm.interpolate(latents, torch.randn(latents.shape, generator=generator), s_context)
        velocity = self.forward_sequence(context, x_s, s, condition, s_context)
        return fm.flow_matching_loss(velocity, latents, noise)

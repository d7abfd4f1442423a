"""Causal transformer VAE over motion: one latent token per ``stride`` frames.

Encoder sequence (interleaved, SARAH-style): ``[f_0 .. f_{S-1}, L_0, f_S .. f_{2S-1}, L_1, ...]``
of frame tokens (projected normalised motion features) and learned latent-query tokens;
causal attention, so latent ``k`` summarises frames ``<= (k + 1) S - 1``. Its output is
(mu, log variance) of a ``latent_dim`` Gaussian.

Decoder sequence: ``[z_0, q_0 .. q_{S-1}, z_1, q_0 .. q_{S-1}, ...]`` of projected latents and
learned per-offset frame queries; causal, so frames of chunk ``k`` depend on latents
``0 .. k`` only, and streaming decodes one chunk (1 + S tokens) per step on a KV cache.

Motion enters and leaves normalised: ``(features - mean) / std`` with the data set's
statistics, kept in the model as buffers (saved with the checkpoint).
"""

from __future__ import annotations

from dataclasses import field
from typing import Literal

import torch
from pydantic import ConfigDict, NonNegativeFloat, PositiveInt
from pydantic.dataclasses import dataclass as pydantic_dataclass
from torch import nn

from genxr.components.avatar.features import MOTION_DIM
from genxr.components.avatar.transformer import KVCache, Transformer, TransformerConfig, causal_bias


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class MotionVAEConfig:
    """``stride`` frames per latent token; ``window`` in the transformers counts tokens (S + 1 per chunk).

    ``root_heading``: the frame the motion is encoded in. ``"absolute"``: the avatar frame.
    ``"user"``: the *user-facing frame*, each frame turned about the vertical axis through the
    stance point by minus the bearing of the user's head (its +Z points at the user), so a body
    that faces the user has heading 0 whatever the user's position; streams turn the decoded
    frames back by the bearing they were given (:func:`~genxr.components.avatar.features.turn_about_stance`).
    Validated (sizes positive, weights non-negative, ``root_heading`` one of the two).
    """

    motion_dim: PositiveInt = MOTION_DIM
    latent_dim: PositiveInt = 16
    stride: PositiveInt = 4
    transformer: TransformerConfig = field(default_factory=lambda: TransformerConfig(width=96, depth=3, heads=4, window=80))
    kl_weight: NonNegativeFloat = 1e-4
    velocity_weight: NonNegativeFloat = 2.0
    root_heading: Literal["absolute", "user"] = "user"


VAE_PRESETS: dict[str, MotionVAEConfig] = {
    "tiny": MotionVAEConfig(transformer=TransformerConfig(width=32, depth=1, heads=2, window=40)),
    "cpu": MotionVAEConfig(),
    "gpu": MotionVAEConfig(latent_dim=32, transformer=TransformerConfig(width=256, depth=6, heads=8, window=160)),
}


class MotionVAE(nn.Module):
    """Causal encoder (motion -> latents) and causal decoder (latents -> motion)."""

    def __init__(self, config: MotionVAEConfig) -> None:
        super().__init__()
        self.config = config
        width = config.transformer.width
        self.frame_in = nn.Linear(config.motion_dim, width)
        self.latent_query = nn.Parameter(torch.randn(width) * 0.02)
        self.encoder = Transformer(config.transformer)
        self.to_posterior = nn.Linear(width, 2 * config.latent_dim)
        self.latent_in = nn.Linear(config.latent_dim, width)
        self.frame_queries = nn.Parameter(torch.randn(config.stride, width) * 0.02)
        self.decoder = Transformer(config.transformer)
        self.frame_out = nn.Linear(width, config.motion_dim)
        self.register_buffer("motion_mean", torch.zeros(config.motion_dim))
        self.register_buffer("motion_std", torch.ones(config.motion_dim))

    def normalise(self, motion: torch.Tensor) -> torch.Tensor:
        return (motion - self.motion_mean) / self.motion_std

    def denormalise(self, normalised: torch.Tensor) -> torch.Tensor:
        return normalised * self.motion_std + self.motion_mean

    def encode(self, motion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``motion`` (B, K * S, 135) raw features -> mu, log variance (B, K, latent_dim)."""
        b, t, _ = motion.shape
        s = self.config.stride
        k = t // s
        frames = self.frame_in(self.normalise(motion[:, : k * s])).view(b, k, s, -1)
        queries = self.latent_query.expand(b, k, 1, -1)
        tokens = torch.cat([frames, queries], 2).reshape(b, k * (s + 1), -1)
        hidden = self.encoder(tokens, causal_bias(tokens.shape[1], self.encoder.slopes, self.encoder.config.window))
        mu, log_var = self.to_posterior(hidden[:, s:: s + 1]).chunk(2, dim=-1)
        return mu, log_var.clamp(-10.0, 5.0)

    def _decoder_tokens(self, latents: torch.Tensor) -> torch.Tensor:
        b, k, _ = latents.shape
        z = self.latent_in(latents)[:, :, None]
        return torch.cat([z, self.frame_queries.expand(b, k, -1, -1)], 2).reshape(b, k * (self.config.stride + 1), -1)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``latents`` (B, K, latent_dim) -> raw motion features (B, K * S, 135), whole sequence."""
        tokens = self._decoder_tokens(latents)
        hidden = self.decoder(tokens, causal_bias(tokens.shape[1], self.decoder.slopes, self.decoder.config.window))
        return self._frames(hidden)

    def decode_step(self, latent: torch.Tensor, cache: KVCache | None) -> tuple[torch.Tensor, KVCache]:
        """Streaming: one latent (B, 1, latent_dim) -> (B, S, 135) raw frames and the updated cache."""
        hidden, cache = self.decoder.step(self._decoder_tokens(latent), cache)
        return self._frames(hidden), cache

    def _frames(self, hidden: torch.Tensor) -> torch.Tensor:
        b = hidden.shape[0]
        s = self.config.stride
        queries = hidden.view(b, -1, s + 1, hidden.shape[-1])[:, :, 1:]
        return self.denormalise(self.frame_out(queries.reshape(b, -1, hidden.shape[-1])))

    def loss(self, motion: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Reconstruction (normalised features and their frame-to-frame velocity) plus weighted KL."""
        mu, log_var = self.encode(motion)
        z = mu + torch.randn(mu.shape, generator=generator) * torch.exp(0.5 * log_var)
        target = self.normalise(motion[:, : z.shape[1] * self.config.stride])
        recon = self.normalise(self.decode(z))
        reconstruction = torch.mean((recon - target) ** 2)
        velocity = torch.mean((recon.diff(dim=1) - target.diff(dim=1)) ** 2)
        kl = -0.5 * torch.mean(1 + log_var - mu ** 2 - log_var.exp())
        total = reconstruction + self.config.velocity_weight * velocity + self.config.kl_weight * kl
        return total, {"recon": reconstruction.item(), "velocity": velocity.item(), "kl": kl.item()}

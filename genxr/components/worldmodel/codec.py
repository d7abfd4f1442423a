"""Frame codec: a linear patch autoencoder fitted by PCA, 64x64 RGB <-> an 8x8 latent grid.

Each 8x8 RGB patch (192 numbers) is projected on the ``latent_channels`` leading principal
components of training patches: ``encode`` images (B, 3, H, W) in [0, 1] -> latents
(B, C, H / 8, W / 8); ``decode`` maps them back (clamped to [0, 1]). Latents are divided
by one global scale (their RMS on the training frames), so flow matching sees about unit
variance while the leading components keep their larger share of it.

Why not a convolutional autoencoder (or diffusers' ``AutoencoderKL``): pixel-space patches
are as good here and far cheaper. The PCA fit takes seconds, is the optimal linear code for
its size, and decodes a frame with one (64 x C) @ (C x 192) matrix product; a conv
autoencoder would take the whole CPU training budget. What each cost and the measured
reconstruction PSNR are in docs/worldmodel.md ("Pieces", "Results").
"""

from __future__ import annotations

import torch
from pydantic import ConfigDict, PositiveInt
from pydantic.dataclasses import dataclass as pydantic_dataclass
from torch import nn


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class FrameCodecConfig:
    """``resolution`` pixels square, ``patch`` pixels per latent cell, ``latent_channels`` per cell
    (validated: a checkpoint's config.json is checked against this class)."""

    resolution: PositiveInt = 64
    patch: PositiveInt = 8
    latent_channels: PositiveInt = 16

    def __post_init__(self) -> None:
        if self.resolution % self.patch:
            raise ValueError(f"resolution {self.resolution} must be a multiple of patch {self.patch}")
        if self.latent_channels > 3 * self.patch ** 2:
            raise ValueError(f"latent_channels {self.latent_channels} must be in [1, {3 * self.patch ** 2}]")

    @property
    def latent_size(self) -> int:
        return self.resolution // self.patch


CODEC_PRESETS: dict[str, FrameCodecConfig] = {
    "tiny": FrameCodecConfig(latent_channels=8),
    "cpu": FrameCodecConfig(),
    "gpu": FrameCodecConfig(latent_channels=32),
}


class FrameCodec(nn.Module):
    """PCA patch codec; ``mean`` (D,), ``components`` (C, D) and ``scale`` () are buffers, D = 3 patch^2."""

    def __init__(self, config: FrameCodecConfig) -> None:
        super().__init__()
        if config.resolution % config.patch:
            raise ValueError(f"resolution {config.resolution} must be a multiple of patch {config.patch}")
        self.config = config
        d = 3 * config.patch ** 2
        if not 1 <= config.latent_channels <= d:
            raise ValueError(f"latent_channels {config.latent_channels} must be in [1, {d}]")
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("components", torch.eye(d)[: config.latent_channels].clone())
        self.register_buffer("scale", torch.ones(()))

    def patches(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, h, w, 3 p^2) patch vectors (channel-major inside a patch)."""
        b, c, height, width = images.shape
        p = self.config.patch
        x = images.reshape(b, c, height // p, p, width // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(b, height // p, width // p, c * p * p)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> normalised latents (B, C, H / p, W / p)."""
        codes = (self.patches(images) - self.mean) @ self.components.T / self.scale
        return codes.permute(0, 3, 1, 2)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, C, h, w) -> images (B, 3, h p, w p) clamped to [0, 1]."""
        return self._unpatch(self._linear(latents) + self.mean).clamp(0.0, 1.0)

    def decode_change(self, latents: torch.Tensor) -> torch.Tensor:
        """The pixel change (B, 3, h p, w p), unclamped, of a latent *difference* (B, C, h, w): the linear
        part of :meth:`decode` (no mean), so ``decode(a) == decode(b) + decode_change(a - b)`` before clamping."""
        return self._unpatch(self._linear(latents))

    def _linear(self, latents: torch.Tensor) -> torch.Tensor:
        return (latents.permute(0, 2, 3, 1) * self.scale) @ self.components

    def _unpatch(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w = x.shape[:3]
        p = self.config.patch
        x = x.reshape(b, h, w, 3, p, p).permute(0, 3, 1, 4, 2, 5)
        return x.reshape(b, 3, h * p, w * p)

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> None:
        """Fits mean, principal components and scale to ``images`` (B, 3, H, W) in [0, 1]."""
        x = self.patches(images).reshape(-1, self.mean.numel()).double()
        mean = x.mean(0)
        covariance = (x - mean).T @ (x - mean) / (x.shape[0] - 1)
        _, vectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
        components = vectors.flip(1)[:, : self.config.latent_channels].T
        self.mean.copy_(mean.float())
        self.components.copy_(components.float())
        codes = (x - mean) @ components.T
        self.scale.copy_(codes.pow(2).mean().sqrt().float())


"""A small Vision Transformer (SimpleViT-style: patch conv, learned positions, mean pooling).

Channels: MLP hidden units (fc1 rows / fc2 columns) and attention heads; the residual
stream passes LayerNorms, which mix channels, so it is left whole.
Input (B, 3, H, W) -> logits (B, num_classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genxr.compression.research.models.attention import Attention


@dataclass(frozen=True)
class ViTConfig:
    """Constructor arguments: ``image_size`` / ``patch`` tokens per side, ``dim`` the stream width."""

    num_classes: int = 10
    image_size: int = 32
    patch: int = 4
    dim: int = 128
    depth: int = 4
    num_heads: int = 4
    mlp_dim: int = 256
    in_channels: int = 3


class ViTBlock(nn.Module):
    """Pre-norm block: x + attn(LN(x)), then x + fc2(GELU(fc1(LN(x))))."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, num_heads, dim // num_heads, causal=False, rotary=False)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(mlp_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    """``ViT(**asdict(ViTConfig()))``: 4 blocks of width 128, 0.8M parameters."""

    def __init__(self, num_classes: int = 10, image_size: int = 32, patch: int = 4, dim: int = 128, depth: int = 4,
                 num_heads: int = 4, mlp_dim: int = 256, in_channels: int = 3) -> None:
        super().__init__()
        self.config = ViTConfig(num_classes, image_size, patch, dim, depth, num_heads, mlp_dim, in_channels)
        self.patch_embed = nn.Conv2d(in_channels, dim, patch, patch)
        self.pos = nn.Parameter(torch.randn(1, (image_size // patch) ** 2, dim) * 0.02)
        self.blocks = nn.Sequential(*[ViTBlock(dim, num_heads, mlp_dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos
        return self.head(self.norm(self.blocks(tokens)).mean(dim=1))

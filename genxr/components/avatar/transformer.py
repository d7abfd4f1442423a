"""Pre-norm transformer with ALiBi distance biases, windowed masks and a rolling KV cache.

Shared by the motion VAE and the latent generator. Tokens carry no absolute position:
attention is biased by ``-slope_h * (query_position - key_position)`` (ALiBi, Press et
al. 2022), so a cache of plain key/value tensors can roll forever without positions
growing. Every query sees at most ``window`` tokens (itself included) in training and in
streaming alike, which bounds the cache to ``window - 1`` tokens per layer.

Shapes: tokens ``(B, N, width)``; a cache is a list (one per layer) of ``(k, v)`` tensors
``(B, heads, L, width / heads)``, oldest first. Feed-forward layers are diffusers'
``FeedForward``; norms are torch's ``nn.RMSNorm`` (diffusers' ``RMSNorm`` has the same
parameters but casts dtypes on every call, a real share of a streaming step: docs/avatar.md, "Speed");
attention is torch's ``scaled_dot_product_attention`` with an additive float mask.
"""

from __future__ import annotations

import torch
from diffusers.models.attention import FeedForward
from pydantic import ConfigDict, PositiveInt
from pydantic.dataclasses import dataclass as pydantic_dataclass
from torch import nn
from torch.nn import functional as F

KVCache = list[tuple[torch.Tensor, torch.Tensor]]


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class TransformerConfig:
    """``width`` channels, ``depth`` blocks, ``heads`` attention heads, ``window`` tokens seen per query
    (validated: sizes positive, ``width`` a multiple of ``heads``)."""

    width: PositiveInt = 96
    depth: PositiveInt = 3
    heads: PositiveInt = 4
    window: PositiveInt = 64

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be a multiple of heads {self.heads}")


def alibi_slopes(heads: int) -> torch.Tensor:
    """(heads,) geometric slopes 2^(-8 h / heads), h = 1..heads."""
    return torch.pow(2.0, -8.0 * torch.arange(1, heads + 1, dtype=torch.float32) / heads)


def attention_bias(query_positions: torch.Tensor, key_positions: torch.Tensor, allowed: torch.Tensor,
                   slopes: torch.Tensor, window: int) -> torch.Tensor:
    """(heads, Nq, Nk) additive mask: ALiBi distance penalty where ``allowed`` (Nq, Nk) and the
    distance is inside ``[-(window - 1), window - 1]``; ``-inf`` elsewhere."""
    distance = (query_positions[:, None] - key_positions[None, :]).to(torch.float32)
    allowed = allowed & (distance.abs() < window)
    bias = -slopes[:, None, None] * distance.abs()[None]
    return bias.masked_fill(~allowed[None], float("-inf"))


def causal_bias(n: int, slopes: torch.Tensor, window: int, causal: bool = True) -> torch.Tensor:
    """(heads, n, n) mask for a plain sequence: causal (or bidirectional) inside ``window``."""
    positions = torch.arange(n)
    allowed = positions[:, None] >= positions[None, :] if causal else torch.ones(n, n, dtype=torch.bool)
    return attention_bias(positions, positions, allowed, slopes, window)


class Block(nn.Module):
    """RMSNorm -> multi-head attention -> RMSNorm -> GELU feed-forward, both residual."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.attn_norm = nn.RMSNorm(config.width, eps=1e-6)
        self.qkv = nn.Linear(config.width, 3 * config.width)
        self.out = nn.Linear(config.width, config.width)
        self.ff_norm = nn.RMSNorm(config.width, eps=1e-6)
        self.ff = FeedForward(config.width, mult=4, activation_fn="gelu")

    def forward(self, x: torch.Tensor, bias: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``x`` (B, N, width) attends to ``past`` keys/values then to its own; returns the output and
        all keys/values attended to (past first)."""
        b, n, width = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).view(b, n, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        keys, values = (k, v) if past is None else (torch.cat([past[0], k], 2), torch.cat([past[1], v], 2))
        attended = F.scaled_dot_product_attention(q, keys, values, attn_mask=bias.to(q.dtype))
        x = x + self.out(attended.transpose(1, 2).reshape(b, n, width))
        return x + self.ff(self.ff_norm(x)), (keys, values)


class Transformer(nn.Module):
    """A stack of :class:`Block` with a final RMSNorm; ALiBi slopes are a buffer."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.norm = nn.RMSNorm(config.width, eps=1e-6)
        self.register_buffer("slopes", alibi_slopes(config.heads), persistent=False)
        self._step_biases: dict[tuple[int, int, bool], torch.Tensor] = {}

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Whole sequence ``x`` (B, N, width) under ``bias`` (heads, N, N) -> (B, N, width)."""
        for block in self.blocks:
            x, _ = block(x, bias)
        return self.norm(x)

    def step(self, x: torch.Tensor, cache: KVCache | None, causal_new: bool = True, append: int | None = None
             ) -> tuple[torch.Tensor, KVCache]:
        """Streaming: the newest ``x`` (B, n, width) attend to ``cache`` and (causally, or all of them
        when ``causal_new`` is False) to each other. Returns the output and the cache with the first
        ``append`` (default: all) new tokens appended, trimmed to the last ``window - 1`` tokens
        (the caller may discard it to leave the cache unchanged)."""
        cached = 0 if cache is None else cache[0][0].shape[2]
        key = (x.shape[1], cached, causal_new)
        bias = self._step_biases.get(key)
        if bias is None:
            n = x.shape[1]
            query_positions = torch.arange(cached, cached + n)
            key_positions = torch.arange(cached + n)
            allowed = (key_positions[None, :] <= query_positions[:, None]) if causal_new else torch.ones(
                n, cached + n, dtype=torch.bool)
            bias = attention_bias(query_positions, key_positions, allowed, self.slopes, self.config.window)
            self._step_biases[key] = bias
        keep = self.config.window - 1
        new_cache: KVCache = []
        for index, block in enumerate(self.blocks):
            past = None if cache is None else cache[index]
            x, (k, v) = block(x, bias, past)
            end = k.shape[2] if append is None else cached + append
            new_cache.append((k[:, :, max(end - keep, 0):end], v[:, :, max(end - keep, 0):end]))
        return self.norm(x), new_cache

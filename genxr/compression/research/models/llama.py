"""A tiny LLaMA: RMSNorm, rotary grouped-query attention, SiLU-gated MLP, untied LM head.

Channels: gated-MLP hidden units (gate/up rows and down columns, clustered jointly) and
key/value heads with their query heads; the RMSNorm residual stream is left whole.
Input token ids (B, T) -> next-token logits (B, T, vocab_size).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from genxr.compression.research.models.attention import Attention


@dataclass(frozen=True)
class LlamaConfig:
    """Constructor arguments; ``num_kv_heads < num_heads`` gives grouped-query attention."""

    vocab_size: int = 128
    dim: int = 128
    depth: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    mlp_dim: int = 352


class GatedMLP(nn.Module):
    """down(silu(gate(x)) * up(x)); a hidden unit is one gate row, one up row, one down column."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaBlock(nn.Module):
    """Pre-norm block with causal rotary GQA attention and a gated MLP."""

    def __init__(self, dim: int, num_heads: int, num_kv_heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.attn_norm = nn.RMSNorm(dim)
        self.attn = Attention(dim, num_heads, num_kv_heads, dim // num_heads, causal=True, rotary=True)
        self.mlp_norm = nn.RMSNorm(dim)
        self.mlp = GatedMLP(dim, mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class Llama(nn.Module):
    """``Llama(**asdict(LlamaConfig()))``: a character-level model of about 1M parameters."""

    def __init__(self, vocab_size: int = 128, dim: int = 128, depth: int = 4, num_heads: int = 4,
                 num_kv_heads: int = 2, mlp_dim: int = 352) -> None:
        super().__init__()
        self.config = LlamaConfig(vocab_size, dim, depth, num_heads, num_kv_heads, mlp_dim)
        self.embed = nn.Embedding(vocab_size, dim)
        self.blocks = nn.Sequential(*[LlamaBlock(dim, num_heads, num_kv_heads, mlp_dim) for _ in range(depth)])
        self.norm = nn.RMSNorm(dim)
        self.lm_head = nn.Linear(dim, vocab_size, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.norm(self.blocks(self.embed(ids))))

"""Multi-head / grouped-query self-attention with separate q, k, v, o projections.

This is the layout folding and pruning recognise as attention (the same attribute names as
Hugging Face LLaMA/Mistral): ``q_proj``, ``k_proj``, ``v_proj``, ``o_proj`` (nn.Linear),
``num_heads``, ``num_kv_heads`` and ``head_dim``. A "channel" of attention is a whole
key/value head together with the ``num_heads // num_kv_heads`` query heads that read it.
Input (B, T, dim) -> (B, T, dim).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(..., 2h) -> (..., 2h): [x1, x2] -> [-x2, x1], the rotary-embedding rotation.

    Written as one index and a sign flip instead of the usual chunk + torch.cat, because
    Torch-Pruning's tracer cannot size a concat whose inputs come from a chunk.
    """
    half = x.shape[-1] // 2
    order = torch.cat((torch.arange(half, 2 * half), torch.arange(half))).to(x.device)
    sign = torch.cat((-torch.ones(half), torch.ones(half))).to(x.dtype).to(x.device)
    return x[..., order] * sign


class Attention(nn.Module):
    """Self-attention; ``num_kv_heads < num_heads`` is grouped-query attention, ``rotary`` adds RoPE."""

    def __init__(self, dim: int, num_heads: int, num_kv_heads: int, head_dim: int, causal: bool, rotary: bool) -> None:
        super().__init__()
        if num_heads % num_kv_heads:
            raise ValueError(f"num_heads {num_heads} is not a multiple of num_kv_heads {num_kv_heads}")
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.causal, self.rotary = causal, rotary
        self.q_proj = nn.Linear(dim, num_heads * head_dim, bias=False)
        self.k_proj = nn.Linear(dim, num_kv_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(dim, num_kv_heads * head_dim, bias=False)
        self.o_proj = nn.Linear(num_heads * head_dim, dim, bias=False)

    def _rope(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.arange(x.shape[-2], dtype=x.dtype, device=x.device)
        inv_freq = 1.0 / 10000 ** (torch.arange(0, self.head_dim, 2, dtype=x.dtype, device=x.device) / self.head_dim)
        angles = torch.outer(t, inv_freq).repeat(1, 2)
        return x * angles.cos() + rotate_half(x) * angles.sin()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        if self.rotary:
            q, k = self._rope(q), self._rope(k)
        repeat = self.num_heads // self.num_kv_heads
        k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, self.num_heads * self.head_dim))

"""Streaming with the rolling KV cache gives the same outputs as the windowed full-sequence pass."""

from __future__ import annotations

import torch

from genxr.components.avatar.transformer import Transformer, TransformerConfig, attention_bias, causal_bias


def test_bias_masks_future_and_outside_window():
    slopes = torch.tensor([0.5])
    bias = causal_bias(5, slopes, window=3)[0]
    assert torch.isinf(bias[1, 2]) and torch.isinf(bias[4, 1])
    assert bias[4, 2] == -1.0 and bias[4, 4] == 0.0
    both = causal_bias(5, slopes, window=3, causal=False)[0]
    assert both[2, 4] == -1.0 and torch.isinf(both[0, 3])
    custom = attention_bias(torch.tensor([0, 1]), torch.tensor([0, 1]), torch.eye(2, dtype=torch.bool), slopes, 4)[0]
    assert torch.isinf(custom[1, 0]) and custom[1, 1] == 0.0


def test_incremental_steps_match_the_full_causal_pass_beyond_the_window():
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(width=16, depth=2, heads=2, window=4)).eval()
    x = torch.randn(2, 11, 16)
    with torch.no_grad():
        full = model(x, causal_bias(11, model.slopes, 4))
        cache, outs = None, []
        for chunk in (x[:, :3], x[:, 3:4], x[:, 4:9], x[:, 9:]):
            out, cache = model.step(chunk, cache)
            outs.append(out)
            assert cache[0][0].shape[2] <= 3
    assert torch.allclose(torch.cat(outs, 1), full, atol=1e-5)

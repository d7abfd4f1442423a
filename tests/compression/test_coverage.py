"""Folding beyond the zoo: genxr's avatar transformer (RMSNorm + diffusers GELU feed-forward)."""

from __future__ import annotations

import pytest
import torch

from genxr.compression import fold, prune

avatar = pytest.importorskip("genxr.components.avatar.transformer")


def avatar_transformer():
    torch.manual_seed(0)
    config = avatar.TransformerConfig(width=32, depth=2, heads=4, window=16)
    model = avatar.Transformer(config).eval()
    x = torch.randn(2, 10, 32)
    return model, (x, avatar.causal_bias(10, model.slopes, config.window))


def test_avatar_feed_forward_folds_with_expected_activation_correction():
    model, inputs = avatar_transformer()
    fused_attention = [layer for block in model.blocks for layer in (block.qkv, block.out)]
    folded, report = fold(model, inputs, 0.5, ignored_layers=fused_attention)
    assert [(g.before, g.after, g.repair) for g in report.groups] == [(128, 64, "expected-activation")] * 2
    assert folded(*inputs).shape == model(*inputs).shape
    pruned, _ = prune(model, inputs, 0.5, "l2", ignored_layers=fused_attention)
    assert pruned(*inputs).shape == model(*inputs).shape


def test_fused_qkv_groups_are_skipped_with_a_reason():
    model, inputs = avatar_transformer()
    folded, report = fold(model, inputs, 0.5)
    assert any("do not map one-to-one" in reason for reason in report.skipped.values())
    assert [(g.before, g.after) for g in report.groups] == [(128, 64)] * 2
    fused_attention = [layer for block in model.blocks for layer in (block.qkv, block.out)]
    reference, _ = fold(model, inputs, 0.5, ignored_layers=fused_attention)
    torch.testing.assert_close(folded(*inputs), reference(*inputs))

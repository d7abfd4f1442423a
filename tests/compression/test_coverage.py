"""Folding beyond the zoo: genxr's avatar transformer (RMSNorm + diffusers GELU feed-forward)."""

from __future__ import annotations

import pytest
import torch

from genxr.components.avatar import transformer as avatar
from genxr.components.worldmodel import conditioning, dit
from genxr.compression import CompressionError, fold, prune


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


def test_world_model_folds_with_its_input_embedding_left_whole():
    torch.manual_seed(0)
    config = dit.DIT_PRESETS["tiny"]
    model = dit.VideoDiT(config).eval()
    pose = torch.zeros(1, 2, 7)
    pose[..., 6] = 1
    shape = (1, 2, config.latent_channels, config.latent_size, config.latent_size)
    tracking = conditioning.Tracking(pose, torch.randn(1, 2, 2, 26, 3) * 0.1, torch.ones(1, 2, 2, 26), pose[:, 0],
                                     torch.randn(shape))
    inputs = (torch.randn(shape), torch.rand(1, 2), tracking)
    with pytest.raises(CompressionError, match="no longer runs"):
        fold(model, inputs, 0.5)
    folded, report = fold(model, inputs, 0.5, ignored_layers=[model.embed])
    assert {"blocks.0.ff.net.0.proj", "blocks.1.ff.net.0.proj"} <= {g.name for g in report.groups}
    assert folded(*inputs).shape == model(*inputs).shape

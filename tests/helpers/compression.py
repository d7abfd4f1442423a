"""Tiny zoo models for the compression tests (and the fold/prune command tests), and a helper
that makes channels exact duplicates so folding them is lossless."""

from __future__ import annotations

import torch
from torch import nn

from genxr.compression.groups import channel_groups, trace
from genxr.compression.heads import attention_modules

IMAGE = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
TOKENS = torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(0))

TINY = {
    "resnet18": (dict(width=4, blocks=(1, 1)), IMAGE),
    "preact_resnet18": (dict(width=4, blocks=(1, 1)), IMAGE),
    "vit": (dict(image_size=16, patch=4, dim=16, depth=2, num_heads=4, mlp_dim=32), IMAGE),
    "llama": (dict(vocab_size=64, dim=16, depth=2, num_heads=4, num_kv_heads=2, mlp_dim=24), TOKENS),
}


def duplicate_channels(model: nn.Module, example_inputs) -> nn.Module:
    """Makes channel j + n/2 of every foldable group an exact copy of channel j, in place.

    Producer rows and consumer columns are both copied, so clustering sees identical
    feature vectors; kv groups of every attention module are duplicated the same way.
    """
    attention = attention_modules(model)
    graph = trace(model, example_inputs)
    with torch.no_grad():
        for group in channel_groups(graph, model, attention_modules=attention.values()):
            if group.skip_reason or group.size % 2:
                continue
            half = group.size // 2
            for member in group.members:
                for slot in member.slots:
                    view = slot.tensor.movedim(slot.dim, 0)
                    view[member.index[half:]] = view[member.index[:half]]
        for attn in attention.values():
            n_kv, rep, hd = attn.num_kv_heads, attn.num_heads // attn.num_kv_heads, attn.head_dim
            half = n_kv // 2
            for layer, dim, width in ((attn.q_proj, 0, rep * hd), (attn.k_proj, 0, hd), (attn.v_proj, 0, hd),
                                      (attn.o_proj, 1, rep * hd)):
                view = layer.weight.data.movedim(dim, 0)
                view[half * width:2 * half * width] = view[:half * width]
    return model


def tiny_model(name: str, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """A tiny zoo model ``name`` (a key of :data:`TINY`) in eval mode with random BN statistics,
    and its example inputs."""
    from genxr.compression.research.models import build

    torch.manual_seed(seed)
    kwargs, x = TINY[name]
    model = build(name, **kwargs)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    return model.eval(), x

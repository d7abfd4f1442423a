"""Rebuilding a compressed model's shapes: a tensor resized to what was saved, and the width
attributes of its layer (``in_features``, ``num_features``, ...) made to agree, so that a
folded or pruned model - a genxr zoo model or a Hugging Face one - can be rebuilt from its
original architecture and then loaded strictly."""

from __future__ import annotations

import torch
from torch import nn

WIDTHS = {
    nn.Linear: lambda m, w: {"out_features": w.shape[0], "in_features": w.shape[1]},
    nn.Conv2d: lambda m, w: {"out_channels": w.shape[0], "in_channels": w.shape[1] * m.groups},
    nn.BatchNorm2d: lambda m, w: {"num_features": w.shape[0]},
    nn.LayerNorm: lambda m, w: {"normalized_shape": tuple(w.shape)},
    nn.RMSNorm: lambda m, w: {"normalized_shape": tuple(w.shape)},
    nn.Embedding: lambda m, w: {"num_embeddings": w.shape[0], "embedding_dim": w.shape[1]},
}
"""Layer type -> its width attributes for a weight of a given shape."""


def resize_tensor(model: nn.Module, name: str, shape: tuple[int, ...]) -> None:
    """Replaces tensor ``name`` (a parameter or buffer, or a ``None`` slot such as a bias a repair
    added) by an empty one of ``shape`` if it differs; updates the owner's width attributes.
    AttributeError when the owner has no such tensor slot."""
    owner_name, _, attr = name.rpartition(".")
    owner = model.get_submodule(owner_name)
    if attr not in owner._parameters and attr not in owner._buffers:
        raise AttributeError(f"{type(owner).__name__} {owner_name!r} has no tensor {attr!r}")
    current = getattr(owner, attr)
    if current is not None and tuple(current.shape) == shape:
        return
    fresh = torch.empty(shape, dtype=current.dtype if current is not None else torch.float32)
    if current is None or isinstance(current, nn.Parameter):
        setattr(owner, attr, nn.Parameter(fresh, requires_grad=current is None or current.requires_grad))
    else:
        owner.register_buffer(attr, fresh)
    if attr == "weight" and type(owner) in WIDTHS:
        for key, value in WIDTHS[type(owner)](owner, fresh).items():
            setattr(owner, key, value)

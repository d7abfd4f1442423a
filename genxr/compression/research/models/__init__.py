"""The compression model zoo: architecture name -> class, for checkpoints and the sweep."""

from __future__ import annotations

import torch
from torch import nn

from genxr.compression.research.models.llama import Llama
from genxr.compression.research.models.preact_resnet import PreActResNet
from genxr.compression.research.models.resnet import ResNet
from genxr.compression.research.models.vit import ViT

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "resnet18": ResNet,
    "preact_resnet18": PreActResNet,
    "vit": ViT,
    "llama": Llama,
}


def build(architecture: str, **kwargs) -> nn.Module:
    """Constructs a zoo model by name; raises ValueError naming the known ones."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[architecture](**kwargs)


def example_inputs(model: nn.Module) -> torch.Tensor:
    """A one-sample input for tracing a zoo model: an image batch or a token sequence."""
    config = model.config
    if hasattr(config, "vocab_size"):
        return torch.zeros(1, 16, dtype=torch.long)
    side = getattr(config, "image_size", 32)
    return torch.zeros(1, config.in_channels, side, side)


def architecture_of(model: nn.Module) -> str:
    """The zoo name of a model's class; raises ValueError for models outside the zoo."""
    for name, cls in ARCHITECTURES.items():
        if type(model) is cls:
            return name
    raise ValueError(f"{type(model).__name__} is not a zoo architecture; known: {sorted(ARCHITECTURES)}")

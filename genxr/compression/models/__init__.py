"""The compression model zoo: architecture name -> class, for checkpoints and the sweep."""

from __future__ import annotations

from torch import nn

from genxr.compression.models.llama import Llama
from genxr.compression.models.preact_resnet import PreActResNet
from genxr.compression.models.resnet import ResNet
from genxr.compression.models.vit import ViT

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

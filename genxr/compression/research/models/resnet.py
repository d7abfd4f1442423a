"""CIFAR-style ResNet18 (3x3 stem, no max-pool), written out instead of torchvision's.

torchvision is not used in genxr (it breaks beside the pinned torch) and its ResNet has an
ImageNet stem; this file is the CIFAR variant of He et al. 2016 used by the folding papers.
A "channel" is a conv output map; the residual stream of a stage is one coupled group.
Input (B, 3, H, W) -> logits (B, num_classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ResNetConfig:
    """Constructor arguments; ``width`` is the stem width, stages use width * (1, 2, 4, 8)."""

    num_classes: int = 10
    width: int = 64
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    in_channels: int = 3


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus a (1x1 conv + BN when the shape changes) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet; ``ResNet(**asdict(ResNetConfig()))`` is ResNet18 (11.2M parameters)."""

    def __init__(self, num_classes: int = 10, width: int = 64, blocks=(2, 2, 2, 2), in_channels: int = 3) -> None:
        super().__init__()
        self.config = ResNetConfig(num_classes, width, tuple(blocks), in_channels)
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers, c_in = [], width
        for stage, n_blocks in enumerate(blocks):
            c_out = width * 2**stage
            for i in range(n_blocks):
                layers.append(BasicBlock(c_in, c_out, 2 if stage > 0 and i == 0 else 1))
                c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))

"""Offline data for the compression sweep: no downloads, the same on every machine.

- Images: scikit-learn's bundled ``load_digits`` (1797 grey 8x8 digits, 10 classes), upsampled
  bilinearly to 32x32 and repeated to 3 channels so CIFAR-style networks apply unchanged.
  Chosen over the simulator's renders because it ships inside an installed dependency and
  has labels a classifier can learn in a minute on a CPU. Fixed split: 75% train, 25% test.
- Text: the top-level ``.py`` files of the running Python's standard library, read as bytes
  (bytes >= 128 become 0, so the vocabulary is 128). Every file whose sorted position is a
  multiple of 10 is held out for validation. Python versions differ slightly in their
  standard library, so perplexities are comparable within one Python version.
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class ImageData:
    """x: (N, 3, size, size) float32 normalised; y: (N,) int64 labels."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int = 10


def digits(size: int = 32, seed: int = 0) -> ImageData:
    """The digits set upsampled to ``size`` x ``size``, 3 channels, split 75/25 with ``seed``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    images = (images - images.mean()) / images.std()
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    cut = int(0.75 * len(labels))
    train, test = order[:cut], order[cut:]
    return ImageData(images[train], labels[train], images[test], labels[test])


def stdlib_text(train_bytes: int = 1_000_000, val_bytes: int = 100_000) -> tuple[torch.Tensor, torch.Tensor]:
    """(train ids, validation ids) as int64 tensors of byte codes < 128 from the standard library."""
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    train, val = bytearray(), bytearray()
    for i, path in enumerate(files):
        target, limit = (val, val_bytes) if i % 10 == 0 else (train, train_bytes)
        if len(target) < limit:
            target.extend(path.read_bytes()[: limit - len(target)])
    return _ids(train), _ids(val)


def _ids(raw: bytearray) -> torch.Tensor:
    ids = torch.from_numpy(np.frombuffer(bytes(raw), dtype=np.uint8).copy()).long()
    return ids.masked_fill_(ids >= 128, 0)

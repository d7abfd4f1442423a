"""Short training runs for the sweep's checkpoints, with the hyperparameters the paper varies.

A ``Recipe`` names optimiser, learning rate, weight decay, augmentation and label smoothing;
training uses a cosine learning-rate schedule. Classifiers train ``epochs`` passes over the
digits; language models train ``steps`` batches of random windows of the text.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from genxr.compression.research.data import ImageData


@dataclass(frozen=True)
class Recipe:
    """Training hyperparameters; ``augment`` is random shifts of up to 3 pixels (images only)."""

    optimizer: str = "sgd"
    lr: float = 0.05
    weight_decay: float = 5e-4
    augment: bool = True
    label_smoothing: float = 0.0
    epochs: int = 8
    steps: int = 400
    batch_size: int = 64

    @property
    def name(self) -> str:
        aug = "aug" if self.augment else "noaug"
        return f"{self.optimizer}-lr{self.lr:g}-wd{self.weight_decay:g}-{aug}-ls{self.label_smoothing:g}"


def _optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=0.9, weight_decay=recipe.weight_decay, nesterov=True)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}; choose sgd, adam or adamw")


def shift(images: torch.Tensor, generator: torch.Generator, pixels: int = 3) -> torch.Tensor:
    """(B, C, H, W) -> same shape, each image translated by up to ``pixels`` (zero fill)."""
    padded = F.pad(images, (pixels,) * 4)
    dx, dy = torch.randint(0, 2 * pixels + 1, (2, len(images)), generator=generator)
    h, w = images.shape[-2:]
    return torch.stack([p[:, y:y + h, x:x + w] for p, x, y in zip(padded, dx.tolist(), dy.tolist())])


def train_classifier(model: nn.Module, data: ImageData, recipe: Recipe, seed: int = 0) -> nn.Module:
    """Trains on ``data.x_train``; returns the model in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = _optimizer(model, recipe)
    n = len(data.y_train)
    steps_per_epoch = (n + recipe.batch_size - 1) // recipe.batch_size
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, recipe.epochs * steps_per_epoch)
    model.train()
    for _ in range(recipe.epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, recipe.batch_size):
            batch = order[start:start + recipe.batch_size]
            x, y = data.x_train[batch], data.y_train[batch]
            if recipe.augment:
                x = shift(x, generator)
            loss = F.cross_entropy(model(x), y, label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def windows(ids: torch.Tensor, context: int, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (batch, context) inputs and their next-token targets."""
    starts = torch.randint(0, len(ids) - context - 1, (batch,), generator=generator)
    x = torch.stack([ids[s:s + context] for s in starts.tolist()])
    y = torch.stack([ids[s + 1:s + context + 1] for s in starts.tolist()])
    return x, y


def train_lm(model: nn.Module, ids: torch.Tensor, recipe: Recipe, context: int = 64, seed: int = 0) -> nn.Module:
    """Trains next-byte prediction for ``recipe.steps`` batches; returns the model in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = _optimizer(model, recipe)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, recipe.steps)
    model.train()
    for _ in range(recipe.steps):
        x, y = windows(ids, context, recipe.batch_size, generator)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), label_smoothing=recipe.label_smoothing)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 256) -> float:
    """Top-1 accuracy in percent."""
    model.eval()
    correct = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(y), batch))
    return 100.0 * correct / len(y)


@torch.no_grad()
def perplexity(model: nn.Module, ids: torch.Tensor, context: int = 64, n_windows: int = 64) -> float:
    """exp(mean next-byte cross-entropy) over ``n_windows`` evenly spaced windows of ``ids``."""
    model.eval()
    starts = torch.linspace(0, len(ids) - context - 2, n_windows).long().tolist()
    x = torch.stack([ids[s:s + context] for s in starts])
    y = torch.stack([ids[s + 1:s + context + 1] for s in starts])
    logits = model(x)
    return float(torch.exp(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))))

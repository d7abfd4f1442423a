"""Per-op fold handlers: which tensors carry a group's channel, and how members merge.

A coupled group (from Torch-Pruning's DependencyGraph) touches modules in two roles:
- producer ("out"): the channel is an output unit - a Linear/Conv weight row and bias entry,
  a BatchNorm's gamma/beta/running stats, an Embedding column, a bare nn.Parameter slice.
  Merging a cluster sets the representative to the members' MEAN.
- consumer ("in"): the channel is an input column of a Linear/Conv weight.
  Merging sets the representative's column to the members' SUM.
Identical members therefore merge without changing the function (the exactness property).

The registry maps Torch-Pruning's op types to a function returning ``Slot``s; adding an op
(say a custom layer Torch-Pruning learned through ``customized_pruners``) means adding one
entry here. Ops absent from the registry make the group unfoldable (reported, left whole).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

OpType = tp.ops.OPTYPE


class UnsupportedLayerError(ValueError):
    """A layer in a role no fold handler can merge; its group is skipped with this reason."""


@dataclass(frozen=True)
class Slot:
    """One tensor holding the channel along ``dim``; ``feature`` says if it enters clustering."""

    tensor: torch.Tensor
    dim: int
    feature: bool = True


def _weight_bias(module: nn.Module, dim: int) -> list[Slot]:
    slots = [Slot(module.weight.data, dim)]
    if getattr(module, "bias", None) is not None and dim == 0:
        slots.append(Slot(module.bias.data, 0))
    return slots


def _conv(module: nn.Conv2d, role: str) -> list[Slot]:
    if role == "in" and module.groups != 1:
        raise UnsupportedLayerError(f"grouped convolution ({module.groups} groups) as a consumer")
    return _weight_bias(module, 0 if role == "out" else 1)


def _linear(module: nn.Linear, role: str) -> list[Slot]:
    return _weight_bias(module, 0 if role == "out" else 1)


def _batchnorm(module: nn.modules.batchnorm._BatchNorm, role: str) -> list[Slot]:
    slots = [Slot(module.weight.data, 0), Slot(module.bias.data, 0)] if module.affine else []
    if module.running_mean is not None:
        slots += [Slot(module.running_mean, 0, feature=False), Slot(module.running_var, 0, feature=False)]
    return slots


def _embedding(module: nn.Embedding, role: str) -> list[Slot]:
    return [Slot(module.weight.data, 1)]


def _prelu(module: nn.PReLU, role: str) -> list[Slot]:
    return [Slot(module.weight.data, 0)] if module.num_parameters > 1 else []


HANDLERS: dict[OpType, Callable[[nn.Module, str], list[Slot]]] = {
    OpType.CONV: _conv,
    OpType.DEPTHWISE_CONV: _conv,
    OpType.LINEAR: _linear,
    OpType.BN: _batchnorm,
    OpType.EMBED: _embedding,
    OpType.PRELU: _prelu,
}

# Ops that only pass channels through (activations, adds, reshapes): nothing to merge.
PASS_THROUGH = {OpType.ELEMENTWISE, OpType.RESHAPE, OpType.EXPAND, OpType.CONCAT, OpType.SPLIT,
                OpType.SLICE, OpType.UNBIND, OpType.OUTPUT}

# Normalisations over the channel axis: merging channels changes the statistics of all of them.
CHANNEL_MIXING = {OpType.LN, OpType.GN, OpType.IN}


def merge_rows(slot: Slot, index: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor, mode: str) -> None:
    """Writes each cluster's mean (mode "mean") or sum ("sum") into its kept channel, in place.

    index: (n_channels, per) module positions of each group channel (per > 1 after a flatten);
    labels: (n_channels,) cluster of each channel; keep: (k,) the kept channel of each cluster.
    """
    view = slot.tensor.movedim(slot.dim, 0)
    rows = view[index].double()
    merged = torch.zeros((len(keep), *rows.shape[1:]), dtype=torch.float64).index_add_(0, labels, rows)
    if mode == "mean":
        counts = torch.bincount(labels, minlength=len(keep)).double()
        merged /= counts.view(-1, *([1] * (merged.dim() - 1)))
    view[index[keep]] = merged.to(view.dtype)

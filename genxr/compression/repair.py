"""Repairs after merging: data-free Fold-AR and expected-activation correction, and a data hook.

- ``fold_ar`` (BatchNorm groups): averaging n_c rows with mean pairwise cosine rho_c shrinks the
  merged unit's output variance by (1 + (n_c - 1) rho_c) / n_c; the BatchNorm's running
  variance is multiplied by that factor so the normalised output keeps unit scale. This is
  the paper's "merged scale times sqrt(n_c / (1 + (n_c - 1) rho_c))" without fusing BN.
- ``ExpectedActivation`` (transformer MLPs): inputs of the producer are modelled as the
  preceding LayerNorm/RMSNorm's output, x_j ~ gamma_j N(0, 1) + beta_j independently, so a
  unit's pre-activation is Gaussian with mean w.beta + b and variance sum_j w_j^2 gamma_j^2.
  The nonlinearity's expected output is taken by numerical quadrature (for a SiLU gate,
  E[silu(g) u] with (g, u) jointly Gaussian). The consumer's bias receives
  sum_i P[:, i] E[a_i] - sum_c P_c E[a_c]: what merging changed in the mean the next layer sees.
- ``reestimate_batchnorm``: for users with data, recompute BatchNorm statistics (Fold-R).
- ``tune_norms``: for users with data, train only the normalisation layers' affine parameters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from genxr.compression.groups import ChannelGroup, call
from genxr.compression.handlers import OpType

_GRID = torch.linspace(-8.0, 8.0, 801, dtype=torch.float64)
_WEIGHTS = torch.exp(-0.5 * _GRID**2) * (_GRID[1] - _GRID[0]) / np.sqrt(2 * np.pi)
ACTIVATIONS = {"GeluBackward0": F.gelu, "SiluBackward0": F.silu, "ReluBackward0": F.relu,
               "TanhBackward0": torch.tanh, "SigmoidBackward0": torch.sigmoid}


def gaussian_expectation(fn, mean: torch.Tensor, std: torch.Tensor, weight_fn=None) -> torch.Tensor:
    """E[fn(h) * weight_fn(h)] for h ~ N(mean, std^2) elementwise.

    A dense rule on +-8 std (801 points) rather than Gauss-Hermite, which converges slowly
    on the kink of ReLU.
    """
    h = mean[..., None] + std[..., None] * _GRID
    values = fn(h) if weight_fn is None else fn(h) * weight_fn(h)
    return (values * _WEIGHTS).sum(-1)


def producer_rows(group: ChannelGroup) -> torch.Tensor:
    """(n, d): the conv/linear weight rows that write the group's channels (read before merging)."""
    mats = [torch.zeros(group.size, 0, dtype=torch.float64)]
    for member in group.modules("out"):
        if member.op in (OpType.CONV, OpType.LINEAR, OpType.DEPTHWISE_CONV):
            view = member.slots[0].tensor.movedim(member.slots[0].dim, 0)
            mats.append(view[member.index].reshape(group.size, -1).double())
    return torch.cat(mats, dim=1)


def fold_ar(group: ChannelGroup, rows: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor) -> bool:
    """Divides merged BatchNorm variances by the collapse factor; True if the group had a BatchNorm.

    rows: ``producer_rows`` taken before merging. Call after merging, before pruning.
    """
    norms = [m for m in group.modules("out") if m.op == OpType.BN and len(m.slots) == 4]
    if not norms or rows.shape[1] == 0:
        return False
    gram = rows @ rows.T
    lengths = gram.diagonal().clamp(min=1e-24).sqrt()
    cosine = gram / lengths[:, None] / lengths[None, :]
    factor = torch.ones(group.size, dtype=torch.float64)
    for cluster, rep in enumerate(keep.tolist()):
        members = torch.nonzero(labels == cluster).flatten()
        n = len(members)
        if n < 2:
            continue
        cos = cosine[members][:, members]
        rho = float((cos.sum() - n) / (n * (n - 1)))
        factor[rep] = (1 + (n - 1) * max(rho, 0.0)) / n
    for member in norms:
        running_var = member.slots[3].tensor
        view = running_var[member.index]
        running_var[member.index] = (view.double() * factor[:, None]).to(running_var.dtype)
    return True


class ExpectedActivation:
    """Data-free correction of the mean activation a transformer MLP's consumer sees.

    Built before merging (it reads the original weights); ``apply`` after merging, before
    pruning. ``reason`` is set (and ``apply`` does nothing) when the group does not have the
    form norm -> linear producer(s) -> activation (or SiLU gate * up) -> linear consumer. A
    bias-free consumer (LLaMA's down_proj) is given a bias; checkpoints record and restore it.
    """

    def __init__(self, graph, model: nn.Module, group: ChannelGroup) -> None:
        self.reason = ""
        self.group = group
        producers = [m for m in group.modules("out") if m.op == OpType.LINEAR]
        consumers = group.modules("in")
        if len(producers) != len(group.modules("out")) or len(consumers) != 1 or consumers[0].op != OpType.LINEAR:
            self.reason = "not a linear -> activation -> linear group"
            return
        self.consumer = model.get_submodule(consumers[0].name)
        self.modules = [model.get_submodule(p.name) for p in producers]
        self.rows = {id(module): p.index[:, 0] for module, p in zip(self.modules, producers)}
        norm = _preceding_norm(graph, model, self.modules[0])
        acts = [_following_activation(graph, m) for m in self.modules]
        if norm is None:
            self.reason = "no LayerNorm/RMSNorm before the producer"
            return
        if getattr(norm, "weight", None) is None:
            self.reason = "the preceding norm has no affine parameters (e.g. adaLN modulation)"
            return
        self.gamma = norm.weight.detach().double()
        beta = getattr(norm, "bias", None)
        self.beta = beta.detach().double() if beta is not None else torch.zeros_like(self.gamma)
        if len(self.modules) == 1 and acts[0] in ACTIVATIONS:
            self.act, self.gate = ACTIVATIONS[acts[0]], None
        elif len(self.modules) == 2 and "SiluBackward0" in acts:
            self.gate = acts.index("SiluBackward0")
            self.act = F.silu
        else:
            self.reason = f"unrecognised activation {acts}"
            return
        self.index = consumers[0].index[:, 0]
        self.before = self.consumer.weight.detach().double()[:, self.index] @ self.expected()

    def _moments(self, layer: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
        w = layer.weight.detach().double()[self.index_out(layer)]
        b = layer.bias.detach().double()[self.index_out(layer)] if layer.bias is not None else 0.0
        return w @ self.beta + b, (w.pow(2) @ self.gamma.pow(2)).sqrt().clamp(min=1e-12)

    def index_out(self, layer: nn.Linear) -> torch.Tensor:
        """Row of ``layer`` for every group channel."""
        return self.rows[id(layer)]

    def expected(self) -> torch.Tensor:
        """(n,): E[activation] of every group channel under the Gaussian input model."""
        if self.gate is None:
            mean, std = self._moments(self.modules[0])
            return gaussian_expectation(self.act, mean, std)
        gate, up = self.modules[self.gate], self.modules[1 - self.gate]
        mg, sg = self._moments(gate)
        mu, _ = self._moments(up)
        wg = gate.weight.detach().double()[self.index_out(gate)]
        wu = up.weight.detach().double()[self.index_out(up)]
        cov = (wg * wu * self.gamma.pow(2)).sum(1)
        slope = cov / sg.pow(2)
        centred = gaussian_expectation(self.act, mg, sg, weight_fn=lambda h: h - mg[..., None])
        return mu * gaussian_expectation(self.act, mg, sg) + slope * centred

    def apply(self, keep: torch.Tensor) -> bool:
        """Adds the change in expected consumer input to the consumer's bias; True if applied."""
        if self.reason:
            return False
        after = self.consumer.weight.detach().double()[:, self.index[keep]] @ self.expected()[keep]
        if self.consumer.bias is None:
            self.consumer.bias = nn.Parameter(torch.zeros(self.consumer.out_features, dtype=self.consumer.weight.dtype))
        self.consumer.bias.data += (self.before - after).to(self.consumer.bias.dtype)
        return True


def _preceding_norm(graph, model: nn.Module, layer: nn.Module, depth: int = 6):
    """The LayerNorm/RMSNorm whose output feeds ``layer`` through pass-through ops, or None."""
    frontier, seen = [graph.module2node[layer]], set()
    for _ in range(depth):
        nxt = []
        for node in frontier:
            for parent in node.inputs:
                if id(parent) in seen:
                    continue
                seen.add(id(parent))
                if isinstance(parent.module, nn.LayerNorm):
                    return parent.module
                if parent.type == OpType.PARAMETER:
                    name = graph._param_to_name.get(parent.module, "")
                    owner = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else None
                    if isinstance(owner, nn.RMSNorm) or (
                            owner is not None and re.search(r"(RMS|Layer)Norm", type(owner).__name__)):
                        return owner  # nn.RMSNorm, or a look-alike such as Hugging Face's LlamaRMSNorm
                if parent.type in (OpType.ELEMENTWISE, OpType.RESHAPE, OpType.PARAMETER):
                    nxt.append(parent)
        frontier = nxt
    return None


def _following_activation(graph, layer: nn.Module) -> str:
    """grad_fn name of the first op after ``layer`` that is not a reshape."""
    node = graph.module2node[layer]
    while node.outputs:
        node = node.outputs[0]
        if node.type != OpType.RESHAPE:
            name = getattr(node.grad_fn, "name", None)
            return name() if callable(name) else type(node.module).__name__
    return ""


def reestimate_batchnorm(model: nn.Module, batches: Iterable) -> nn.Module:
    """Fold-R: resets every BatchNorm's statistics and recomputes them on ``batches`` (inputs only).

    Uses a cumulative average (momentum None) over all batches; returns the model in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    with torch.no_grad():
        for batch in batches:
            call(model, batch)
    for norm in norms:
        norm.momentum = 0.1
    return model.eval()


def tune_norms(model: nn.Module, batches: Iterable, loss_fn, steps: int = 100, lr: float = 1e-3) -> nn.Module:
    """LayerNorm/RMSNorm/BatchNorm-affine-only tuning for users with data (the paper's ViT "REPAIR").

    batches: (inputs, targets) pairs, cycled for ``steps`` Adam steps; ``loss_fn(outputs, targets)``.
    Every other parameter is frozen during tuning and unfrozen after. Returns the model in eval mode.
    """
    norm_types = (nn.LayerNorm, nn.RMSNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)
    tuned = [p for m in model.modules() if isinstance(m, norm_types) for p in m.parameters(recurse=False)]
    frozen = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for p in tuned:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(tuned, lr=lr)
    batches = list(batches)
    model.eval()
    for step in range(steps):
        inputs, targets = batches[step % len(batches)]
        loss = loss_fn(call(model, inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for p, flag in frozen.items():
        p.requires_grad_(flag)
    return model.eval()

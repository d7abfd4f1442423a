"""Repairs: Gaussian expectations, expected-activation correction, Fold-AR, BN re-estimation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from genxr.compression import fold
from genxr.compression.groups import channel_groups, trace
from genxr.compression.repair import ExpectedActivation, gaussian_expectation, reestimate_batchnorm


def test_gaussian_expectation_matches_closed_form_relu():
    mean = torch.tensor([-2.0, -0.3, 0.0, 1.5], dtype=torch.float64)
    std = torch.tensor([0.5, 1.0, 2.0, 0.1], dtype=torch.float64)
    normal = torch.distributions.Normal(0.0, 1.0)
    z = mean / std
    exact = mean * normal.cdf(z) + std * torch.exp(normal.log_prob(z))
    assert torch.allclose(gaussian_expectation(F.relu, mean, std), exact, atol=2e-3)
    assert torch.allclose(gaussian_expectation(lambda h: h, mean, std, weight_fn=lambda h: h), mean**2 + std**2)


class NormMLP(nn.Module):
    """LayerNorm -> fc1 -> GELU -> fc2, or RMSNorm -> SiLU-gated MLP with a biased down projection."""

    def __init__(self, gated: bool, dim: int = 12, hidden: int = 32) -> None:
        super().__init__()
        self.gated = gated
        self.norm = nn.RMSNorm(dim) if gated else nn.LayerNorm(dim)
        with torch.no_grad():
            self.norm.weight.uniform_(0.5, 1.5)
            if not gated:
                self.norm.bias.uniform_(-0.5, 0.5)
        self.fc1 = nn.Linear(dim, hidden)
        self.up = nn.Linear(dim, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        return self.fc2(F.silu(self.fc1(h)) * self.up(h) if self.gated else F.gelu(self.fc1(h)))


@pytest.mark.parametrize("gated", [False, True])
def test_expected_activation_matches_monte_carlo(gated):
    torch.manual_seed(0)
    model = NormMLP(gated).eval()
    x = torch.randn(4, 12)
    graph = trace(model, x, ignored_layers=[] if gated else [model.up])
    group = next(g for g in channel_groups(graph, model, [] if gated else [model.up]) if g.name in ("fc1", "up"))
    correction = ExpectedActivation(graph, model, group)
    assert correction.reason == ""
    z = torch.randn(200_000, 12, dtype=torch.float64)
    h = z * model.norm.weight.double() + (0 if gated else model.norm.bias.double())
    pre = h @ model.fc1.weight.double().T + model.fc1.bias.double()
    act = F.silu(pre) * (h @ model.up.weight.double().T) if gated else F.gelu(pre)
    assert torch.allclose(correction.expected(), act.mean(0), atol=0.02)


@pytest.mark.parametrize("gated", [False, True])
def test_expected_activation_correction_reduces_mean_output_shift(gated):
    torch.manual_seed(1)
    model = NormMLP(gated).eval()
    ignored = [] if gated else [model.up]
    x = torch.randn(4000, 12) * 2 + 0.5
    with torch.no_grad():
        reference = model(x).mean(0)
        plain, _ = fold(model, x[:4], 0.5, repair="none", ignored_layers=ignored)
        fixed, report = fold(model, x[:4], 0.5, repair="expected-activation", ignored_layers=ignored)
        shift_plain = (plain(x).mean(0) - reference).norm()
        shift_fixed = (fixed(x).mean(0) - reference).norm()
    assert [g.repair for g in report.groups] == ["expected-activation"]
    assert shift_fixed < 0.5 * shift_plain


def test_expected_activation_adds_a_bias_to_bias_free_consumers_and_reloads(tiny, tmp_path):
    from genxr.compression.research.checkpoint import load_checkpoint, save_checkpoint

    model, x = tiny("llama")
    folded, report = fold(model, x, 0.5, repair="expected-activation")
    assert [g.repair for g in report.groups if g.kind == "channels"] == ["expected-activation"] * 2
    assert folded.blocks[0].mlp.down_proj.bias is not None
    save_checkpoint(folded, tmp_path)
    loaded, _ = load_checkpoint(tmp_path)
    assert torch.equal(loaded(x), folded(x))


def test_fold_ar_predicts_the_merged_variance():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 4, 1))
    with torch.no_grad():
        model[0].weight[8:] = model[0].weight[:8] + 0.3 * torch.randn_like(model[0].weight[:8])
    data = [torch.randn(32, 3, 8, 8) for _ in range(4)]
    reestimate_batchnorm(model, data)
    errors = {}
    for repair in ("none", "fold-ar"):
        folded, report = fold(model, data[0][:2], 0.5, repair=repair)
        predicted = folded[1].running_var.clone()
        reestimate_batchnorm(folded, data)
        errors[repair] = (predicted.log() - folded[1].running_var.log()).abs().mean().item()
        assert report.groups[0].repair == ("fold-ar" if repair == "fold-ar" else "")
    assert errors["fold-ar"] < 0.5 * errors["none"]


def test_reestimate_batchnorm_recovers_batch_statistics():
    model = nn.Sequential(nn.Conv2d(3, 5, 1), nn.BatchNorm2d(5))
    data = [torch.randn(16, 3, 4, 4) * 3 + 1 for _ in range(3)]
    reestimate_batchnorm(model, data)
    with torch.no_grad():
        features = torch.cat([model[0](b) for b in data])
    assert not model.training
    assert torch.allclose(model[1].running_mean, features.mean((0, 2, 3)), atol=1e-4)
    n = features.numel() / 5
    assert torch.allclose(model[1].running_var, features.var((0, 2, 3)) * 1.0, rtol=math.sqrt(1 / n) * 5)


def test_tune_norms_changes_only_norm_parameters_and_lowers_the_loss(tiny):
    from genxr.compression.repair import tune_norms

    model, _ = tiny("vit")
    folded, _ = fold(model, torch.randn(2, 3, 16, 16), 0.5)
    torch.manual_seed(0)
    x = torch.randn(32, 3, 16, 16)
    with torch.no_grad():
        target = model(x).argmax(1)
    before = {n: p.clone() for n, p in folded.named_parameters()}
    loss_before = F.cross_entropy(folded(x), target).item()
    tune_norms(folded, [(x, target)], F.cross_entropy, steps=30, lr=1e-2)
    changed = {n for n, p in folded.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("norm" in n for n in changed)
    assert F.cross_entropy(folded(x), target).item() < loss_before
    assert all(p.requires_grad for p in folded.parameters())

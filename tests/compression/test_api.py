"""fold / prune: exactness on duplicated neurons, identity at ratio 0, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genxr.compression import TraceError, fold, prune
from tests.helpers.compression import TINY, duplicate_channels


def duplicated_mlp() -> tuple[nn.Module, torch.Tensor]:
    """Linear(8, 6) -> ReLU -> Linear(6, 4) whose hidden units 3..5 copy units 0..2."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 4))
    with torch.no_grad():
        model[0].weight[3:] = model[0].weight[:3]
        model[0].bias[3:] = model[0].bias[:3]
        model[2].weight[:, 3:] = model[2].weight[:, :3]
    return model.eval(), torch.randn(5, 8)


def test_fold_is_exact_for_duplicated_neurons():
    model, x = duplicated_mlp()
    folded, report = fold(model, x, 0.5, repair="none")
    assert folded[0].out_features == 3 and folded[2].in_features == 3
    torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-5)
    assert report.groups[0].before == 6 and report.groups[0].after == 3
    assert report.groups[0].error == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("repair", ["none", "auto"])
def test_fold_is_exact_for_duplicated_channels_in_zoo_models(tiny, name, repair):
    model, x = tiny(name)
    duplicate_channels(model, x)
    folded, report = fold(model, x, 0.5, repair=repair)
    assert report.params_after < report.params_before
    torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(TINY))
def test_ratio_zero_is_identity(tiny, name):
    model, x = tiny(name)
    for compress in (lambda: fold(model, x, 0.0), lambda: prune(model, x, 0.0, "l1")):
        out, report = compress()
        assert torch.equal(out(x), model(x))
        assert report.params_after == report.params_before


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("method", ["fold", "l1", "l2", "random"])
def test_compressed_models_run_and_shrink(tiny, name, method):
    model, x = tiny(name)
    if method == "fold":
        out, report = fold(model, x, 0.5)
    else:
        out, report = prune(model, x, 0.5, method)
    assert out(x).shape == model(x).shape
    assert 0.2 < report.param_reduction < 0.9
    assert all(g.after == g.before // 2 for g in report.groups)
    assert sum(p.numel() for p in model.parameters()) == report.params_before, "the input model must be untouched"


def test_prune_l1_keeps_largest_channels():
    model, x = duplicated_mlp()
    with torch.no_grad():
        model[0].weight[[1, 4]] *= 100
    pruned, report = prune(model, x, 0.5, "l1")
    kept_norms = pruned[0].weight.abs().sum(1)
    assert kept_norms.max() > 50 * kept_norms.min()
    assert report.groups[0].after == 3


def test_unknown_criterion():
    model, x = duplicated_mlp()
    with pytest.raises(ValueError, match="unknown criterion 'l3'"):
        prune(model, x, 0.5, "l3")
    with pytest.raises(ValueError, match="unknown repair"):
        fold(model, x, 0.5, repair="magic")


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_ratio_outside_range(ratio):
    model, x = duplicated_mlp()
    with pytest.raises(ValueError, match=r"ratio must be in \[0, 1\)"):
        fold(model, x, ratio)
    with pytest.raises(ValueError, match=r"ratio must be in \[0, 1\)"):
        prune(model, x, ratio)


def test_ratio_leaving_zero_channels():
    model, x = duplicated_mlp()
    with pytest.raises(ValueError, match="leaves zero of the 6 channels of group '0'"):
        fold(model, x, 0.9)


class Detach(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(x.detach().numpy().copy())


def test_untraceable_model_names_the_module():
    model = nn.Sequential(nn.Linear(4, 4), Detach(), nn.Linear(4, 2))
    with pytest.raises(TraceError, match="module '0'"):
        fold(model, torch.randn(3, 4), 0.5)


class Broken(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            raise RuntimeError("custom op without autograd support")
        return x


def test_tracing_failure_names_the_module():
    model = nn.Sequential(nn.Linear(4, 4), Broken(), nn.Linear(4, 2))
    with pytest.raises(TraceError, match="module '1' broke Torch-Pruning's tracing"):
        prune(model, torch.randn(3, 4), 0.5)


def test_mismatched_example_inputs():
    model, _ = duplicated_mlp()
    with pytest.raises(ValueError, match="example inputs do not fit the model: module '0'"):
        fold(model, torch.randn(5, 7), 0.5)


def test_ignored_layers_are_left_whole():
    model, x = duplicated_mlp()
    folded, report = fold(model, x, 0.5, ignored_layers=[model[0]])
    assert folded[0].out_features == 6
    assert report.groups == []

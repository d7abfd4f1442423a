"""The theorem's inequalities (hypothesis on random matrices, and on real layers)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genxr.compression import geometry
from genxr.compression.cluster import kmeans
from genxr.compression.research.models import build

TOL = 1e-9


@st.composite
def matrix_and_k(draw):
    m = draw(st.integers(3, 24))
    d = draw(st.integers(1, 12))
    k = draw(st.integers(1, m - 2))
    seed = draw(st.integers(0, 2**16))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    w = torch.randn(m, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale
    if draw(st.booleans()):
        w = w + torch.randn(1, d, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64) * 3 * scale
    return w, k, seed


@settings(max_examples=60, deadline=None)
@given(matrix_and_k())
def test_errors_equal_their_projection_operators(case):
    w, k, seed = case
    keep = geometry.magnitude_keep(w, k)
    d_k = geometry.prune_projection(w.shape[0], keep)
    assert geometry.prune_error(w, keep) == pytest.approx(float((w - d_k @ w).pow(2).sum()), rel=1e-9, abs=TOL)
    labels = torch.randint(0, k, (w.shape[0],), generator=torch.Generator().manual_seed(seed))
    p_c = geometry.fold_projection(labels)
    assert torch.allclose(p_c @ p_c, p_c, atol=1e-9), "P_C is a projection"
    assert torch.allclose(p_c, p_c.T), "P_C is orthogonal"
    assert geometry.fold_error(w, labels) == pytest.approx(float((w - p_c @ w).pow(2).sum()), rel=1e-9, abs=TOL)


@settings(max_examples=60, deadline=None)
@given(matrix_and_k())
def test_special_fold_is_never_worse_than_pruning(case):
    w, k, seed = case
    for keep in (geometry.magnitude_keep(w, k), torch.randperm(w.shape[0], generator=torch.Generator().manual_seed(seed))[:k]):
        special = geometry.special_fold_error(w, keep)
        assert special == pytest.approx(geometry.fold_error(w, geometry.special_fold_labels(w.shape[0], keep)), rel=1e-9, abs=TOL)
        assert special <= geometry.prune_error(w, keep) * (1 + 1e-12) + TOL


@settings(max_examples=60, deadline=None)
@given(matrix_and_k())
def test_kmeans_fold_with_k_plus_one_clusters_is_never_worse_than_special_fold(case):
    w, k, seed = case
    keep = geometry.magnitude_keep(w, k)
    labels, kept = kmeans(w, k + 1, seed)
    assert len(kept) <= k + 1
    assert geometry.fold_error(w, labels) <= geometry.special_fold_error(w, keep) * (1 + 1e-9) + TOL
    assert geometry.special_fold_error(w, keep) <= geometry.prune_error(w, keep) * (1 + 1e-12) + TOL


def real_layers():
    torch.manual_seed(0)
    resnet = build("resnet18", width=8, blocks=(1, 1))
    vit = build("vit", image_size=16, patch=4, dim=32, depth=1, num_heads=4, mlp_dim=64)
    return {"conv": resnet.layers[1].conv2.weight.detach().flatten(1), "fc1": vit.blocks[0].fc1.weight.detach(),
            "fc2_columns": vit.blocks[0].fc2.weight.detach().T}


@pytest.mark.parametrize("layer", ["conv", "fc1", "fc2_columns"])
@pytest.mark.parametrize("keep_fraction", [0.3, 0.5, 0.7])
def test_inequalities_on_real_layers(layer, keep_fraction):
    w = real_layers()[layer].double()
    k = max(int(w.shape[0] * keep_fraction), 1)
    keep = geometry.magnitude_keep(w, k)
    prune = geometry.prune_error(w, keep)
    special = geometry.special_fold_error(w, keep)
    labels, _ = kmeans(w, k + 1, seed=0)
    folded = geometry.fold_error(w, labels)
    assert folded <= special * (1 + 1e-9) <= prune * (1 + 1e-9)
    assert 0 < geometry.relative_error(folded, w) < geometry.relative_error(prune, w) < 1

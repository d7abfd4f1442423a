"""Clustering the channels of one group: k-means on per-channel feature vectors.

Features are (n, d) with one row per channel. When d > n the rows are first projected onto
their own span (an exact rotation, so every pairwise distance and the k-means optimum are
unchanged) which makes ResNet18's 20k-dimensional residual-stream features cheap. An
optional ``pca_dim`` truncates further (lossy). k-means is scikit-learn's Lloyd with a fixed
seed, run from two starts - k-means++ (one seeded run) and the theorem's special fold (the k - 1 largest
rows kept, the rest merged) - keeping the lower inertia, so the result is never worse than
the special fold, which is never worse than magnitude pruning. The authors' Hartigan
variant was not ported: sklearn's Lloyd plus that start already gives the guarantee.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans


def span_project(features: torch.Tensor, pca_dim: int | None = None) -> torch.Tensor:
    """(n, d) -> (n, min(n, d) or pca_dim): coordinates in the rows' principal axes.

    Untruncated, this is an exact rotation of the centred rows (pairwise distances kept).
    Computed from the n x n Gram matrix (eigh) rather than an SVD of the n x d matrix
    (torch's SVD or scikit-learn's PCA), far slower on ResNet18's residual-stream groups
    (docs/compression.md, "The method").
    """
    x = features.double()
    centred = x - x.mean(0, keepdim=True)
    if pca_dim is None and x.shape[1] <= x.shape[0]:
        return centred
    eigvals, eigvecs = torch.linalg.eigh(centred @ centred.T)
    order = torch.argsort(eigvals, descending=True)
    coords = eigvecs[:, order] * eigvals[order].clamp(min=0).sqrt()
    return coords[:, :pca_dim] if pca_dim is not None else coords


def kmeans(features: torch.Tensor, k: int, seed: int, pca_dim: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Clusters n channels into k: returns labels (n,) in 0..k-1 and keep (k,), the member nearest each centroid.

    keep[c] is the channel that represents cluster c after merging; it is sorted by cluster
    id, and every cluster is non-empty.
    """
    n = features.shape[0]
    if k >= n:
        return torch.arange(n), torch.arange(n)
    x = span_project(features, pca_dim).numpy()
    if k == 1:
        labels = np.zeros(n, dtype=np.int64)
    else:
        by_norm = torch.argsort(features.double().norm(dim=1), descending=True, stable=True).numpy()
        labels = _best_kmeans(x, k, seed, by_norm)
    _, labels = np.unique(labels, return_inverse=True)
    keep = []
    for c in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == c)
        centre = x[members].mean(0)
        keep.append(members[np.argmin(((x[members] - centre) ** 2).sum(1))])
    return torch.from_numpy(labels), torch.tensor(keep, dtype=torch.long)


def _best_kmeans(x: np.ndarray, k: int, seed: int, order: np.ndarray) -> np.ndarray:
    """Labels of the lower-inertia Lloyd run: k-means++ or started at the special fold.

    order: channels by decreasing norm of their original features (magnitude pruning's ranking).
    """
    plus = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(x)
    centres = np.concatenate([x[order[:k - 1]], x[order[k - 1:]].mean(0, keepdims=True)])
    special = KMeans(n_clusters=k, init=centres, n_init=1, random_state=seed).fit(x)
    best = plus if plus.inertia_ <= special.inertia_ else special
    return best.labels_.astype(np.int64)

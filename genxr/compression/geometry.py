"""Projection geometry of pruning and folding ("Cut Less, Fold More", Saukh et al. 2026).

A layer's weight W is (m, d): row i is output unit i (a conv filter flattened is one row).
- Pruning keeps a set K of k rows: W_p = D_K W, D_K = diag(1_K), an axis-aligned projection.
- Folding with clusters C (indicator matrix, m x k) replaces each row by its cluster mean:
  W_f = P_C W, P_C = C (C^T C)^-1 C^T, an orthogonal projection of rank k.
- The theorem: keeping pruning's k rows and replacing all pruned rows by their common mean
  (the "special fold", k + 1 clusters) never has larger error than pruning, and optimal
  k-means with k + 1 clusters never has larger error than the special fold.
Errors are squared Frobenius norms; ``relative_error`` divides by ||W||_F^2.
"""

from __future__ import annotations

import torch


def prune_projection(m: int, keep: torch.Tensor) -> torch.Tensor:
    """D_K: (m, m) diagonal 0/1 matrix keeping rows ``keep``."""
    d = torch.zeros(m, dtype=torch.float64)
    d[keep] = 1.0
    return torch.diag(d)


def fold_projection(labels: torch.Tensor) -> torch.Tensor:
    """P_C = C (C^T C)^-1 C^T for cluster labels (m,) with values 0..k-1 (empty clusters dropped)."""
    c = torch.nn.functional.one_hot(labels.long()).to(torch.float64)
    c = c[:, c.sum(0) > 0]
    return c @ torch.linalg.inv(c.T @ c) @ c.T


def prune_error(w: torch.Tensor, keep: torch.Tensor) -> float:
    """||W - D_K W||_F^2: the squared norms of the removed rows."""
    removed = torch.ones(w.shape[0], dtype=torch.bool)
    removed[keep] = False
    return float(w.double()[removed].pow(2).sum())


def fold_error(w: torch.Tensor, labels: torch.Tensor) -> float:
    """||W - P_C W||_F^2 computed per cluster (no m x m matrix): squared distances to cluster means."""
    w = w.double().flatten(1)
    labels = labels.long()
    k = int(labels.max()) + 1
    sums = torch.zeros(k, w.shape[1], dtype=torch.float64).index_add_(0, labels, w)
    counts = torch.bincount(labels, minlength=k).clamp(min=1).to(torch.float64)
    means = sums / counts[:, None]
    return float((w - means[labels]).pow(2).sum())


def special_fold_labels(m: int, keep: torch.Tensor) -> torch.Tensor:
    """Labels of the theorem's fold: each kept row its own cluster, all pruned rows one more cluster."""
    labels = torch.full((m,), len(keep), dtype=torch.long)
    labels[keep] = torch.arange(len(keep))
    return labels


def special_fold_error(w: torch.Tensor, keep: torch.Tensor) -> float:
    """Closed form sum_pruned ||w_i||^2 - |P| ||mean_P||^2 (equals ``fold_error`` of ``special_fold_labels``)."""
    removed = torch.ones(w.shape[0], dtype=torch.bool)
    removed[keep] = False
    pruned = w.double().flatten(1)[removed]
    if len(pruned) == 0:
        return 0.0
    return float(pruned.pow(2).sum() - len(pruned) * pruned.mean(0).pow(2).sum())


def magnitude_keep(w: torch.Tensor, k: int, p: int = 2) -> torch.Tensor:
    """Indices of the k rows of largest L_p norm (magnitude pruning's choice), sorted."""
    return torch.sort(torch.topk(w.double().flatten(1).norm(p=p, dim=1), k).indices).values


def relative_error(error: float, w: torch.Tensor) -> float:
    """error / ||W||_F^2 (0 for an all-zero W)."""
    total = float(w.double().pow(2).sum())
    return error / total if total > 0 else 0.0

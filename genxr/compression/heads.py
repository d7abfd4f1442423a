"""Attention compressed by whole heads, multi-head and grouped-query alike.

An attention module is recognised by the layout of ``models/attention.py`` (the names
Hugging Face LLaMA/Mistral use): ``q_proj``, ``k_proj``, ``v_proj``, ``o_proj`` (nn.Linear),
``num_heads``, ``head_dim`` and optionally ``num_kv_heads`` (default: ``num_heads``).
The unit ("channel") is one key/value head with the ``num_heads // num_kv_heads`` query heads
that read it: head_dim rows of k and v, rep * head_dim rows of q, rep * head_dim columns of o.
Merging averages the k, v and q rows of a cluster and sums the o columns, which is exact
for identical heads. The head counts on the module are updated. Torch-Pruning's graph couples
q, k, v and o by single channels, not heads, so heads are sliced here with its per-layer
pruning functions instead of ``group.prune``.
"""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn

from genxr.compression import geometry


def attention_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Name -> module for every submodule with the q/k/v/o projection layout."""
    found = {}
    for name, module in model.named_modules():
        if all(isinstance(getattr(module, p, None), nn.Linear) for p in ("q_proj", "k_proj", "v_proj", "o_proj")) \
                and hasattr(module, "num_heads") and hasattr(module, "head_dim"):
            found[name] = module
    return found


def _layout(attn: nn.Module) -> tuple[int, int, int]:
    n_kv = getattr(attn, "num_kv_heads", attn.num_heads)
    return n_kv, attn.num_heads // n_kv, attn.head_dim


def _blocks(attn: nn.Module) -> dict[str, tuple[torch.Tensor, int, int]]:
    """tensor, dim, width per kv group for every tensor holding a kv group."""
    n_kv, rep, hd = _layout(attn)
    out = {}
    for p, width in (("q_proj", rep * hd), ("k_proj", hd), ("v_proj", hd)):
        layer = getattr(attn, p)
        out[f"{p}.weight"] = (layer.weight.data, 0, width)
        if layer.bias is not None:
            out[f"{p}.bias"] = (layer.bias.data, 0, width)
    out["o_proj.weight"] = (attn.o_proj.weight.data, 1, rep * hd)
    return out


def _group_view(tensor: torch.Tensor, dim: int, width: int, n_kv: int) -> torch.Tensor:
    """(n_kv, width, rest...) view of the tensor with the kv-group axis first."""
    moved = tensor.movedim(dim, 0)
    return moved.reshape(n_kv, width, *moved.shape[1:])


def head_features(attn: nn.Module, producers_only: bool = False) -> torch.Tensor:
    """(num_kv_heads, d): q/k/v rows (and o columns unless ``producers_only``) per kv group."""
    n_kv, _, _ = _layout(attn)
    mats = [_group_view(t, dim, w, n_kv).reshape(n_kv, -1).double()
            for key, (t, dim, w) in _blocks(attn).items() if not (producers_only and key.startswith("o_proj"))]
    return torch.cat(mats, dim=1)


def merge_heads(attn: nn.Module, labels: torch.Tensor, keep: torch.Tensor) -> None:
    """Sets each kept kv group to its cluster's mean q/k/v rows and summed o columns, in place."""
    n_kv, _, _ = _layout(attn)
    for key, (tensor, dim, width) in _blocks(attn).items():
        view = tensor.movedim(dim, 0)
        grouped = view.reshape(n_kv, width, *view.shape[1:]).clone()
        for cluster, rep_group in enumerate(keep.tolist()):
            rows = grouped[labels == cluster]
            merged = rows.sum(0) if key.startswith("o_proj") else rows.mean(0)
            view[rep_group * width:(rep_group + 1) * width] = merged


def keep_heads(attn: nn.Module, keep: torch.Tensor) -> None:
    """Removes every kv group not in ``keep`` (with its query heads) and updates the head counts."""
    n_kv, rep, hd = _layout(attn)
    drop = sorted(set(range(n_kv)) - set(keep.tolist()))
    if not drop:
        return
    q_rows = [h * hd + i for g in drop for h in range(g * rep, (g + 1) * rep) for i in range(hd)]
    kv_rows = [g * hd + i for g in drop for i in range(hd)]
    tp.prune_linear_out_channels(attn.q_proj, q_rows)
    tp.prune_linear_out_channels(attn.k_proj, kv_rows)
    tp.prune_linear_out_channels(attn.v_proj, kv_rows)
    tp.prune_linear_in_channels(attn.o_proj, q_rows)
    attn.num_heads = (n_kv - len(drop)) * rep
    if hasattr(attn, "num_kv_heads"):
        attn.num_kv_heads = n_kv - len(drop)


def head_error(attn: nn.Module, labels: torch.Tensor | None, keep: torch.Tensor) -> float:
    """Relative reconstruction error of the q/k/v rows: fold (labels given) or prune (labels None)."""
    w = head_features(attn, producers_only=True)
    error = geometry.fold_error(w, labels) if labels is not None else geometry.prune_error(w, keep)
    return geometry.relative_error(error, w)

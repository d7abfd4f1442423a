"""Attention compressed by whole heads, multi-head and grouped-query alike.

An attention module is recognised structurally, by a small registry of layouts (``LAYOUTS``;
Torch-Pruning instead asks the user for ``num_heads``):

* ``qkvo``: separate ``q_proj``, ``k_proj``, ``v_proj`` and ``o_proj`` / ``out_proj``
  (nn.Linear) on the module and a head width (``head_dim``, or a head count such as
  ``num_heads``). Hugging Face LLaMA, Qwen2, Mistral (rotary, grouped-query), ViT (5.x),
  CLIP vision and text, and ``research/models/attention.py``.
* ``bert``: an inner module (``self`` or ``attention``) with ``query``, ``key``, ``value``
  and ``attention_head_size``, and ``output.dense`` beside it: BERT, RoBERTa, MiniLM,
  ELECTRA-style encoders (and ViT of transformers 4.x).

``find_attention`` returns a ``Heads`` per recognised module (its q/k/v/o layers, head
width, and the module whose attributes hold the head counts) and, separately, every module
that looks like attention (its class name says so) but matches no layout, with the reason.
The unit ("channel") is one key/value head with the ``num_heads // num_kv_heads`` query heads
that read it: head_dim rows of k and v, rep * head_dim rows of q, rep * head_dim columns of o.
Clustering and merging work on the heads' circuits - what "cluster mean" means for a bilinear
unit (averaging q and k rows separately adds cross terms to the attention logits, and raw rows
depend on the arbitrary basis inside each head). k-means runs on ``head_coordinates``: an
exact embedding of the circuits' Frobenius distances (their Gram matrix, from head_dim x
head_dim products), so it minimises the merge error below before rank truncation:

* value-output: the members' maps ``sum_i O_i [W_v,i | b_v,i]`` (per query slot of the kv
  group) are summed and projected to rank head_dim by one SVD with a shared value factor -
  the members' outputs if they attend alike, as summed consumer columns are for channels;
* query-key: the members' logit maps ``[W_q,i | b_q,i]^T [W_k,i | b_k,i]`` are averaged and
  projected the same way (the merged head's logits are the members' mean logits, rank
  head_dim). With rotary embeddings (or per-head q/k norms) a rotation of the head basis is
  not free, so there q and k rows are averaged instead (``Heads.qk_circuit`` False).

Both are exact for identical heads. After removal the head-count attributes the module has (``num_heads``,
``num_attention_heads``, ``num_kv_heads``, ``num_key_value_heads``, ``all_head_size``) are
rewritten; ``num_key_value_groups`` is unchanged because kv groups are kept whole.
Torch-Pruning's graph couples q, k, v and o by single channels, not heads, so heads are sliced
here with its per-layer pruning functions instead of ``group.prune``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn

from genxr.compression import geometry

Q_COUNTS = ("num_heads", "num_attention_heads", "n_heads")
KV_COUNTS = ("num_kv_heads", "num_key_value_heads", "n_kv_heads")
WIDTHS = ("all_head_size",)
HEAD_DIMS = ("head_dim", "attention_head_size", "head_size")
PROJECTIONS = (("q_proj", "k_proj", "v_proj", "o_proj"), ("q_proj", "k_proj", "v_proj", "out_proj"))


class LayoutError(ValueError):
    """A module that looks like attention but whose projections and head counts do not fit together."""


@dataclass(eq=False)
class Heads:
    """One attention module seen as kv groups of whole heads.

    ``holder`` is the module carrying the head-count attributes (the module itself for ``qkvo``,
    the inner self-attention for ``bert``); counts are derived from the projection shapes.
    """

    name: str
    module: nn.Module
    holder: nn.Module
    q: nn.Linear
    k: nn.Linear
    v: nn.Linear
    o: nn.Linear
    head_dim: int
    layout: str
    paths: dict[str, str] = field(default_factory=dict)
    qk_circuit: bool = True

    @property
    def num_heads(self) -> int:
        return self.q.out_features // self.head_dim

    @property
    def num_kv_heads(self) -> int:
        return self.k.out_features // self.head_dim

    def layers(self) -> tuple[nn.Linear, nn.Linear, nn.Linear, nn.Linear]:
        return self.q, self.k, self.v, self.o

    def sync(self) -> None:
        """Rewrites the holder's head-count attributes from the projection shapes."""
        for names, value in ((Q_COUNTS, self.num_heads), (KV_COUNTS, self.num_kv_heads), (WIDTHS, self.q.out_features)):
            for attr in names:
                if isinstance(getattr(self.holder, attr, None), int) and not isinstance(getattr(self.holder, attr), bool):
                    setattr(self.holder, attr, value)


def _int_attr(module: nn.Module, names) -> int | None:
    for attr in names:
        value = getattr(module, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


ROTARY_ARGUMENTS = ("position_embeddings", "rotary_pos_emb", "freqs_cis", "rope", "position_ids")
QK_NORMS = ("q_norm", "k_norm", "q_layernorm", "k_layernorm")


def _qk_circuit(module: nn.Module, holder: nn.Module) -> bool:
    """False when something position- or head-basis-dependent acts between q/k and their product:
    rotary embeddings (a forward argument or a ``rotary``/``rotary_emb`` attribute), per-head
    q/k norms, or relative position scores."""
    try:
        arguments = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        arguments = {}
    if any(a in arguments for a in ROTARY_ARGUMENTS):
        return False
    if getattr(module, "rotary", False) is True or any(hasattr(m, a) for m in (module, holder)
                                                        for a in ("rotary_emb", *QK_NORMS)):
        return False
    return getattr(holder, "position_embedding_type", "absolute") in (None, "absolute")


def _checked(name: str, module: nn.Module, holder: nn.Module, layers, layout: str, paths: dict[str, str]) -> Heads:
    """A ``Heads`` whose shapes and attributes agree, or LayoutError naming the field that does not."""
    q, k, v, o = layers
    head_dim = _int_attr(holder, HEAD_DIMS)
    if head_dim is None:
        heads = _int_attr(holder, Q_COUNTS)
        if heads is None or q.out_features % heads:
            raise LayoutError(f"no head width: none of {HEAD_DIMS} on {type(holder).__name__}, and no head count "
                              f"({'/'.join(Q_COUNTS)}) dividing {paths['q']}.out_features {q.out_features}")
        head_dim = q.out_features // heads
    problems = []
    if q.out_features % head_dim:
        problems.append(f"{paths['q']}.out_features {q.out_features} is not a multiple of head_dim {head_dim}")
    if k.out_features != v.out_features or k.out_features % head_dim:
        problems.append(f"{paths['k']}/{paths['v']}.out_features {k.out_features}/{v.out_features} are not equal "
                        f"multiples of head_dim {head_dim}")
    if o.in_features != q.out_features:
        problems.append(f"{paths['o']}.in_features {o.in_features} != {paths['q']}.out_features {q.out_features}")
    if not problems:
        n_q, n_kv = q.out_features // head_dim, k.out_features // head_dim
        if n_q % n_kv:
            problems.append(f"{n_q} query heads are not a multiple of {n_kv} kv heads")
        for names, expected in ((Q_COUNTS, n_q), (KV_COUNTS, n_kv)):
            value = _int_attr(holder, names)
            if value is not None and value != expected:
                problems.append(f"{'/'.join(names)} = {value} but the projections hold {expected} heads of {head_dim}")
        groups = getattr(holder, "num_key_value_groups", None)
        if isinstance(groups, int) and groups != n_q // n_kv:
            problems.append(f"num_key_value_groups = {groups} but the projections hold {n_q // n_kv} query heads per kv head")
    if problems:
        raise LayoutError("; ".join(problems))
    return Heads(name, module, holder, q, k, v, o, head_dim, layout, paths, _qk_circuit(module, holder))


def _qkvo(name: str, module: nn.Module) -> Heads | None:
    for names in PROJECTIONS:
        layers = [getattr(module, p, None) for p in names]
        if all(isinstance(layer, nn.Linear) for layer in layers):
            return _checked(name, module, module, layers, "qkvo", dict(zip("qkvo", names)))
    return None


def _bert(name: str, module: nn.Module) -> Heads | None:
    output = getattr(getattr(module, "output", None), "dense", None)
    if not isinstance(output, nn.Linear):
        return None
    for inner_name in ("self", "attention"):
        inner = getattr(module, inner_name, None)
        layers = [getattr(inner, p, None) for p in ("query", "key", "value")]
        if isinstance(inner, nn.Module) and all(isinstance(layer, nn.Linear) for layer in layers):
            paths = {"q": f"{inner_name}.query", "k": f"{inner_name}.key", "v": f"{inner_name}.value", "o": "output.dense"}
            return _checked(name, module, inner, [*layers, output], "bert", paths)
    return None


LAYOUTS: list[Callable[[str, nn.Module], Heads | None]] = [_qkvo, _bert]
"""Recognisers tried in order on every module: (name, module) -> Heads, None (not this layout),
or LayoutError (this layout's names, but shapes/attributes that do not fit). Append to extend."""


@dataclass
class AttentionScan:
    """What ``find_attention`` saw: recognised modules, and attention-like modules it cannot compress."""

    found: dict[str, Heads] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)
    unknown_layers: dict[str, list[nn.Module]] = field(default_factory=dict)


def _looks_like_attention(module: nn.Module) -> bool:
    return "attention" in type(module).__name__.lower() and not isinstance(module, nn.MultiheadAttention)


def find_attention(model: nn.Module) -> AttentionScan:
    """Every attention module of a known layout, and every attention-like one of unknown layout.

    A module is attention-like when its class name contains "Attention" (nn.MultiheadAttention
    excepted: Torch-Pruning handles it) and it holds parameters; such a module that is neither
    recognised nor inside / around a recognised one is listed in ``unknown`` with why, and its
    parameter-holding layers in ``unknown_layers``.
    """
    scan = AttentionScan()
    problems: dict[str, str] = {}
    for name, module in model.named_modules():
        if any(name.startswith(f"{found}.") for found in scan.found):
            continue
        for layout in LAYOUTS:
            try:
                heads = layout(name, module)
            except LayoutError as err:
                problems[name] = str(err)
                continue
            if heads is not None:
                scan.found[name] = heads
                problems.pop(name, None)
                break
    for name, module in model.named_modules():
        if name in scan.found or any(name.startswith(f"{f}.") or f.startswith(f"{name}.") or not name for f in scan.found):
            continue
        if name in problems or _looks_like_attention(module):
            layers = [m for m in module.modules() if any(True for _ in m.parameters(recurse=False))]
            if not layers or any(name.startswith(f"{u}.") for u in scan.unknown):
                continue
            scan.unknown[name] = problems.get(name) or (
                f"{type(module).__name__} has no separate q/k/v/o projections of a known layout "
                f"({', '.join('/'.join(p) for p in PROJECTIONS)}, or self.query/key/value + output.dense)")
            scan.unknown_layers[name] = layers
    return scan


def attention_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Name -> module for every submodule with the zoo's layout (q/k/v/o_proj, ``num_heads``, ``head_dim``).

    Kept for the zoo checkpoints, which store ``num_heads`` / ``num_kv_heads`` per module; the
    compression itself uses :func:`find_attention`, which also knows the Hugging Face layouts.
    """
    found = {}
    for name, module in model.named_modules():
        if all(isinstance(getattr(module, p, None), nn.Linear) for p in ("q_proj", "k_proj", "v_proj", "o_proj")) \
                and hasattr(module, "num_heads") and hasattr(module, "head_dim"):
            found[name] = module
    return found


def as_heads(unit) -> Heads:
    """A ``Heads`` for a ``Heads`` or for a zoo-layout module."""
    if isinstance(unit, Heads):
        return unit
    heads = _qkvo("", unit)
    if heads is None:
        raise LayoutError(f"{type(unit).__name__} is not an attention module of a known layout")
    return heads


def _layout(attn: Heads) -> tuple[int, int, int]:
    return attn.num_kv_heads, attn.num_heads // attn.num_kv_heads, attn.head_dim


def _blocks(attn: Heads) -> dict[str, tuple[torch.Tensor, int, int]]:
    """tensor, dim, width per kv group for every tensor holding a kv group."""
    n_kv, rep, hd = _layout(attn)
    out = {}
    for p, layer, width in (("q", attn.q, rep * hd), ("k", attn.k, hd), ("v", attn.v, hd)):
        out[f"{p}.weight"] = (layer.weight.data, 0, width)
        if layer.bias is not None:
            out[f"{p}.bias"] = (layer.bias.data, 0, width)
    out["o.weight"] = (attn.o.weight.data, 1, rep * hd)
    return out


def _group_view(tensor: torch.Tensor, dim: int, width: int, n_kv: int) -> torch.Tensor:
    """(n_kv, width, rest...) view of the tensor with the kv-group axis first."""
    moved = tensor.movedim(dim, 0)
    return moved.reshape(n_kv, width, *moved.shape[1:])


def head_features(attn, producers_only: bool = False) -> torch.Tensor:
    """(num_kv_heads, d): q/k/v rows (and o columns unless ``producers_only``) per kv group."""
    attn = as_heads(attn)
    n_kv, _, _ = _layout(attn)
    mats = [_group_view(t, dim, w, n_kv).reshape(n_kv, -1).double()
            for key, (t, dim, w) in _blocks(attn).items() if not (producers_only and key.startswith("o."))]
    return torch.cat(mats, dim=1)


def _augmented(layer: nn.Linear, rows: slice) -> torch.Tensor:
    """[W | b] for the given output rows (W alone for a bias-free layer), float64."""
    w = layer.weight.data[rows].double()
    return torch.cat([w, layer.bias.data[rows].double()[:, None]], 1) if layer.bias is not None else w


def _write(layer: nn.Linear, rows: slice, augmented: torch.Tensor) -> None:
    width = layer.in_features
    layer.weight.data[rows] = augmented[:, :width].to(layer.weight.dtype)
    if layer.bias is not None:
        layer.bias.data[rows] = augmented[:, width].to(layer.bias.dtype)


def _shared_factor(blocks: list[torch.Tensor], rank: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Best rank-``rank`` factorisation of the stacked blocks [B_1; ...; B_r] ~ [L_1; ...; L_r] R with
    one right factor R (rank x cols): returns ([L_j], R), singular values split evenly."""
    u, sv, vh = torch.linalg.svd(torch.cat(blocks, 0), full_matrices=False)
    root = sv[:rank].sqrt()
    left = u[:, :rank] * root
    sizes = [b.shape[0] for b in blocks]
    return list(torch.split(left, sizes, 0)), root[:, None] * vh[:rank]


def _circuit_gram(attn: Heads, part: str) -> torch.Tensor:
    """(n_kv, n_kv) inner products of the kv groups' circuits, from head_dim x head_dim products only.

    "vo": <sum_j O_(i,j) V_i, ...> over query slots j (V_i = [W_v | b_v] rows); "qk": the same for
    the logit maps Q_(i,j)^T K_i; "qk-rows": the q and k rows themselves (rotary models).
    """
    n_kv, rep, hd = _layout(attn)
    q, k, v = (_augmented(layer, slice(None)) for layer in (attn.q, attn.k, attn.v))
    o = attn.o.weight.data.double()
    kv = lambda t: t.view(n_kv, hd, -1)  # noqa: E731
    per_slot = lambda t: t.view(n_kv, rep, hd, -1)  # noqa: E731
    if part == "qk-rows":
        rows = torch.cat([per_slot(q).reshape(n_kv, -1), kv(k).reshape(n_kv, -1)], 1)
        return rows @ rows.T
    if part == "vo":
        left = o.T.reshape(n_kv, rep, hd, -1)  # O_(i,j)^T: (hd, d_out)
        right = kv(v)
    else:
        left, right = per_slot(q), kv(k)  # circuit Q_(i,j)^T K_i
    # <L_i^T R_i, L_k^T R_k> = trace((L_i L_k^T)(R_k R_i^T)), summed over query slots
    ll = torch.einsum("ijad,kjbd->ikjab", left, left)      # (n, n, rep, hd, hd): L_(i,j) L_(k,j)^T
    rr = torch.einsum("kbd,iad->kiba", right, right)       # (n, n, hd, hd): R_k R_i^T, [k, i]
    return torch.einsum("ikjab,kiba->ik", ll, rr)


def head_coordinates(attn) -> torch.Tensor:
    """(num_kv_heads, num_kv_heads) coordinates of the kv groups in circuit space, for k-means.

    The features whose cluster means the merge forms - the query-key logit maps (or q/k rows
    where ``qk_circuit`` is False) and the value-output maps - each scaled to unit mean squared
    norm, embedded exactly (their Gram matrix, so distances are the circuits' Frobenius
    distances) without forming the d x d maps. Unlike raw rows, circuits do not depend on the
    arbitrary basis inside each head.
    """
    attn = as_heads(attn)
    gram = torch.zeros(attn.num_kv_heads, attn.num_kv_heads, dtype=torch.float64)
    for part in ("qk" if attn.qk_circuit else "qk-rows", "vo"):
        g = _circuit_gram(attn, part)
        gram += g / g.diagonal().mean().clamp(min=1e-30)
    eigvals, eigvecs = torch.linalg.eigh((gram + gram.T) / 2)
    return eigvecs * eigvals.clamp(min=0).sqrt()


def merge_heads(attn, labels: torch.Tensor, keep: torch.Tensor) -> None:
    """Merges each cluster of kv groups into its kept group, in place (module docstring): value-output
    maps summed, query-key logit maps averaged (or q/k rows averaged when ``qk_circuit`` is False),
    each projected to one head's rank."""
    attn = as_heads(attn)
    n_kv, rep, hd = _layout(attn)
    q, k, v, o = attn.layers()
    q_rows = lambda g, j: slice((g * rep + j) * hd, (g * rep + j + 1) * hd)  # noqa: E731
    kv_rows = lambda g: slice(g * hd, (g + 1) * hd)  # noqa: E731
    original = {name: _augmented(layer, slice(None)) for name, layer in (("q", q), ("k", k), ("v", v))}
    o_weight = o.weight.data.double().clone()
    for cluster, target in enumerate(keep.tolist()):
        members = torch.nonzero(labels == cluster).flatten().tolist()
        if members == [target]:
            continue
        # value-output: per query slot j, M_j = sum_i O_(i,j) [W_v,i | b_v,i]; shared value factor
        vo = [sum(o_weight[:, q_rows(i, j)] @ original["v"][kv_rows(i)] for i in members) for j in range(rep)]
        left, value = _shared_factor(vo, hd)
        _write(v, kv_rows(target), value)
        for j in range(rep):
            o.weight.data[:, q_rows(target, j)] = left[j].to(o.weight.dtype)
        if attn.qk_circuit:
            # query-key: per query slot j, C_j = mean_i [W_q,(i,j) | b]^T [W_k,i | b]; shared key factor
            qk = [sum(original["q"][q_rows(i, j)].T @ original["k"][kv_rows(i)] for i in members) / len(members)
                  for j in range(rep)]
            left, key = _shared_factor(qk, hd)
            _write(k, kv_rows(target), key)
            for j in range(rep):
                _write(q, q_rows(target, j), left[j].T)
        else:
            _write(k, kv_rows(target), torch.stack([original["k"][kv_rows(i)] for i in members]).mean(0))
            for j in range(rep):
                _write(q, q_rows(target, j), torch.stack([original["q"][q_rows(i, j)] for i in members]).mean(0))


def keep_heads(attn, keep: torch.Tensor) -> None:
    """Removes every kv group not in ``keep`` (with its query heads) and updates the head counts."""
    attn = as_heads(attn)
    n_kv, rep, hd = _layout(attn)
    drop = sorted(set(range(n_kv)) - set(keep.tolist()))
    if not drop:
        return
    q_rows = [h * hd + i for g in drop for h in range(g * rep, (g + 1) * rep) for i in range(hd)]
    kv_rows = [g * hd + i for g in drop for i in range(hd)]
    tp.prune_linear_out_channels(attn.q, q_rows)
    tp.prune_linear_out_channels(attn.k, kv_rows)
    tp.prune_linear_out_channels(attn.v, kv_rows)
    tp.prune_linear_in_channels(attn.o, q_rows)
    attn.sync()


def head_error(attn, labels: torch.Tensor | None, keep: torch.Tensor) -> float:
    """Relative error in circuit space (``head_coordinates``): distance of the circuits to their
    cluster means (fold, labels given) or the norm of the removed ones (prune, labels None), over
    the circuits' total squared norm. Read before merging; the same scale for fold and prune."""
    w = head_coordinates(attn)
    error = geometry.fold_error(w, labels) if labels is not None else geometry.prune_error(w, keep)
    return geometry.relative_error(error, w)

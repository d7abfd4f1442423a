"""``fold`` and ``prune``: one API for both methods on the same coupled channel groups.

Pipeline (Torch-Pruning's split): ``groups.trace`` -> ``groups.channel_groups`` (coupled
groups from the DependencyGraph) -> ``handlers`` (which tensors carry a channel) ->
``cluster.kmeans`` (fold) or Torch-Pruning's magnitude importance (prune) -> merge ->
``group.prune`` removes the channels not kept. Attention modules are compressed by whole
heads (``heads.py``; Hugging Face layouts included, and an attention-like module of unknown
layout is refused unless ``attention=False``). ``ratio`` is the fraction of channels removed
in every group (n_kept = floor(n * (1 - ratio))), as in the paper; the report gives the real
parameter and MAC reduction, which is larger. A Hugging Face model's config is rewritten
afterwards (head counts, intermediate size, head_dim) when it can describe the result
(``hf.sync_config``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import sys

import torch
import torch_pruning as tp
from threadpoolctl import threadpool_limits
from torch import nn

from genxr.compression import geometry, heads, hf
from genxr.compression.cluster import kmeans
from genxr.compression.groups import (
    AttentionLayoutError,
    ChannelGroup,
    CompressionError,
    channel_groups,
    check_inputs,
    trace,
)
from genxr.compression.handlers import merge_rows
from genxr.compression.repair import ExpectedActivation, fold_ar, producer_rows
from genxr.compression.report import CompressionReport, GroupReport

CRITERIA = ("l1", "l2", "random")

REPAIRS = ("none", "auto", "fold-ar", "expected-activation")


def kept_count(n: int, ratio: float, name: str, unit: str = "channels of group") -> int:
    """floor(n * (1 - ratio)); raises ValueError if that leaves nothing of ``unit`` ``name``."""
    k = math.floor(n * (1.0 - ratio) + 1e-9)
    if k < 1:
        raise ValueError(f"ratio {ratio} leaves zero of the {n} {unit} {name!r}; use a smaller ratio")
    return k


def _check(ratio: float) -> None:
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio must be in [0, 1), got {ratio}")


def _count(model: nn.Module, example_inputs) -> tuple[int, int]:
    was_training = model.training
    with contextlib.redirect_stdout(io.StringIO()):  # its op counter prints warnings on stdout (dict inputs)
        macs, params = tp.utils.count_ops_and_params(model, example_inputs)
    model.train(was_training)
    return int(params), int(macs)


def _run(model, example_inputs, ratio, method, choose, ignored_layers, attention, inplace,
         progress=False) -> tuple[nn.Module, CompressionReport]:
    """Single-threaded BLAS/OpenMP around ``_compress``: its many small clustering, merge and
    batch-1 tracing calls gain nothing from threads, and on a loaded machine spin-waiting
    worker threads slow folding down many times (docs/compression.md, "Benchmark")."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            return _compress(model, example_inputs, ratio, method, choose, ignored_layers, attention, inplace, progress)
    finally:
        torch.set_num_threads(threads)


def _progress_bar(method: str, enabled: bool):
    """A tqdm bar over groups on stderr (a no-op object when disabled)."""
    from tqdm import tqdm

    return tqdm(desc=method, unit="group", file=sys.stderr, disable=not enabled, leave=False)


def _unknown_attention(scan: heads.AttentionScan, ignored_ids: set[int]) -> dict[str, str]:
    """Attention-like modules of unknown layout whose linear layers are not all in ignored_layers."""
    return {name: reason for name, reason in scan.unknown.items()
            if not all(id(layer) in ignored_ids for layer in scan.unknown_layers[name])}


def _compress(model, example_inputs, ratio, method, choose, ignored_layers, attention, inplace,
              progress=False) -> tuple[nn.Module, CompressionReport]:
    """Shared loop; ``choose(graph, model, group | heads.Heads, k)`` merges (fold only) and
    returns (keep, relative error, repair applied)."""
    _check(ratio)
    names = {id(m): n for n, m in model.named_modules()}
    missing = [type(m).__name__ for m in ignored_layers if id(m) not in names]
    if missing:
        raise ValueError(f"ignored_layers holds modules that are not part of the model: {missing}")
    ignored_names = [names[id(m)] for m in ignored_layers]
    scan = heads.find_attention(model)
    unknown = _unknown_attention(scan, {id(m) for m in ignored_layers})
    if unknown and attention and ratio > 0:
        name, reason = next(iter(unknown.items()))
        raise AttentionLayoutError(
            f"attention module {name!r} has a layout genxr cannot compress by heads ({reason}); pass attention=False "
            f"(--no-attention) to leave every attention whole, or its layers in ignored_layers"
            + (f" ({len(unknown) - 1} more such modules)" if len(unknown) > 1 else ""))
    model = model if inplace else copy.deepcopy(model)
    ignored_layers = [model.get_submodule(n) for n in ignored_names]
    scan = heads.find_attention(model)
    attn = scan.found
    whole = {layer: f"attention {name!r} of unknown layout, left whole"
             for name in _unknown_attention(scan, {id(m) for m in ignored_layers}) for layer in scan.unknown_layers[name]}
    graph = trace(model, example_inputs, ignored_layers)
    report = CompressionReport(method, ratio)
    report.params_before, report.macs_before = _count(model, example_inputs)
    bar = _progress_bar(method, progress)
    if ratio > 0:
        with torch.no_grad():
            for group in channel_groups(graph, model, ignored_layers, attn.values(), whole):
                bar.update(1)
                if group.skip_reason:
                    report.skipped[group.name] = group.skip_reason
                    continue
                k = kept_count(group.size, ratio, group.name)
                keep, error, repair = choose(graph, model, group, k)
                drop = sorted(set(range(group.size)) - set(keep.tolist()))
                if drop:
                    try:
                        group.tp_group.prune(idxs=drop)
                    except Exception as err:  # noqa: BLE001 - re-raised naming the group
                        raise CompressionError(f"Torch-Pruning could not remove channels of group {group.name!r} "
                                               f"({type(err).__name__}: {err}); pass its layers in ignored_layers") from err
                report.groups.append(GroupReport(group.name, "channels", group.size, len(keep), error, repair))
            for name, unit in attn.items() if attention else ():
                bar.update(1)
                n_kv = unit.num_kv_heads
                k = kept_count(n_kv, ratio, name, "kv heads of attention")
                keep, error, repair = choose(None, model, unit, k)
                heads.keep_heads(unit, keep)
                report.groups.append(GroupReport(name, "heads", n_kv, len(keep), error, repair))
    bar.close()
    if not attention:
        report.skipped.update({name: "attention left whole (attention=False)" for name in attn})
    report.skipped.update({name: f"attention of unknown layout, left whole: {reason}"
                           for name, reason in _unknown_attention(scan, {id(m) for m in ignored_layers}).items()})
    if hf.is_hf_model(model):
        report.config_updates, report.config_note = hf.sync_config(model)
    try:
        check_inputs(model, example_inputs)
    except ValueError as err:
        raise CompressionError(f"the compressed model no longer runs ({err}); a layer whose channels are structured "
                               "in a way the graph does not see (e.g. fused q/k/v heads) belongs in ignored_layers") from err
    report.params_after, report.macs_after = _count(model, example_inputs)
    return model, report


def fold(model: nn.Module, example_inputs, ratio: float, *, repair: str = "auto", ignored_layers=(),
         attention: bool = True, seed: int = 0, pca_dim: int | None = None,
         inplace: bool = False, progress: bool = False) -> tuple[nn.Module, CompressionReport]:
    """Folds ``ratio`` of the channels of every coupled group (and of every attention's kv heads).

    Per group: cluster the channels with k-means on [producer rows | consumer columns]
    (seed ``seed``, optional PCA to ``pca_dim``), set each cluster's representative to the
    members' mean producer rows and summed consumer columns, remove the other members.
    repair: "none"; "fold-ar" (BatchNorm variance correction); "expected-activation"
    (consumer-bias correction for norm -> MLP groups); "auto" applies each where it fits.
    Returns a compressed copy (the input model is untouched unless ``inplace``) and the report.
    ``progress`` shows a bar over groups on stderr.
    """
    if repair not in REPAIRS:
        raise ValueError(f"unknown repair {repair!r}; choose from {REPAIRS}")

    def choose(graph, model, unit, k):
        if isinstance(unit, ChannelGroup):
            features = unit.features()
            labels, keep = kmeans(features, k, seed, pca_dim)
            rows = producer_rows(unit)
            producers = unit.features(("out",))
            error = geometry.relative_error(geometry.fold_error(producers, labels), producers)
            correction = ExpectedActivation(graph, model, unit) if repair in ("auto", "expected-activation") else None
            for member in unit.members:
                for slot in member.slots:
                    merge_rows(slot, member.index, labels, keep, "mean" if member.role == "out" else "sum")
            applied = []
            if repair in ("auto", "fold-ar") and fold_ar(unit, rows, labels, keep):
                applied.append("fold-ar")
            if correction is not None and correction.apply(keep):
                applied.append("expected-activation")
            return keep, error, "+".join(applied)
        labels, keep = kmeans(heads.head_coordinates(unit), k, seed, pca_dim)
        error = heads.head_error(unit, labels, keep)
        heads.merge_heads(unit, labels, keep)
        return keep, error, ""

    return _run(model, example_inputs, ratio, "fold", choose, ignored_layers, attention, inplace, progress)


def prune(model: nn.Module, example_inputs, ratio: float, criterion: str = "l2", *, ignored_layers=(),
          attention: bool = True, seed: int = 0, inplace: bool = False,
          progress: bool = False) -> tuple[nn.Module, CompressionReport]:
    """Removes ``ratio`` of the channels of every coupled group (same groups as ``fold``).

    criterion "l1"/"l2": Torch-Pruning's ``GroupMagnitudeImportance(p)`` over the whole
    group (heads: L_p norm of each kv group's q/k/v rows and o columns); "random": a
    seeded permutation. Returns a compressed copy and the report.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose from {CRITERIA}")
    generator = torch.Generator().manual_seed(seed)
    importance = tp.importance.GroupMagnitudeImportance(p=2 if criterion == "l2" else 1)

    def choose(graph, model, unit, k):
        if isinstance(unit, ChannelGroup):
            n = unit.size
            scores = importance(unit.tp_group) if criterion != "random" else None
            rows = unit.features(("out",))
        else:
            n = unit.num_kv_heads
            rows = heads.head_features(unit)
            scores = rows.norm(p=2 if criterion == "l2" else 1, dim=1)
        if criterion == "random":
            scores = torch.rand(n, generator=generator)
        keep = torch.sort(torch.topk(scores.double(), k).indices).values
        if isinstance(unit, ChannelGroup):
            error = geometry.relative_error(geometry.prune_error(rows, keep), rows)
        else:
            error = heads.head_error(unit, None, keep)
        return keep, error, ""

    return _run(model, example_inputs, ratio, f"prune-{criterion}", choose, ignored_layers, attention, inplace, progress)

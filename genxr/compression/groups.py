"""Coupled channel groups from Torch-Pruning's DependencyGraph, with clear errors.

``trace`` builds the graph (eval mode, grad enabled, inputs checked first) and names the
module that breaks it. ``channel_groups`` walks ``DG.get_all_groups`` and turns every
Torch-Pruning group into a ``ChannelGroup``: per module touched, its role (producer "out" /
consumer "in"), the tensors carrying the channel (from ``handlers``), and an index
(n_channels, per) from the group's channel to the module's positions. A group is foldable
when its channels are read by at least one consumer (channels that reach the model output,
such as logits, are not), it has no channel-mixing normalisation (LayerNorm, RMSNorm,
GroupNorm and their look-alikes by class name such as Hugging Face's LlamaRMSNorm: a
transformer's residual stream) and every module in it has a handler.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn

from genxr.compression.handlers import CHANNEL_MIXING, HANDLERS, PASS_THROUGH, OpType, Slot, UnsupportedLayerError
from genxr.compression.heads import as_heads


class TraceError(RuntimeError):
    """The model cannot be traced into a dependency graph; the message names the module."""


class CompressionError(RuntimeError):
    """Compression produced a model that does not run, or Torch-Pruning refused a group; names it."""


class AttentionLayoutError(CompressionError):
    """An attention-like module of a layout genxr cannot compress by heads; the message names it."""


def call(model: nn.Module, example_inputs):
    """model(x), model(*x) or model(**x) for a tensor, a tuple/list or a dict of inputs."""
    if isinstance(example_inputs, dict):
        return model(**example_inputs)
    if isinstance(example_inputs, (tuple, list)):
        return model(*example_inputs)
    return model(example_inputs)


@contextlib.contextmanager
def _module_stack(model: nn.Module, stack: list[str]):
    """Records the names of the modules whose forward is running (innermost last)."""
    names = {m: n or type(model).__name__ for n, m in model.named_modules()}

    def enter(module, _inputs) -> None:
        stack.append(names[module])

    def leave(_module, _inputs, _output) -> None:
        stack.pop()

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def check_inputs(model: nn.Module, example_inputs) -> None:
    """Runs one forward pass; raises ValueError naming the module that rejects the inputs."""
    stack: list[str] = []
    try:
        with torch.no_grad(), _module_stack(model, stack):
            call(model, example_inputs)
    except Exception as err:  # noqa: BLE001 - any failure means the inputs do not fit
        where = stack[-1] if stack else type(model).__name__
        raise ValueError(f"example inputs do not fit the model: module {where!r} raised {type(err).__name__}: {err}") from err


def trace(model: nn.Module, example_inputs, ignored_layers=()) -> tp.DependencyGraph:
    """Builds the dependency graph in eval mode; raises TraceError naming the module that breaks it."""
    was_training = model.training
    model.eval()
    try:
        check_inputs(model, example_inputs)
        stack: list[str] = []
        try:
            with torch.enable_grad(), _module_stack(model, stack):
                graph = tp.DependencyGraph().build_dependency(
                    model, example_inputs=example_inputs, ignored_layers=list(ignored_layers), verbose=False)
        except Exception as err:  # noqa: BLE001 - re-raised with the module named
            where = stack[-1] if stack else type(model).__name__
            raise TraceError(f"cannot trace the model: module {where!r} broke Torch-Pruning's tracing "
                             f"({type(err).__name__}: {err})") from err
    finally:
        model.train(was_training)
    ignored = {id(m) for m in ignored_layers}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Conv1d, nn.Linear)) and module not in graph.module2node and id(module) not in ignored:
            raise TraceError(f"cannot trace the model: module {name!r} ({type(module).__name__}) is not reached by "
                             "autograd from the output (detached, computed outside torch, or unused)")
    return graph


@dataclass
class Member:
    """One module touched by a group: its name, role, channel-carrying tensors and index."""

    name: str
    role: str
    op: OpType
    slots: list[Slot]
    index: torch.Tensor


@dataclass
class ChannelGroup:
    """A Torch-Pruning group seen as n channels shared by producers and consumers."""

    name: str
    size: int
    members: list[Member] = field(default_factory=list)
    tp_group: object = None
    skip_reason: str | None = None

    def features(self, roles=("out", "in")) -> torch.Tensor:
        """(size, d): every feature slot of the given roles, concatenated per channel."""
        mats = [torch.zeros(self.size, 0, dtype=torch.float64)]
        for member in self.members:
            if member.role in roles:
                mats += [channel_matrix_of(slot, member.index) for slot in member.slots if slot.feature]
        return torch.cat(mats, dim=1)

    def modules(self, role: str) -> list[Member]:
        return [m for m in self.members if m.role == role]


def channel_matrix_of(slot: Slot, index: torch.Tensor) -> torch.Tensor:
    view = slot.tensor.movedim(slot.dim, 0)
    return view[index].reshape(index.shape[0], -1).double()


def _owner(model: nn.Module, param_name: str) -> nn.Module:
    return model.get_submodule(param_name.rsplit(".", 1)[0]) if "." in param_name else model


def _index(idxs, root_idxs, size: int) -> torch.Tensor | None:
    """(size, per) positions in the module for each root channel, in root order; None when the
    root channels do not map to equally many positions (e.g. a fused q/k/v projection)."""
    counts = torch.bincount(torch.tensor(list(root_idxs), dtype=torch.long), minlength=size)
    if len(counts) != size or len(idxs) == 0 or bool((counts != counts[0]).any()):
        return None
    order = sorted(range(len(idxs)), key=lambda t: (root_idxs[t], idxs[t]))
    flat = torch.tensor([idxs[t] for t in order], dtype=torch.long)
    return flat.view(size, -1)


def is_channel_mixing_norm(module) -> bool:
    """LayerNorm, GroupNorm, RMSNorm, and look-alikes by class name (Hugging Face's LlamaRMSNorm,
    Qwen2RMSNorm, T5LayerNorm...): normalisations over the channel axis."""
    if isinstance(module, (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)):
        return True
    return isinstance(module, nn.Module) and re.search(r"(RMS|Layer|Group)Norm", type(module).__name__) is not None


def _groups_of(graph: tp.DependencyGraph, ignored_layers, skip_roots=()) -> Iterator:
    """``graph.get_all_groups`` (same roots, order and ignore rule), with roots in ``skip_roots`` not
    started from and its failures (on structures it mis-maps) named.

    Attention's q/k/v projections are skipped as roots: they are compressed by whole heads, and
    Torch-Pruning's dependency fixing through rotary embeddings (slice, negate, concatenate)
    takes minutes on even a tiny LLaMA.
    """
    ignored = {id(m) for m in [*ignored_layers, *graph.IGNORED_LAYERS_IN_TRACING]}
    skip = {id(m) for m in skip_roots}
    visited: set[int] = set()
    roots = (tp.ops.TORCH_CONV, tp.ops.TORCH_LINEAR)
    for module in list(graph.module2node.keys()):
        if id(module) in ignored or id(module) in skip or id(module) in visited or not isinstance(module, roots):
            continue
        pruner = graph.get_pruner_of_module(module)
        if pruner is None or pruner.get_out_channels(module) is None:
            continue
        try:
            group = graph.get_pruning_group(module, pruner.prune_out_channels, list(range(pruner.get_out_channels(module))))
        except Exception as err:  # noqa: BLE001 - re-raised with a remedy
            raise CompressionError(f"Torch-Pruning could not form the next group after earlier ones were compressed "
                                   f"({type(err).__name__}: {err}); layers whose channels are structured in a way "
                                   "the graph does not see (e.g. fused q/k/v heads) belong in ignored_layers") from err
        prunable = True
        for item in group:
            if graph.is_out_channel_pruning_fn(item.dep.handler):
                visited.add(id(item.dep.target.module))
                if id(item.dep.target.module) in ignored:
                    prunable = False
        if prunable:
            yield group


def channel_groups(graph: tp.DependencyGraph, model: nn.Module, ignored_layers=(),
                   attention_modules=(), whole=None) -> Iterator[ChannelGroup]:
    """Yields one ChannelGroup per Torch-Pruning group (skipped ones carry ``skip_reason``).

    ``attention_modules``: ``heads.Heads`` or zoo-layout modules. A group that reaches their
    head-structured side (q/k/v output rows, o input columns) is skipped here: attention is
    compressed by whole heads in ``heads.py``; their other side (q/k/v input columns, o output
    rows) is an ordinary linear layer. ``whole``: module -> reason for layers whose groups are
    left whole in either role (attention of an unknown layout). Group identity is the root
    module's name.
    """
    head_side: dict[int, str] = {}
    for attn in attention_modules:
        q, k, v, o = as_heads(attn).layers()
        head_side.update({id(q): "out", id(k): "out", id(v): "out", id(o): "in"})
    whole = {id(m): reason for m, reason in (whole or {}).items()}
    skip_roots = [m for m in model.modules() if head_side.get(id(m)) == "out" or id(m) in whole]
    names = {m: n for n, m in model.named_modules()}
    for tp_group in _groups_of(graph, ignored_layers, skip_roots):
        root = tp_group[0].dep.target.module
        size = len(tp_group[0].idxs)
        group = ChannelGroup(names.get(root, type(root).__name__), size, tp_group=tp_group)
        for item in tp_group:
            dep, node = item.dep, item.dep.target
            if node.type in PASS_THROUGH:
                continue
            module = node.module
            role = "out" if graph.is_out_channel_pruning_fn(dep.handler) else "in"
            if node.type == OpType.PARAMETER:
                pname = graph._param_to_name.get(module, "parameter")
                owner = _owner(model, pname)
                if is_channel_mixing_norm(owner):
                    group.skip_reason = f"channel-mixing normalisation {pname!r}"
                    break
                slots, mname = [Slot(module.data, node.pruning_dim)], pname
            elif node.type in CHANNEL_MIXING:
                group.skip_reason = f"channel-mixing normalisation {names.get(module)!r}"
                break
            elif head_side.get(id(module)) == role:
                group.skip_reason = "attention projections (compressed by whole heads)"
                break
            elif id(module) in whole:
                group.skip_reason = whole[id(module)]
                break
            elif node.type not in HANDLERS:
                group.skip_reason = f"no fold handler for {type(module).__name__} {names.get(module)!r}"
                break
            else:
                try:
                    slots = HANDLERS[node.type](module, role)
                except UnsupportedLayerError as err:
                    group.skip_reason = f"{names.get(module)!r}: {err}"
                    break
                mname = names.get(module, type(module).__name__)
            index = _index(item.idxs, item.root_idxs, size)
            if index is None:
                group.skip_reason = f"channels of {mname!r} do not map one-to-one onto the group's (fused projection?)"
                break
            group.members.append(Member(mname, role, node.type, slots, index))
        if group.skip_reason is None and not group.modules("in"):
            group.skip_reason = "channels reach the model output (no consumer)"
        yield group

"""genxr checkpoints: ``model.safetensors`` (weights) + ``config.json`` (how to rebuild the module).

config.json::

    {"format": "genxr-checkpoint", "version": 1,
     "architecture": "resnet18", "kwargs": {...constructor arguments...},
     "shapes": {"layers.0.conv1.weight": [32, 64, 3, 3], ...},   # every tensor, after compression
     "attributes": {"blocks.0.attn": {"num_heads": 2, "num_kv_heads": 1}, ...},
     "metadata": {...free-form: training recipe, compression report...}}

Loading builds the architecture from ``kwargs``, resizes every tensor whose stored shape
differs, creates tensors a repair added (a bias on a bias-free layer) (and the width attributes of Linear/Conv/BatchNorm/LayerNorm/Embedding), restores the
head counts, then loads the weights strictly - so folded and pruned models reload.
Torch-Pruning's ``tp.state_dict`` / ``tp.load_state_dict`` was rejected: it pickles every
module's ``__dict__`` (needs ``torch.load`` with pickle, not safetensors, and breaks when the
class changes), while this format is plain JSON plus tensors.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from genxr.compression.heads import attention_modules
from genxr.compression.research.models import architecture_of, build

FORMAT, VERSION = "genxr-checkpoint", 1
WEIGHTS, CONFIG = "model.safetensors", "config.json"


class CheckpointError(ValueError):
    """A directory that is not a readable genxr checkpoint."""


def save_checkpoint(model: nn.Module, directory: Path | str, metadata: dict | None = None) -> Path:
    """Writes a zoo model (compressed or not) to ``directory``; returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    attributes = {name: {"num_heads": a.num_heads, "num_kv_heads": getattr(a, "num_kv_heads", a.num_heads)}
                  for name, a in attention_modules(model).items()}
    config = {
        "format": FORMAT, "version": VERSION,
        "architecture": architecture_of(model),
        "kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(model.config).items()},
        "shapes": {k: list(v.shape) for k, v in state.items()},
        "attributes": attributes,
        "metadata": metadata or {},
    }
    save_file(state, str(directory / WEIGHTS))
    (directory / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return directory


def read_config(directory: Path | str) -> dict:
    """The checkpoint's config.json; raises CheckpointError if absent or of another format."""
    path = Path(directory) / CONFIG
    if not path.is_file() or not (Path(directory) / WEIGHTS).is_file():
        raise CheckpointError(f"{directory} is not a genxr checkpoint (needs {CONFIG} and {WEIGHTS})")
    config = json.loads(path.read_text())
    if config.get("format") != FORMAT or config.get("version") != VERSION:
        raise CheckpointError(f"{path} is not a {FORMAT} v{VERSION} config")
    return config


def load_checkpoint(directory: Path | str) -> tuple[nn.Module, dict]:
    """Rebuilds the model (in eval mode) and returns it with its config."""
    config = read_config(directory)
    model = build(config["architecture"], **config["kwargs"])
    for name, shape in config["shapes"].items():
        _resize(model, name, tuple(shape))
    for name, values in config["attributes"].items():
        for key, value in values.items():
            setattr(model.get_submodule(name), key, value)
    model.load_state_dict(load_file(str(Path(directory) / WEIGHTS)), strict=True)
    return model.eval(), config


_WIDTHS = {
    nn.Linear: lambda m, w: {"out_features": w.shape[0], "in_features": w.shape[1]},
    nn.Conv2d: lambda m, w: {"out_channels": w.shape[0], "in_channels": w.shape[1] * m.groups},
    nn.BatchNorm2d: lambda m, w: {"num_features": w.shape[0]},
    nn.LayerNorm: lambda m, w: {"normalized_shape": tuple(w.shape)},
    nn.RMSNorm: lambda m, w: {"normalized_shape": tuple(w.shape)},
    nn.Embedding: lambda m, w: {"num_embeddings": w.shape[0], "embedding_dim": w.shape[1]},
}


def _resize(model: nn.Module, name: str, shape: tuple[int, ...]) -> None:
    """Replaces tensor ``name`` by an empty one of ``shape`` if it differs or is None; updates widths."""
    owner_name, _, attr = name.rpartition(".")
    owner = model.get_submodule(owner_name)
    current = getattr(owner, attr)
    if current is not None and tuple(current.shape) == shape:
        return
    fresh = torch.empty(shape, dtype=current.dtype if current is not None else torch.float32)
    if current is None or isinstance(current, nn.Parameter):
        setattr(owner, attr, nn.Parameter(fresh, requires_grad=current is None or current.requires_grad))
    else:
        owner.register_buffer(attr, fresh)
    if attr == "weight" and type(owner) in _WIDTHS:
        for key, value in _WIDTHS[type(owner)](owner, fresh).items():
            setattr(owner, key, value)

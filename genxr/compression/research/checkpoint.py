"""genxr checkpoints: ``model.safetensors`` (weights) + ``config.json`` (how to rebuild the module).

config.json::

    {"format": "genxr-checkpoint", "version": 1,
     "architecture": "resnet18", "kwargs": {...constructor arguments...},
     "shapes": {"layers.0.conv1.weight": [32, 64, 3, 3], ...},   # every tensor, after compression
     "attributes": {"blocks.0.attn": {"num_heads": 2, "num_kv_heads": 1}, ...},
     "sha256": "...",                                            # of model.safetensors
     "metadata": {...free-form: training recipe, compression report...}}

Loading builds the architecture from ``kwargs``, resizes every tensor whose stored shape
differs, creates tensors a repair added (a bias on a bias-free layer) (and the width attributes of Linear/Conv/BatchNorm/LayerNorm/Embedding), restores the
head counts, then loads the weights strictly - so folded and pruned models reload.
Torch-Pruning's ``tp.state_dict`` / ``tp.load_state_dict`` was rejected: it pickles every
module's ``__dict__`` (needs ``torch.load`` with pickle, not safetensors, and breaks when the
class changes), while this format is plain JSON plus tensors.

Loading checks everything before the model runs, and every failure is a
:class:`CheckpointError` naming the file and what is wrong: ``config.json`` must parse and
hold every key above with JSON types, ``kwargs`` must validate (strictly) as the
architecture's config dataclass, ``model.safetensors`` must match the recorded sha256 (a
checkpoint saved before it was recorded has none and loads unchecked) and parse, every
``shapes`` / ``attributes`` entry must name a tensor / an attention module of the
architecture with head counts that fit its projections, and the tensors must be exactly
the model's (none missing, none unexpected, each of its shape).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt
from safetensors.torch import save
from torch import nn

from genxr.compression.heads import attention_modules
from genxr.compression.research.models import ARCHITECTURES, architecture_of, build
from genxr.compression.research.models.llama import LlamaConfig
from genxr.compression.research.models.preact_resnet import PreActResNetConfig
from genxr.compression.research.models.resnet import ResNetConfig
from genxr.compression.research.models.vit import ViTConfig
from genxr.compression.tensors import resize_tensor
from genxr.platform.checkpoints import InvalidConfig, read_weights, sha256_hex, state_problem, validate

FORMAT, VERSION = "genxr-checkpoint", 1
WEIGHTS, CONFIG = "model.safetensors", "config.json"
KWARGS: dict[str, type] = {"resnet18": ResNetConfig, "preact_resnet18": PreActResNetConfig, "vit": ViTConfig,
                           "llama": LlamaConfig}
"""Architecture -> the config dataclass its ``kwargs`` are validated as (strictly; unknown arguments refused)."""


class CheckpointError(ValueError):
    """A directory that is not a readable genxr checkpoint; the message names the file and what is wrong."""


class _Heads(BaseModel):
    model_config = ConfigDict(extra="forbid")
    num_heads: PositiveInt
    num_kv_heads: PositiveInt


class _Config(BaseModel):
    """The keys of ``config.json`` the loader reads besides ``format`` and ``version``."""

    model_config = ConfigDict(extra="ignore")
    architecture: str
    kwargs: dict[str, Any]
    shapes: dict[str, list[NonNegativeInt]]
    attributes: dict[str, _Heads] = Field(default_factory=dict)
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")] | None = None  # None: saved before it was recorded
    metadata: dict[str, Any] = Field(default_factory=dict)


def save_checkpoint(model: nn.Module, directory: Path | str, metadata: dict | None = None) -> Path:
    """Writes a zoo model (compressed or not) to ``directory``; returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    attributes = {name: {"num_heads": a.num_heads, "num_kv_heads": getattr(a, "num_kv_heads", a.num_heads)}
                  for name, a in attention_modules(model).items()}
    payload = save(state)
    config = {
        "format": FORMAT, "version": VERSION,
        "architecture": architecture_of(model),
        "kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(model.config).items()},
        "shapes": {k: list(v.shape) for k, v in state.items()},
        "attributes": attributes,
        "sha256": sha256_hex(payload),
        "metadata": metadata or {},
    }
    (directory / WEIGHTS).write_bytes(payload)
    (directory / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return directory


def read_config(directory: Path | str) -> dict:
    """The checkpoint's config.json, its keys checked; raises CheckpointError if absent, unreadable, of
    another format or with a missing or mistyped key (``attributes`` and ``metadata`` default to empty)."""
    path = Path(directory) / CONFIG
    if not path.is_file() or not (Path(directory) / WEIGHTS).is_file():
        raise CheckpointError(f"{directory} is not a genxr checkpoint (needs {CONFIG} and {WEIGHTS})")
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({type(err).__name__}: {err})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT or config.get("version") != VERSION:
        raise CheckpointError(f"{path} is not a {FORMAT} v{VERSION} config")
    try:
        validate(_Config, config)
    except InvalidConfig as err:
        raise CheckpointError(f"{path}: {err}") from None
    if config["architecture"] not in ARCHITECTURES:
        raise CheckpointError(f"{path}: architecture = {config['architecture']!r} is not a zoo architecture; "
                              f"known: {sorted(ARCHITECTURES)}")
    config.setdefault("attributes", {})
    config.setdefault("metadata", {})
    return config


def load_checkpoint(directory: Path | str) -> tuple[nn.Module, dict]:
    """Rebuilds the model (in eval mode) and returns it with its config (checks: module docstring)."""
    config = read_config(directory)
    path, weights = Path(directory) / CONFIG, Path(directory) / WEIGHTS
    try:
        tensors = read_weights(weights, config.get("sha256"))
    except InvalidConfig as err:
        raise CheckpointError(f"{weights}: {err}") from None
    architecture, kwargs = config["architecture"], config["kwargs"]
    if architecture in KWARGS:
        unknown = sorted(set(kwargs) - {f.name for f in dataclasses.fields(KWARGS[architecture])})
        if unknown:
            raise CheckpointError(f"{path}: kwargs {unknown}: not arguments of {architecture}")
        try:
            kwargs = dataclasses.asdict(validate(KWARGS[architecture], kwargs, "kwargs"))
        except InvalidConfig as err:
            raise CheckpointError(f"{path}: bad {architecture} arguments: {err}") from None
    try:
        model = build(architecture, **kwargs)
    except (ValueError, TypeError, RuntimeError, ZeroDivisionError, OverflowError, MemoryError) as err:
        raise CheckpointError(f"{path}: no {architecture} can be built from kwargs {kwargs} "
                              f"({type(err).__name__}: {err})") from None
    for name, shape in config["shapes"].items():
        problem = _resize_problem(model, name, tuple(shape))
        if problem:
            raise CheckpointError(f"{path}: shapes.{name}: {problem}")
    attention = attention_modules(model)
    for name, heads in config["attributes"].items():
        if name not in attention:
            raise CheckpointError(f"{path}: attributes.{name}: not an attention module of {architecture}")
        module = attention[name]
        module.num_heads, module.num_kv_heads = heads["num_heads"], heads["num_kv_heads"]
        problem = _heads_problem(module)
        if problem:
            raise CheckpointError(f"{path}: attributes.{name} = {heads}: {problem}")
    problem = state_problem(tensors, model.state_dict())
    if problem:
        raise CheckpointError(f"{weights}: {problem} (after the resizes {CONFIG} lists)")
    model.load_state_dict(tensors, strict=True)
    return model.eval(), config


def _resize_problem(model: nn.Module, name: str, shape: tuple[int, ...]) -> str | None:
    """:func:`_resize`, or why ``name`` is no tensor slot of ``model`` (nothing changed then)."""
    owner_name, _, attr = name.rpartition(".")
    try:
        owner = model.get_submodule(owner_name)
    except AttributeError:
        return f"{type(model).__name__} has no module {owner_name!r}"
    if attr not in owner._parameters and attr not in owner._buffers:
        return f"{type(owner).__name__} {owner_name!r} has no tensor {attr!r}"
    try:
        resize_tensor(model, name, shape)
    except (RuntimeError, ValueError, TypeError, IndexError, OverflowError, MemoryError) as err:
        return f"cannot resize to {list(shape)} ({type(err).__name__}: {err})"
    return None


def _heads_problem(attn: nn.Module) -> str | None:
    """Why ``attn``'s head counts do not fit its projections (each head ``head_dim`` wide), or None."""
    if attn.num_heads % attn.num_kv_heads:
        return f"num_heads {attn.num_heads} is not a multiple of num_kv_heads {attn.num_kv_heads}"
    for proj, heads in (("q_proj", attn.num_heads), ("k_proj", attn.num_kv_heads), ("v_proj", attn.num_kv_heads)):
        rows = getattr(attn, proj).weight.shape[0]
        if rows != heads * attn.head_dim:
            return f"{proj} has {rows} rows, not {heads} heads x head_dim {attn.head_dim}"
    return None



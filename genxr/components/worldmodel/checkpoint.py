"""World-model checkpoints: a directory per model with ``config.json`` + ``model.safetensors``.

``model.safetensors`` holds the weights (float16 when shipped, float32 while training);
``config.json`` holds the model kind, its frozen config, the training summary and the
sha256 of the weights file, so a truncated or altered file is refused before torch reads
it. Nothing is pickled. A training run directory also holds ``train_state.safetensors``
(optimizer moments, EMA weights) and ``train_state.json`` (step, preset) for resuming.
Every failure raises :class:`CheckpointError` naming the path and the reason; a config
that differs from the one expected names the differing field.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save
from torch import nn

from genxr.components.worldmodel.codec import FrameCodec, FrameCodecConfig
from genxr.components.worldmodel.conditioning import ConditioningConfig
from genxr.components.worldmodel.dit import VideoDiT, VideoDiTConfig

FORMAT = "genxr-worldmodel-v1"
CHECKPOINT_ROOT = Path(__file__).parent / "checkpoints"
KINDS: dict[str, tuple[type[nn.Module], type]] = {"FrameCodec": (FrameCodec, FrameCodecConfig),
                                                  "VideoDiT": (VideoDiT, VideoDiTConfig)}


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded or does not match; the message names the file and the reason."""


def config_from_dict(cls: type, values: dict):
    """Rebuilds a (nested) frozen config dataclass from its ``asdict`` form; unknown fields raise naming them."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise CheckpointError(f"{cls.__name__} has no field(s) {unknown}")
    kwargs = {}
    for name, value in values.items():
        if name == "conditioning":
            value = config_from_dict(ConditioningConfig, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def config_differences(have, want, prefix: str = "") -> list[str]:
    """``field: checkpoint value vs expected value`` for every differing (nested) field."""
    out = []
    for f in fields(want):
        a, b = getattr(have, f.name), getattr(want, f.name)
        if is_dataclass(b):
            out += config_differences(a, b, f"{prefix}{f.name}.")
        elif a != b:
            out.append(f"{prefix}{f.name}: {a!r} in the checkpoint vs {b!r} expected")
    return out


def _atomic_write(path: Path, body: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(body)
    os.replace(temporary, path)


def save_model(directory: Path, model: nn.Module, summary: dict, dtype: torch.dtype = torch.float32) -> Path:
    """Writes ``model`` (a :data:`KINDS` model) and ``summary`` (JSON-able) to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().to(dtype).contiguous() for key, value in model.state_dict().items()}
    payload = save(tensors, metadata={"format": FORMAT})
    config = {"format": FORMAT, "kind": type(model).__name__, "config": asdict(model.config),
              "sha256": hashlib.sha256(payload).hexdigest(), "summary": summary}
    _atomic_write(directory / "model.safetensors", payload)
    _atomic_write(directory / "config.json", (json.dumps(config, indent=2) + "\n").encode())
    return directory


def read_config(directory: Path) -> dict:
    """The parsed ``config.json`` of a checkpoint directory."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"world-model checkpoint {directory}: config.json is missing")
    try:
        config = json.loads(path.read_text())
        if config.get("format") != FORMAT or config.get("kind") not in KINDS:
            raise CheckpointError(f"{path}: format {config.get('format')!r} / kind {config.get('kind')!r} is not "
                                  f"a {FORMAT} model")
        missing = [key for key in ("sha256", "config") if key not in config]
        if missing:
            raise CheckpointError(f"{path}: not a valid world-model config (missing {missing})")
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError, AttributeError) as err:
        raise CheckpointError(f"{path}: not a valid world-model config ({type(err).__name__}: {err})") from None
    return config


def load_model(directory: Path, expected=None) -> tuple[nn.Module, dict]:
    """The model (eval mode, float32) and its ``config.json``; ``expected`` (a config) must match exactly."""
    directory = Path(directory)
    config = read_config(directory)
    weights = directory / "model.safetensors"
    if not weights.is_file():
        raise CheckpointError(f"world-model checkpoint {directory}: model.safetensors is missing")
    payload = weights.read_bytes()
    if hashlib.sha256(payload).hexdigest() != config["sha256"]:
        raise CheckpointError(f"{weights}: sha256 does not match config.json ({len(payload)} bytes; truncated or corrupt)")
    try:
        tensors = load(payload)
    except SafetensorError as err:
        raise CheckpointError(f"{weights}: unreadable safetensors ({err})") from None
    model_cls, config_cls = KINDS[config["kind"]]
    try:
        model_config = config_from_dict(config_cls, config["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{directory / 'config.json'}: bad {config_cls.__name__} ({err})") from None
    if expected is not None:
        if type(expected) is not config_cls:
            raise CheckpointError(f"{directory}: holds a {config['kind']}, expected a {type(expected).__name__}")
        diff = config_differences(model_config, expected)
        if diff:
            raise CheckpointError(f"{directory}: config mismatch - " + "; ".join(diff))
    model = model_cls(model_config)
    state = model.state_dict()
    for key, value in state.items():
        if key not in tensors:
            raise CheckpointError(f"{weights}: tensor {key!r} is missing")
        if tensors[key].shape != value.shape:
            raise CheckpointError(f"{weights}: tensor {key!r} has shape {tuple(tensors[key].shape)}, "
                                  f"the config needs {tuple(value.shape)}")
    extra = sorted(set(tensors) - set(state))
    if extra:
        raise CheckpointError(f"{weights}: unexpected tensors {extra[:5]}")
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    return model.eval(), config


def save_train_state(directory: Path, step: int, preset: str, tensors: dict[str, torch.Tensor], extra: dict) -> None:
    """Resumable state: ``tensors`` (optimizer moments, EMA, ...) and the ``step`` reached under ``preset``."""
    directory.mkdir(parents=True, exist_ok=True)
    _atomic_write(directory / "train_state.safetensors",
                  save({k: v.detach().contiguous() for k, v in tensors.items()}))
    _atomic_write(directory / "train_state.json", json.dumps({"step": step, "preset": preset, **extra}).encode())


def load_train_state(directory: Path) -> tuple[dict, dict[str, torch.Tensor]] | None:
    """``(train_state.json, tensors)`` of a run directory, or None when it holds none."""
    meta, body = Path(directory) / "train_state.json", Path(directory) / "train_state.safetensors"
    if not meta.is_file():
        return None
    try:
        return json.loads(meta.read_text()), load(body.read_bytes())
    except (OSError, json.JSONDecodeError, SafetensorError) as err:
        raise CheckpointError(f"{directory}: unreadable training state ({type(err).__name__}: {err}); "
                              "delete train_state.* to start over") from None


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Adam moments and step counts as flat ``opt.<param index>.<name>`` tensors."""
    return {f"opt.{index}.{name}": value for index, state in optimizer.state_dict()["state"].items()
            for name, value in state.items()}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    """Inverse of :func:`optimizer_tensors` (param groups keep the optimizer's own settings)."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})


def shipped(name: str) -> Path:
    """Directory of a shipped checkpoint: ``codec``, ``teacher``, ``teacher_head_only`` or ``student``."""
    return CHECKPOINT_ROOT / name

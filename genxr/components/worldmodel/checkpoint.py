"""World-model checkpoints: a directory per model with ``config.json`` + ``model.safetensors``.

``model.safetensors`` holds the weights (float16 when shipped, float32 while training);
``config.json`` holds the model kind, its frozen config, the training summary and the
sha256 of the weights file, so a truncated or altered file is refused before torch reads
it. Nothing is pickled. A training run directory also holds ``train_state.safetensors``
(optimizer moments, EMA weights) and ``train_state.json`` (step, preset) for resuming.
Every failure raises :class:`CheckpointError` naming the path and the reason; a config
that differs from the one expected names the differing field. ``config.json`` is validated
strictly by the configs' own pydantic dataclasses (:class:`FrameCodecConfig`,
:class:`VideoDiTConfig`, :class:`ConditioningConfig`: JSON types, positive sizes, ``width`` a
multiple of ``heads`` ...), so an edited field is refused naming the field and its value.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors import SafetensorError
from safetensors.torch import load, save
from torch import nn

from genxr.components.worldmodel.codec import FrameCodec, FrameCodecConfig
from genxr.components.worldmodel.dit import VideoDiT, VideoDiTConfig
from genxr.components.worldmodel.pixel_unet import PixelWorldConfig, PixelWorldModel
from genxr.platform.checkpoints import InvalidConfig, read_weights, sha256_hex, state_problem, validate

FORMAT = "genxr-worldmodel-v1"
CHECKPOINT_ROOT = Path(__file__).parent / "checkpoints"
KINDS: dict[str, tuple[type[nn.Module], type]] = {"FrameCodec": (FrameCodec, FrameCodecConfig),
                                                  "VideoDiT": (VideoDiT, VideoDiTConfig),
                                                  "PixelWorldModel": (PixelWorldModel, PixelWorldConfig)}


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded or does not match; the message names the file and the reason."""


class _Header(BaseModel):
    """The keys of ``config.json`` the loader reads besides ``format`` and ``kind`` (others pass through)."""

    model_config = ConfigDict(extra="ignore")
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
    config: dict[str, Any]
    summary: dict[str, Any] = Field(default_factory=dict)


def config_from_dict(cls: type, values: dict, where: str = ""):
    """Rebuilds a (nested) frozen config from its ``asdict`` form (parsed JSON), validated strictly by the
    config's pydantic dataclass; raises :class:`CheckpointError` naming each bad or unknown field (under the
    dotted path ``where``) and its value."""
    try:
        return validate(cls, values, where)
    except InvalidConfig as err:
        raise CheckpointError(f"bad {cls.__name__}: {err}") from None


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
              "sha256": sha256_hex(payload), "summary": summary}
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
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not a valid world-model config ({type(err).__name__}: {err})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: not a valid world-model config (a JSON {type(config).__name__}, "
                              "not an object)")
    if config.get("format") != FORMAT or config.get("kind") not in KINDS:
        raise CheckpointError(f"{path}: format {config.get('format')!r} / kind {config.get('kind')!r} is not "
                              f"a {FORMAT} model")
    try:
        validate(_Header, config)
    except InvalidConfig as err:
        raise CheckpointError(f"{path}: not a valid world-model config ({err})") from None
    config.setdefault("summary", {})
    return config


def load_model(directory: Path, expected=None) -> tuple[nn.Module, dict]:
    """The model (eval mode, float32) and its ``config.json``; ``expected`` (a config) must match exactly."""
    directory = Path(directory)
    config = read_config(directory)
    weights = directory / "model.safetensors"
    if not weights.is_file():
        raise CheckpointError(f"world-model checkpoint {directory}: model.safetensors is missing")
    try:
        tensors = read_weights(weights, config["sha256"])
    except InvalidConfig as err:
        raise CheckpointError(f"{weights}: {err}") from None
    model_cls, config_cls = KINDS[config["kind"]]
    try:
        model_config = config_from_dict(config_cls, config["config"], "config")
    except CheckpointError as err:
        raise CheckpointError(f"{directory / 'config.json'}: {err}") from None
    if expected is not None:
        if type(expected) is not config_cls:
            raise CheckpointError(f"{directory}: holds a {config['kind']}, expected a {type(expected).__name__}")
        diff = config_differences(model_config, expected)
        if diff:
            raise CheckpointError(f"{directory}: config mismatch - " + "; ".join(diff))
    try:
        model = model_cls(model_config)
    except (ValueError, RuntimeError, MemoryError) as err:
        raise CheckpointError(f"{directory / 'config.json'}: no {config['kind']} can be built from its config "
                              f"({type(err).__name__}: {err})") from None
    problem = state_problem(tensors, model.state_dict())
    if problem:
        raise CheckpointError(f"{weights}: {problem}")
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

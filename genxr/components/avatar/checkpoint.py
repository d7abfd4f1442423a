"""Avatar checkpoints: ``config.json`` + ``model.safetensors`` in one directory.

``model.safetensors`` holds float16 tensors under the prefixes ``vae.``, ``generator.``,
``generator_no_user.`` (spatial ablation) and ``baseline.`` (non-causal baseline);
``config.json`` holds the model configs, training summary and the sha256 of the weights
file, so a truncated or altered file is refused before torch sees it. Every failure to
load raises :class:`CheckpointError` naming the path and the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save
from torch import nn

from genxr.components.avatar.generator import LatentGenerator, LatentGeneratorConfig
from genxr.components.avatar.transformer import TransformerConfig
from genxr.components.avatar.vae import MotionVAE, MotionVAEConfig

CHECKPOINT_ROOT = Path(__file__).parent / "checkpoints"
FORMAT = "genxr-avatar-v1"
MODEL_NAMES = ("vae", "generator", "generator_no_user", "baseline")


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be loaded; the message says which file and why."""


def _config_from_dict(cls: type, values: dict):
    values = dict(values)
    values["transformer"] = TransformerConfig(**values["transformer"])
    if cls is MotionVAEConfig:  # saved before the user-facing frame existed: trained in the avatar frame
        values.setdefault("root_heading", "absolute")
    return cls(**values)


def save_checkpoint(directory: Path, models: dict[str, nn.Module], summary: dict) -> Path:
    """Writes ``models`` (names from :data:`MODEL_NAMES`) and ``summary`` (JSON-able) to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"{name}.{key}": value.detach().to(torch.float16).contiguous()
               for name, model in models.items() for key, value in model.state_dict().items()}
    payload = save(tensors, metadata={"format": FORMAT})
    config = {"format": FORMAT, "sha256": hashlib.sha256(payload).hexdigest(),
              "models": {name: {"kind": type(model).__name__, "config": asdict(model.config)}
                         for name, model in models.items()},
              "summary": summary}
    for name, body in (("model.safetensors", payload), ("config.json", (json.dumps(config, indent=2) + "\n").encode())):
        temporary = directory / f".{name}.tmp"
        temporary.write_bytes(body)
        os.replace(temporary, directory / name)
    return directory


def load_checkpoint(directory: Path) -> tuple[dict[str, nn.Module], dict]:
    """Models in eval mode (float32) and the checkpoint's ``config.json`` contents."""
    config_path, weights_path = directory / "config.json", directory / "model.safetensors"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise CheckpointError(f"avatar checkpoint {directory}: {path.name} is missing")
    try:
        config = json.loads(config_path.read_text())
        expected_sha = config["sha256"]
        entries = config["models"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"avatar checkpoint {config_path}: not a valid config ({err})") from None
    payload = weights_path.read_bytes()
    if hashlib.sha256(payload).hexdigest() != expected_sha:
        raise CheckpointError(f"avatar checkpoint {weights_path}: sha256 does not match config.json "
                              f"({len(payload)} bytes; truncated or corrupt)")
    try:
        tensors = load(payload)
    except SafetensorError as err:
        raise CheckpointError(f"avatar checkpoint {weights_path}: unreadable safetensors ({err})") from None
    models: dict[str, nn.Module] = {}
    for name, entry in entries.items():
        kinds = {"MotionVAE": (MotionVAE, MotionVAEConfig), "LatentGenerator": (LatentGenerator, LatentGeneratorConfig)}
        if name not in MODEL_NAMES or entry.get("kind") not in kinds:
            raise CheckpointError(f"avatar checkpoint {config_path}: unknown model {name!r} of kind {entry.get('kind')!r}")
        model_cls, config_cls = kinds[entry["kind"]]
        try:
            model = model_cls(_config_from_dict(config_cls, entry["config"]))
            state = {key[len(name) + 1:]: value.float() for key, value in tensors.items() if key.startswith(name + ".")}
            model.load_state_dict(state, strict=True)
        except (TypeError, KeyError, RuntimeError) as err:
            raise CheckpointError(f"avatar checkpoint {directory}: model {name!r} does not match its config ({err})") from None
        models[name] = model.eval()
    if "vae" not in models or "generator" not in models:
        raise CheckpointError(f"avatar checkpoint {directory}: needs at least 'vae' and 'generator', has {sorted(models)}")
    return models, config


def shipped_checkpoint(preset: str = "cpu") -> Path:
    """Directory of the checkpoint shipped in the package for ``preset``."""
    return CHECKPOINT_ROOT / preset

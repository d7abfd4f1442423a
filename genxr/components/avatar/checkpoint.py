"""Avatar checkpoints: ``config.json`` + ``model.safetensors`` in one directory.

``model.safetensors`` holds float16 tensors under the prefixes ``vae.``, ``generator.``,
``generator_no_user.`` (spatial ablation) and ``baseline.`` (non-causal baseline);
``config.json`` holds the model configs, training summary and the sha256 of the weights
file, so a truncated or altered file is refused before torch sees it. Every failure to
load raises :class:`CheckpointError` naming the path and the reason.

The model configs in ``config.json`` are validated strictly by the configs' own pydantic
dataclasses (:class:`MotionVAEConfig`, :class:`LatentGeneratorConfig`,
:class:`TransformerConfig`: JSON types, positive sizes, ``width`` a multiple of ``heads``,
``root_heading`` one of its values), each model must be of its name's kind, the streaming
generators causal and the baseline not, and the generators must share the VAE's latent size
and stride - so a checkpoint that loads can serve, and a bad one is refused naming the
field and its value.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import save
from torch import nn

from genxr.components.avatar.generator import LatentGenerator, LatentGeneratorConfig
from genxr.components.avatar.vae import MotionVAE, MotionVAEConfig
from genxr.platform.checkpoints import InvalidConfig, read_weights, sha256_hex, state_problem, validate

CHECKPOINT_ROOT = Path(__file__).parent / "checkpoints"
FORMAT = "genxr-avatar-v1"
MODEL_NAMES = ("vae", "generator", "generator_no_user", "baseline")
KINDS: dict[str, tuple[type[nn.Module], type]] = {"MotionVAE": (MotionVAE, MotionVAEConfig),
                                                  "LatentGenerator": (LatentGenerator, LatentGeneratorConfig)}
ROLES: dict[str, tuple[str, bool | None]] = {"vae": ("MotionVAE", None), "generator": ("LatentGenerator", True),
                                             "generator_no_user": ("LatentGenerator", True),
                                             "baseline": ("LatentGenerator", False)}
"""Model name -> (its kind, whether its generator must be causal): the streams need exactly these."""


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be loaded; the message says which file and why."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="ignore")
    kind: Literal["MotionVAE", "LatentGenerator"]
    config: dict[str, Any]


class _Header(BaseModel):
    """The keys of ``config.json`` the loader reads (others, like ``summary``, pass through)."""

    model_config = ConfigDict(extra="ignore")
    format: Literal["genxr-avatar-v1"]
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
    models: dict[Literal["vae", "generator", "generator_no_user", "baseline"], _Entry]


def _config_from_dict(cls: type, values: dict, where: str = ""):
    """The validated config ``cls`` of a model's ``config`` entry (:class:`InvalidConfig` names the bad fields)."""
    values = dict(values)
    if cls is MotionVAEConfig:  # saved before the user-facing frame existed: trained in the avatar frame
        values.setdefault("root_heading", "absolute")
    return validate(cls, values, where)


def _role_problem(name: str, config, vae_config) -> str | None:
    """Why model ``name`` with ``config`` cannot play its part beside a VAE of ``vae_config``, or None."""
    if isinstance(config, MotionVAEConfig):
        return None
    causal = ROLES[name][1]
    if config.causal != causal:
        return (f"models.{name}.config.causal = {config.causal}: the {name} must be "
                f"{'causal (it streams)' if causal else 'non-causal (the window baseline)'}")
    for field in ("latent_dim", "stride"):
        if getattr(config, field) != getattr(vae_config, field):
            return (f"models.{name}.config.{field} = {getattr(config, field)}: must equal the VAE's "
                    f"{getattr(vae_config, field)}")
    return None


def save_checkpoint(directory: Path, models: dict[str, nn.Module], summary: dict) -> Path:
    """Writes ``models`` (names from :data:`MODEL_NAMES`) and ``summary`` (JSON-able) to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"{name}.{key}": value.detach().to(torch.float16).contiguous()
               for name, model in models.items() for key, value in model.state_dict().items()}
    payload = save(tensors, metadata={"format": FORMAT})
    config = {"format": FORMAT, "sha256": sha256_hex(payload),
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
    directory = Path(directory)
    config_path, weights_path = directory / "config.json", directory / "model.safetensors"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise CheckpointError(f"avatar checkpoint {directory}: {path.name} is missing")
    try:
        config = json.loads(config_path.read_text())
        header = validate(_Header, config)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, InvalidConfig) as err:
        raise CheckpointError(f"avatar checkpoint {config_path}: not a valid config ({err})") from None
    if "vae" not in header.models or "generator" not in header.models:
        raise CheckpointError(f"avatar checkpoint {config_path}: needs at least 'vae' and 'generator', "
                              f"has {sorted(header.models)}")
    configs = {}
    for name, entry in header.models.items():
        if entry.kind != ROLES[name][0]:
            raise CheckpointError(f"avatar checkpoint {config_path}: models.{name}.kind = {entry.kind!r}: "
                                  f"the {name} must be a {ROLES[name][0]}")
        try:
            configs[name] = _config_from_dict(KINDS[entry.kind][1], entry.config, f"models.{name}.config")
        except InvalidConfig as err:
            raise CheckpointError(f"avatar checkpoint {config_path}: {err}") from None
    try:
        tensors = read_weights(weights_path, header.sha256)
    except InvalidConfig as err:
        raise CheckpointError(f"avatar checkpoint {weights_path}: {err}") from None
    models: dict[str, nn.Module] = {}
    for name, model_config in configs.items():
        model_cls = KINDS[header.models[name].kind][0]
        try:
            model = model_cls(model_config)
        except (ValueError, RuntimeError, MemoryError) as err:
            raise CheckpointError(f"avatar checkpoint {config_path}: no {model_cls.__name__} can be built from "
                                  f"models.{name}.config ({type(err).__name__}: {err})") from None
        state = {key[len(name) + 1:]: value for key, value in tensors.items() if key.startswith(name + ".")}
        problem = state_problem(state, model.state_dict())
        if problem:
            raise CheckpointError(f"avatar checkpoint {weights_path}: model {name!r} does not match its config "
                                  f"({problem})")
        model.load_state_dict({key: value.float() for key, value in state.items()}, strict=True)
        models[name] = model.eval()
    for name, model_config in configs.items():
        problem = _role_problem(name, model_config, configs["vae"])
        if problem:
            raise CheckpointError(f"avatar checkpoint {config_path}: {problem}")
    return models, config


def shipped_checkpoint(preset: str = "cpu") -> Path:
    """Directory of the checkpoint shipped in the package for ``preset``."""
    return CHECKPOINT_ROOT / preset

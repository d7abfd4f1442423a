"""Hugging Face ``transformers`` models: example inputs, config rewriting, save and load.

``fold`` / ``prune`` work on any ``transformers`` model Torch-Pruning can trace; this module
holds what is specific to them (``transformers`` is imported only inside the loaders):

* :func:`example_inputs` - random ``input_ids`` / ``pixel_values`` that fit the config.
* :func:`sync_config` (called by ``fold`` / ``prune``) - after compression the modules hold
  their own head counts; the shared config is rewritten (``num_attention_heads``,
  ``num_key_value_heads``, ``head_dim``, ``intermediate_size``, per sub-config such as CLIP's
  ``text_config``) when every layer of a config was compressed alike and a model built from
  the rewritten config has exactly the compressed shapes (checked on the meta device). A
  bias the expected-activation repair added to a bias-free ``down_proj`` is expressed with
  ``mlp_bias=True`` where the family has it (LLaMA), the other biases that switches on being
  added as zeros. Otherwise the config is left alone and the reason returned.
* :func:`save_pretrained` - ``model.save_pretrained`` when the config describes the model
  (so stock ``from_pretrained`` loads it); otherwise genxr's format: ``config.json`` with
  ``"format": "genxr-hf"``, the original config, every tensor's shape and each attention
  module's head counts, and ``model.safetensors`` (never pickle). BERT and CLIP derive the
  head width from ``hidden_size / num_attention_heads``, so their head-folded results always
  take this path; LLaMA and ViT honour ``head_dim`` and save natively.
* :func:`load_pretrained` - either format (and any Hugging Face model folder, through
  ``from_pretrained(local_files_only=True)``).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn

from genxr.compression import heads as heads_mod
from genxr.compression.tensors import resize_tensor
from genxr.platform.checkpoints import InvalidConfig, read_weights

FORMAT, VERSION = "genxr-hf", 1
WEIGHTS, CONFIG = "model.safetensors", "config.json"
HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
ASSETS = re.compile(r"^(tokenizer.*|vocab\..*|merges\.txt|special_tokens_map\.json|added_tokens\.json|spiece\.model|"
                    r"sentencepiece.*\.model|preprocessor_config\.json|processor_config\.json|chat_template.*|"
                    r"generation_config\.json|modules\.json|sentence_bert_config\.json|config_sentence_transformers\.json)$")
"""Files of a model folder that are not weights or config (tokenizer, processor, sentence-transformers modules)."""
BIAS_SWITCHES = ("mlp_bias",)
"""Config flags that give a family's MLP layers biases (LLaMA's ``mlp_bias``)."""


class HFFormatError(ValueError):
    """A folder that is not a loadable model folder; the message names the file and field."""


def is_hf_model(model: nn.Module) -> bool:
    """A ``transformers`` PreTrainedModel (duck-typed: a config with ``to_dict`` and ``save_pretrained``)."""
    config = getattr(model, "config", None)
    return hasattr(config, "to_dict") and hasattr(config, "model_type") and hasattr(model, "save_pretrained")


def example_inputs(model: nn.Module, batch: int = 1, length: int = 8, seed: int = 0) -> dict:
    """Random inputs that fit the model's config: ``input_ids`` (+ ``attention_mask``) and/or
    ``pixel_values``, ``use_cache=False`` for decoders. Raises ValueError naming the model when
    its forward takes neither."""
    params = inspect.signature(model.forward).parameters
    config = model.config
    text = getattr(config, "text_config", None) or config
    vision = getattr(config, "vision_config", None) or config
    generator = torch.Generator().manual_seed(seed)
    dtype = next(model.parameters()).dtype
    x: dict = {}
    if "input_ids" in params and getattr(text, "vocab_size", None):
        limit = getattr(text, "max_position_embeddings", None) or length
        n = min(length, limit)
        x["input_ids"] = torch.randint(0, text.vocab_size, (batch, n), generator=generator)
        if "attention_mask" in params:
            x["attention_mask"] = torch.ones(batch, n, dtype=torch.long)
    if "pixel_values" in params and getattr(vision, "image_size", None):
        size = vision.image_size
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        x["pixel_values"] = torch.randn(batch, getattr(vision, "num_channels", 3), h, w, generator=generator).to(dtype)
    if not x:
        raise ValueError(f"cannot make example inputs for {type(model).__name__}: its forward takes neither input_ids "
                         "nor pixel_values that its config sizes; pass example_inputs yourself")
    if "use_cache" in params:
        x["use_cache"] = False
    return x


# ---------------------------------------------------------------------------------------------
# Config rewriting


def _config_paths(config, prefix: str = "") -> dict[int, str]:
    """id(config object) -> dotted path from the root config ("" for the root)."""
    paths = {id(config): prefix}
    for key, value in vars(config).items():
        if hasattr(value, "to_dict") and hasattr(value, "model_type") and id(value) not in paths:
            paths.update(_config_paths(value, f"{prefix}.{key}" if prefix else key))
    return paths


def _at(config, path: str):
    for key in filter(None, path.split(".")):
        config = getattr(config, key)
    return config


def _config_of(model: nn.Module, name: str, paths: dict[int, str]) -> str:
    """Path of the config that built module ``name``: the nearest enclosing module's ``config``."""
    parts = name.split(".") if name else []
    for i in range(len(parts), -1, -1):
        config = getattr(model.get_submodule(".".join(parts[:i])), "config", None)
        if id(config) in paths:
            return paths[id(config)]
    return ""


def _key(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def _build(cls, config) -> nn.Module:
    """``cls(config)`` on the meta device (shapes only), or on the CPU if the family refuses meta."""
    try:
        with torch.device("meta"):
            return cls(config)
    except Exception:  # noqa: BLE001 - some families allocate real tensors in __init__
        return cls(config)


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _apply(config, updates: dict) -> None:
    for key, value in updates.items():
        path, _, field = key.rpartition(".")
        setattr(_at(config, path), field, value)


def _plan(model: nn.Module) -> tuple[dict, list[str], str]:
    """(config updates, zero biases to add, note): what makes the config describe the model.

    A non-empty note means it cannot; nothing is changed here.
    """
    cls, config = type(model), model.config
    shapes = _shapes(model)
    reference = _build(cls, copy.deepcopy(config))
    if _shapes(reference) == shapes:
        return {}, [], ""
    paths = _config_paths(config)
    scan = heads_mod.find_attention(model)
    updates: dict = {}
    per_path: dict[str, set] = defaultdict(set)
    for name, unit in scan.found.items():
        per_path[_config_of(model, name, paths)].add((unit.num_heads, unit.num_kv_heads, unit.head_dim))
    for path, values in per_path.items():
        if len(values) > 1:
            return {}, [], (f"attention differs between layers of {_key(path, 'config') if path else 'the config'} "
                            f"(query heads, kv heads, head_dim: {sorted(values)}); saved in genxr's format")
        n_q, n_kv, head_dim = values.pop()
        sub = _at(config, path)
        if getattr(sub, "num_attention_heads", n_q) != n_q:
            updates[_key(path, "num_attention_heads")] = n_q
            updates[_key(path, "head_dim")] = head_dim
        if getattr(sub, "num_key_value_heads", None) not in (None, n_kv):
            updates[_key(path, "num_key_value_heads")] = n_kv
    attention_layers = {id(layer) for unit in scan.found.values() for layer in unit.layers()}
    reference_modules = dict(reference.named_modules())
    widths: dict[str, set] = defaultdict(set)
    for name, module in model.named_modules():
        was = reference_modules.get(name)
        if not isinstance(module, nn.Linear) or id(module) in attention_layers or not isinstance(was, nn.Linear):
            continue
        path = _config_of(model, name, paths)
        intermediate = getattr(_at(config, path), "intermediate_size", None)
        for have, before in ((module.out_features, was.out_features), (module.in_features, was.in_features)):
            if have != before and before != intermediate:
                return {}, [], (f"{name} changed width {before} -> {have}, which is not "
                                f"{_key(path, 'intermediate_size')}; saved in genxr's format")
            if before == intermediate:  # also the layers left whole: every layer must agree
                widths[path].add(have)
    for path, values in widths.items():
        if len(values) > 1:
            return {}, [], (f"MLP widths differ between layers of {path or 'the config'} ({sorted(values)}); "
                            "saved in genxr's format")
        value = values.pop()
        if value != getattr(_at(config, path), "intermediate_size", None):
            updates[_key(path, "intermediate_size")] = value
    candidate = copy.deepcopy(config)
    _apply(candidate, updates)
    problem = ""
    for attempt in range(2):
        built = _shapes(_build(cls, candidate))
        extra = sorted(set(shapes) - set(built))
        missing = sorted(set(built) - set(shapes))
        wrong = sorted(k for k in set(shapes) & set(built) if shapes[k] != built[k])
        if not extra and not wrong and all(k.endswith(".bias") for k in missing):
            return updates, missing, ""
        problem = (f"{wrong[0]} would be {list(built[wrong[0]])}, not {list(shapes[wrong[0]])}" if wrong else
                   f"it has no {extra[0]}" if extra else f"it would add {missing[0]}")
        switched = False
        if attempt == 0 and extra and all(k.endswith(".bias") for k in extra):
            for key in extra:
                sub_path = _config_of(model, key.rsplit(".", 2)[0], paths)
                for flag in BIAS_SWITCHES:
                    if getattr(_at(candidate, sub_path), flag, None) is False:
                        setattr(_at(candidate, sub_path), flag, True)
                        updates[_key(sub_path, flag)] = True
                        switched = True
        if not switched:
            break
    return {}, [], (f"a {type(config).__name__} with {updates} cannot describe the compressed model ({problem}); "
                    "saved in genxr's format")


def sync_config(model: nn.Module) -> tuple[dict, str]:
    """Rewrites ``model.config`` (in place) to describe the compressed model, when it can.

    Returns (fields rewritten, "") or ({}, why the config was left as it was).
    """
    try:
        updates, missing, note = _plan(model)
    except Exception as err:  # noqa: BLE001 - a family whose config cannot be rebuilt keeps its config
        return {}, f"the config was not rewritten: rebuilding {type(model).__name__} from it failed ({type(err).__name__}: {err})"
    if note:
        return {}, note
    _apply(model.config, updates)
    for key in missing:
        owner = model.get_submodule(key.rsplit(".", 1)[0])
        weight = owner.weight
        owner.bias = nn.Parameter(torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device))
    return updates, ""


# ---------------------------------------------------------------------------------------------
# Save and load


def _tied(state: dict) -> dict[str, str]:
    """key -> earlier key holding the same tensor (tied embeddings), so it is stored once."""
    seen, tied = {}, {}
    for key, tensor in state.items():
        if tensor.numel() == 0:
            continue
        ident = (tensor.data_ptr(), tensor.dtype, tuple(tensor.shape), tensor.stride())
        if ident in seen:
            tied[key] = seen[ident]
        else:
            seen[ident] = key
    return tied


def save_pretrained(model: nn.Module, directory, metadata: dict | None = None) -> dict:
    """Writes a (compressed) Hugging Face model; returns {"format": "transformers" | "genxr-hf", "note": ...}.

    "transformers": ``model.save_pretrained`` (its config rewritten by :func:`sync_config`), so
    stock ``from_pretrained`` loads it. "genxr-hf": the config cannot describe the result (the
    note says why); :func:`load_pretrained` rebuilds it. ``metadata`` goes to ``genxr.json``
    (transformers format) or into ``config.json`` (genxr format).
    """
    from safetensors.torch import save

    if not is_hf_model(model):
        raise TypeError(f"{type(model).__name__} is not a Hugging Face transformers model")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _, note = sync_config(model)
    if not note:
        model.save_pretrained(directory)
        if metadata:
            (directory / "genxr.json").write_text(json.dumps({"metadata": metadata}, indent=2) + "\n")
        return {"format": "transformers", "note": ""}
    state = model.state_dict()
    tied = _tied(state)
    tensors = {k: v.detach().contiguous() for k, v in state.items() if k not in tied}
    payload = save(tensors)
    scan = heads_mod.find_attention(model)
    config = {
        "format": FORMAT, "version": VERSION,
        "class": type(model).__name__,
        "config": model.config.to_dict(),
        "shapes": {k: list(v.shape) for k, v in state.items()},
        "attention": {name: {"num_heads": u.num_heads, "num_kv_heads": u.num_kv_heads, "head_dim": u.head_dim}
                      for name, u in scan.found.items()},
        "tied": tied,
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "why": note,
        "metadata": metadata or {},
    }
    (directory / WEIGHTS).write_bytes(payload)
    (directory / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return {"format": FORMAT, "note": note}


def read_config(directory) -> dict | None:
    """The folder's config.json, or None when it has none; HFFormatError when it does not parse."""
    path = Path(directory) / CONFIG
    if not Path(directory).is_dir():
        raise HFFormatError(f"{directory} is not a directory")
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise HFFormatError(f"{path}: not valid JSON ({type(err).__name__}: {err})") from None
    if not isinstance(config, dict):
        raise HFFormatError(f"{path}: not a JSON object")
    return config


def folder_kind(directory) -> str | None:
    """"transformers" (a Hugging Face model folder), "genxr-hf", "genxr-checkpoint" (a zoo
    checkpoint), or None (no config.json, or one that is none of these)."""
    config = read_config(directory)
    if config is None:
        return None
    if config.get("format") in (FORMAT, "genxr-checkpoint"):
        return config["format"]
    if "model_type" in config:
        if not any((Path(directory) / name).is_file() for name in HF_WEIGHTS):
            raise HFFormatError(f"{directory} has a Hugging Face config.json but no weights ({' / '.join(HF_WEIGHTS[::2])})")
        return "transformers"
    return None


def _transformers_class(name, path: Path, field: str):
    import transformers

    cls = getattr(transformers, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)):
        raise HFFormatError(f"{path}: {field} = {name!r} is not a transformers model class "
                            f"(transformers {transformers.__version__})")
    return cls


def load_pretrained(directory, dtype: torch.dtype | None = None) -> nn.Module:
    """A model from a Hugging Face folder (``from_pretrained``, local files only; the class from
    ``architectures``) or from genxr's format; in eval mode. ``dtype`` casts (e.g. float32 to fold)."""
    directory = Path(directory)
    kind = folder_kind(directory)
    if kind == FORMAT:
        model = _load_genxr(directory)
        return (model.to(dtype) if dtype is not None else model).eval()
    if kind != "transformers":
        raise HFFormatError(f"{directory} is not a Hugging Face model folder (needs config.json with model_type and "
                            f"{' or '.join(HF_WEIGHTS[::2])}) nor a genxr-hf folder")
    config = read_config(directory)
    architectures = config.get("architectures") or []
    if architectures:
        cls = _transformers_class(architectures[0], directory / CONFIG, "architectures[0]")
    else:
        import transformers

        cls = transformers.AutoModel
    kwargs = {"dtype": dtype} if dtype is not None else {}
    try:
        model = cls.from_pretrained(str(directory), local_files_only=True, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise HFFormatError(f"{directory}: {cls.__name__}.from_pretrained failed ({type(err).__name__}: {err})") from None
    return model.eval()


def _load_genxr(directory: Path) -> nn.Module:
    path, weights = directory / CONFIG, directory / WEIGHTS
    config = read_config(directory)
    for key, kind in (("class", str), ("config", dict), ("shapes", dict), ("attention", dict), ("tied", dict)):
        if not isinstance(config.get(key), kind):
            raise HFFormatError(f"{path}: {key} must be a {kind.__name__}, got {config.get(key)!r:.80}")
    if config.get("version") != VERSION:
        raise HFFormatError(f"{path}: version = {config.get('version')!r}, this genxr reads {FORMAT} v{VERSION}")
    cls = _transformers_class(config["class"], path, "class")
    if not weights.is_file():
        raise HFFormatError(f"{weights}: missing")
    if not isinstance(config.get("sha256"), str):
        raise HFFormatError(f"{path}: sha256 must be the hex digest of {WEIGHTS}, got {config.get('sha256')!r:.80}")
    try:
        tensors = read_weights(weights, config["sha256"])
    except InvalidConfig as err:
        raise HFFormatError(f"{weights}: {err}") from None
    try:
        hf_config = cls.config_class.from_dict(config["config"])
        model = cls(hf_config)
    except Exception as err:  # noqa: BLE001 - any failure means the stored config is not buildable
        raise HFFormatError(f"{path}: config: no {cls.__name__} can be built from it ({type(err).__name__}: {err})") from None
    dtype = getattr(torch, str(config.get("dtype", "float32")), None)
    if isinstance(dtype, torch.dtype):
        model = model.to(dtype)
    found = heads_mod.find_attention(model).found  # before resizing: the head counts still match the shapes
    for name, shape in config["shapes"].items():
        try:
            resize_tensor(model, name, tuple(int(s) for s in shape))
        except (AttributeError, TypeError, ValueError, RuntimeError) as err:
            raise HFFormatError(f"{path}: shapes.{name} = {shape}: {err}") from None
    for name, counts in config["attention"].items():
        unit = found.get(name)
        if unit is None:
            raise HFFormatError(f"{path}: attention.{name}: not an attention module of {cls.__name__}")
        unit.sync()
        have = {"num_heads": unit.num_heads, "num_kv_heads": unit.num_kv_heads, "head_dim": unit.head_dim}
        if have != counts:
            raise HFFormatError(f"{path}: attention.{name} = {counts}, but its projections hold {have}")
    for key, source in config["tied"].items():
        if source not in tensors:
            raise HFFormatError(f"{path}: tied.{key} = {source!r} is not a stored tensor")
        tensors[key] = tensors[source]
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if tuple(expected[k].shape) != tuple(tensors[k].shape))
    if missing or unexpected or wrong:
        first = missing[:1] or unexpected[:1] or wrong[:1]
        raise HFFormatError(f"{weights}: tensors do not fit the rebuilt {cls.__name__} ({len(missing)} missing, "
                            f"{len(unexpected)} unexpected, {len(wrong)} of another shape, e.g. {first[0]!r})")
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def copy_assets(source, destination) -> list[str]:
    """Copies the tokenizer / processor / sentence-transformers files of model folder ``source``
    to ``destination`` (not weights, not config.json, nothing already there); returns their names."""
    source, destination = Path(source), Path(destination)
    copied = []
    for item in sorted(source.iterdir()):
        target = destination / item.name
        if target.exists():
            continue
        if item.is_file() and ASSETS.match(item.name):
            shutil.copy2(item, target)
            copied.append(item.name)
        elif item.is_dir() and re.match(r"^\d+_\w+$", item.name):
            shutil.copytree(item, target)
            copied.append(item.name + "/")
    return copied

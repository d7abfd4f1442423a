"""What every checkpoint loader shares: the sha256 that ties a ``config.json`` to its weights
file, and strict validation of a parsed ``config.json`` against pydantic types.

:func:`validate` checks parsed JSON as JSON (``"4"`` is not an int, ``4.0`` is not an int, ``1``
is not a bool) against a pydantic model or (pydantic) dataclass, with its field constraints and
validators, and raises :class:`InvalidConfig` whose one-line message names every offending
field (dotted path), the value it holds and what is allowed. The world-model, avatar and
compression loaders prefix it with the file and raise their own ``CheckpointError``.
Nothing here imports other genxr layers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError


class InvalidConfig(ValueError):
    """Parsed JSON that does not validate; the message is ``field = value: reason`` items on one line."""


def sha256_hex(payload: bytes) -> str:
    """Hex sha256 of ``payload`` (what ``config.json`` records for the weights file)."""
    return hashlib.sha256(payload).hexdigest()


def sha256_problem(payload: bytes, expected: object) -> str | None:
    """Why ``payload`` is not the file whose digest ``expected`` was recorded, or None when it is."""
    if sha256_hex(payload) == expected:
        return None
    return f"sha256 does not match config.json ({len(payload)} bytes; truncated or corrupt)"


def read_weights(path: Path, sha256: str | None) -> dict[str, Any]:
    """The tensors of the safetensors file ``path``, checked against the digest ``config.json``
    recorded (None: recorded by no one, loaded unchecked); :class:`InvalidConfig` naming what is
    wrong (the caller prefixes the file and raises its own ``CheckpointError``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    payload = path.read_bytes()
    if sha256 is not None and (problem := sha256_problem(payload, sha256)):
        raise InvalidConfig(problem)
    try:
        return load(payload)
    except SafetensorError as err:
        raise InvalidConfig(f"unreadable safetensors ({err})") from None


def state_problem(stored: Mapping[str, Any], needed: Mapping[str, Any]) -> str | None:
    """Why tensors ``stored`` (read from a weights file) cannot load into a module whose ``state_dict()`` is
    ``needed`` - a tensor missing, one of another shape, or unexpected ones - or None when they can."""
    for key, value in needed.items():
        if key not in stored:
            return f"tensor {key!r} is missing"
        if tuple(stored[key].shape) != tuple(value.shape):
            return f"tensor {key!r} has shape {tuple(stored[key].shape)}, the config needs {tuple(value.shape)}"
    extra = sorted(set(stored) - set(needed))
    if extra:
        return f"unexpected tensors {extra[:5]}" + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
    return None


def validate(schema: Any, values: Any, where: str = "") -> Any:
    """``values`` (parsed from JSON) validated strictly as ``schema`` (a type or a :class:`TypeAdapter`);
    ``where`` (a dotted path) prefixes the fields named in the :class:`InvalidConfig` it raises."""
    adapter = schema if isinstance(schema, TypeAdapter) else TypeAdapter(schema)
    try:
        body = json.dumps(values)
    except (TypeError, ValueError) as err:
        raise InvalidConfig(f"{where or '(top level)'}: not JSON ({err})") from None
    try:
        return adapter.validate_json(body, strict=True)
    except ValidationError as err:
        raise InvalidConfig(describe(err, where)) from None


def describe(err: ValidationError, where: str = "") -> str:
    """Every error of ``err`` as ``field = value: reason``, joined by ``"; "`` (one line)."""
    items = []
    for error in err.errors(include_url=False):
        parts = ([where] if where else []) + [str(part) for part in error["loc"]]
        path = ".".join(parts) or "(top level)"
        value = error.get("input")
        hidden = isinstance(value, dict) or error["type"] in ("value_error", "missing") \
            or type(value).__name__ == "ArgsKwargs"  # a whole object: the message names what is wrong in it
        shown = "" if hidden else f" = {_short(repr(value))}"
        message = error["msg"].removeprefix("Value error, ")
        items.append(f"{path}{shown}: {message}")
    return "; ".join(items)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."

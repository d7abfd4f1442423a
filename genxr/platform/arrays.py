"""Typed numpy fields for pydantic messages.

``Array(dtype, shape)`` is used inside ``typing.Annotated``::

    positions: Annotated[np.ndarray, Array("float32", (26, 3))]

A field so declared accepts

* a ``numpy.ndarray`` (or anything ``numpy.asarray`` takes, such as nested lists) whose
  dtype can be cast to the declared dtype without loss (``same_kind`` casting, so
  float64 -> float32 is accepted, float -> uint8 is not),
* the wire form ``{"dtype": str, "shape": [int, ...], "data": bytes | base64 str}``
  (C order, little-endian), which is what ``model_dump(mode="json")`` and the msgpack
  codec in :mod:`genxr.platform.messages` produce.

It checks the shape (``None`` in ``shape`` matches any size), that floating arrays are
finite (no NaN/inf), and that the payload is no larger than ``max_bytes``. The stored
array is C-contiguous, little-endian and read-only, so a message cannot be changed after
validation. Errors are pydantic ``ValidationError``s whose location is the field and whose
message names the offending value (dtype, shape, index of the first non-finite entry).

Hand-written rather than taken from ``pydantic-numpy`` / ``numpydantic``: neither checks
finiteness or payload size, and both serialise arrays to JSON as nested lists, which is
neither exact for float32 nor compact for images.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
"""Largest payload of one array field unless the field says otherwise (16 MiB)."""


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"


@dataclass(frozen=True)
class Array:
    """Declares dtype, shape and payload limit of a numpy field (see module docstring)."""

    dtype: str
    shape: tuple[int | None, ...]
    max_bytes: int = DEFAULT_MAX_BYTES

    def _coerce(self, value: Any) -> np.ndarray:
        target = _little_endian(self.dtype)
        if isinstance(value, np.ndarray):
            array = value
        elif isinstance(value, dict):
            array = _from_wire(value)
        else:
            try:
                array = np.asarray(value)
            except (TypeError, ValueError) as err:
                raise PydanticCustomError(
                    "ndarray_type", "expected an array of {dtype}, got {kind}: {err}",
                    {"dtype": self.dtype, "kind": type(value).__name__, "err": str(err)},
                ) from err
            if array.dtype == object:
                raise PydanticCustomError(
                    "ndarray_type", "expected an array of {dtype}, got {kind} that is not numeric",
                    {"dtype": self.dtype, "kind": type(value).__name__},
                )
            if array.size == 0:
                array = array.astype(target)
        if array.dtype != target and not np.can_cast(array.dtype, target, casting="same_kind"):
            raise PydanticCustomError(
                "ndarray_dtype", "expected dtype {expected}, got {actual}",
                {"expected": self.dtype, "actual": str(array.dtype)},
            )
        shape = array.shape
        if len(shape) != len(self.shape) or any(
            want is not None and have != want for have, want in zip(shape, self.shape)
        ):
            raise PydanticCustomError(
                "ndarray_shape", "expected shape {expected}, got {actual}",
                {"expected": _shape_text(self.shape), "actual": str(tuple(shape))},
            )
        nbytes = array.size * target.itemsize
        if nbytes > self.max_bytes:
            raise PydanticCustomError(
                "ndarray_too_large", "payload of {nbytes} bytes exceeds the limit of {limit} bytes",
                {"nbytes": nbytes, "limit": self.max_bytes},
            )
        if target.kind == "f":
            finite = np.isfinite(array)
            if not finite.all():
                index = tuple(int(i) for i in np.argwhere(~finite)[0])
                raise PydanticCustomError(
                    "ndarray_not_finite", "value {value} at index {index} is not finite",
                    {"value": str(array[index]), "index": str(index)},
                )
        if array.dtype == target and array.flags.c_contiguous:
            if not array.flags.writeable:
                return array  # already frozen (decoded bytes, another message's field): share it
            out = array.copy()
        else:
            out = np.ascontiguousarray(array, dtype=target)
            if np.shares_memory(out, array):
                out = out.copy()
        out.flags.writeable = False
        return out

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def serialize(value: np.ndarray, info: core_schema.SerializationInfo) -> Any:
            if info.mode == "json":
                return {
                    "dtype": self.dtype,
                    "shape": list(value.shape),
                    "data": base64.b64encode(value.tobytes()).decode("ascii"),
                }
            return value

        return core_schema.no_info_plain_validator_function(
            self._coerce,
            serialization=core_schema.plain_serializer_function_ser_schema(serialize, info_arg=True),
        )

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> dict:
        return {
            "type": "object",
            "description": (
                f"numpy array, dtype {self.dtype}, shape {_shape_text(self.shape)} ('*' = any size); "
                "data is the C-order little-endian buffer, base64 in JSON, raw bytes in msgpack"
            ),
            "properties": {
                "dtype": {"const": self.dtype},
                "shape": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 0},
                    "minItems": len(self.shape),
                    "maxItems": len(self.shape),
                },
                "data": {"type": "string", "contentEncoding": "base64"},
            },
            "required": ["dtype", "shape", "data"],
        }


_DTYPES: dict[str, np.dtype] = {}


def _little_endian(name: str) -> np.dtype:
    dtype = _DTYPES.get(name)
    if dtype is None:
        dtype = _DTYPES[name] = np.dtype(name).newbyteorder("<")
    return dtype


def to_wire(array: np.ndarray) -> dict[str, Any]:
    """The msgpack wire form of an array: dtype name, shape and raw little-endian bytes."""
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": little.tobytes()}


def _from_wire(value: dict[str, Any]) -> np.ndarray:
    missing = {"dtype", "shape", "data"} - value.keys()
    if missing:
        raise PydanticCustomError(
            "ndarray_wire", "array object lacks {missing}", {"missing": ", ".join(sorted(missing))}
        )
    try:
        dtype = _little_endian(value["dtype"])
    except TypeError as err:
        raise PydanticCustomError("ndarray_wire", "unknown dtype {dtype!r}", {"dtype": str(value["dtype"])}) from err
    data = value["data"]
    if isinstance(data, str):
        data = base64.b64decode(data.encode("ascii"), validate=True)
    shape = tuple(int(s) for s in value["shape"])
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise PydanticCustomError(
            "ndarray_wire", "array data holds {have} bytes, shape {shape} of {dtype} needs {need}",
            {"have": len(data), "shape": str(shape), "dtype": str(dtype), "need": expected},
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape)

"""Typed numpy fields for pydantic messages.

``Array(dtype, shape)`` is used inside ``typing.Annotated``::

    positions: Annotated[np.ndarray, Array("float32", (26, 3))]

A field so declared accepts

* a ``numpy.ndarray`` (or anything ``numpy.asarray`` takes, such as nested lists) of a
  boolean, integer or floating dtype that casts to the declared dtype without loss: a
  ``safe`` cast (uint8 -> float32, a byte-order change) always; a narrowing cast
  (``same_kind``, or integer -> integer) only when every value is representable in the
  declared dtype - integers inside its range (uint16 1000 into uint8 is refused, uint16
  200 and a list of small ints accepted), integers into a float field only when exact
  (int32 16777217 into float32 is refused), floats finite after the cast (float64 1e39
  into float32 is refused; float64 -> float32 rounding is accepted). Other casts (float ->
  uint8, complex, strings, objects) are refused;
* the wire form ``{"dtype": str, "shape": [int, ...], "data": bytes | base64 str}``
  (C order, in the byte order the dtype string names: ``"float32"`` / ``"<f4"`` little-,
  ``">f4"`` big-endian), which is what ``model_dump(mode="json")`` and the msgpack codec
  in :mod:`genxr.platform.messages` produce (always little-endian). Nothing else may be in
  the object; ``shape`` is a list of non-negative ints, ``data`` exactly its bytes.

It checks the shape (``None`` in ``shape`` matches any size; ``min_shape`` gives the least
size per axis, e.g. an image's 2x2), that floating arrays are finite (no NaN/inf), and that
the payload is no larger than ``max_bytes``. The stored array is C-contiguous,
little-endian and read-only, so a message cannot be changed after validation. Errors are
pydantic ``ValidationError``s whose location is the field and whose message names the
offending value (dtype, shape, index of the first non-finite or out-of-range entry); no
other exception escapes validation.

Hand-written rather than taken from ``pydantic-numpy`` / ``numpydantic``: neither checks
finiteness or payload size, and both serialise arrays to JSON as nested lists, which is
neither exact for float32 nor compact for images.
"""

from __future__ import annotations

import base64
import binascii
import math
import warnings
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
    min_shape: tuple[int, ...] | None = None
    """Least size of each axis (an image's ``(2, 2, 3)``: at least 2x2 pixels); None: no minimum."""

    def _coerce(self, value: Any) -> np.ndarray:
        target = _little_endian(self.dtype)
        shape_checked = False
        if type(value) is np.ndarray:
            array = value
        elif isinstance(value, dict):
            array, shape_checked = self._from_wire(value), True
        elif isinstance(value, np.ndarray):
            array = np.asarray(value)  # a subclass (masked array, matrix): its plain data
        else:
            try:
                array = np.asarray(value)
            except Exception as err:  # ragged lists, objects whose __array__ fails: all a type error
                raise PydanticCustomError(
                    "ndarray_type", "expected an array of {dtype}, got {kind}: {err}",
                    {"dtype": self.dtype, "kind": type(value).__name__, "err": str(err)[:200]},
                ) from err
            if array.dtype == object:
                raise PydanticCustomError(
                    "ndarray_type", "expected an array of {dtype}, got {kind} that is not numeric",
                    {"dtype": self.dtype, "kind": type(value).__name__},
                )
            if array.size == 0 and array.dtype.kind in _CASTABLE_KINDS:
                array = array.astype(target)
        if array.dtype != target and not _castable(array.dtype, target):
            raise PydanticCustomError(
                "ndarray_dtype", "expected dtype {expected}, got {actual}",
                {"expected": self.dtype, "actual": str(array.dtype)},
            )
        if not shape_checked:
            self._check_shape(array.shape)
        nbytes = array.size * target.itemsize
        if nbytes > self.max_bytes:
            raise PydanticCustomError(
                "ndarray_too_large", "payload of {nbytes} bytes exceeds the limit of {limit} bytes",
                {"nbytes": nbytes, "limit": self.max_bytes},
            )
        source = array
        if array.dtype != target:
            array = _cast(array, target)  # a new C-contiguous array, or a validation error
        if target.kind == "f":
            finite = np.isfinite(array)
            if not finite.all():
                index = tuple(int(i) for i in np.argwhere(~finite)[0])
                original = source[index]
                overflow = f" as {target.name}" if source is not array and np.isfinite(original) else ""
                raise PydanticCustomError(
                    "ndarray_not_finite", "value {value} at index {index} is not finite{overflow}",
                    {"value": str(original), "index": str(index), "overflow": overflow},
                )
        if array is not source:
            out = array  # the cast made it: C-contiguous, shared with nothing
        elif array.flags.c_contiguous:
            if not array.flags.writeable:
                return array  # already frozen (decoded bytes, another message's field): share it
            out = array.copy()
        else:
            out = np.ascontiguousarray(array)
            if np.shares_memory(out, array):
                out = out.copy()
        out.flags.writeable = False
        return out

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        if len(shape) != len(self.shape) or any(
            want is not None and have != want for have, want in zip(shape, self.shape)
        ):
            raise PydanticCustomError(
                "ndarray_shape", "expected shape {expected}, got {actual}",
                {"expected": _shape_text(self.shape), "actual": str(tuple(shape))},
            )
        if self.min_shape is not None and any(have < least for have, least in zip(shape, self.min_shape)):
            raise PydanticCustomError(
                "ndarray_too_small", "shape {actual} is smaller than the minimum {minimum}",
                {"actual": str(tuple(shape)), "minimum": str(tuple(self.min_shape))},
            )

    def _from_wire(self, value: dict[Any, Any]) -> np.ndarray:
        """The array of a wire object, in the dtype (and byte order) the object names."""
        if len(value) != 3 or "dtype" not in value or "shape" not in value or "data" not in value:
            keys = set(value)
            missing = _WIRE_KEYS - keys
            if missing:
                raise PydanticCustomError(
                    "ndarray_wire", "array object lacks {missing}", {"missing": ", ".join(sorted(missing))}
                )
            extra = ", ".join(sorted(repr(k)[:40] for k in keys - _WIRE_KEYS))
            raise PydanticCustomError(
                "ndarray_wire", "array object has unknown keys {extra}; it holds only dtype, shape and data",
                {"extra": extra},
            )
        dtype = _wire_dtype(value["dtype"])
        shape = value["shape"]
        if type(shape) is list and all(type(s) is int for s in shape) and (not shape or min(shape) >= 0):
            shape = tuple(shape)  # what msgpack and JSON give: the fast path
        elif isinstance(shape, (list, tuple)) and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in shape
        ):
            shape = tuple(int(s) for s in shape)
        else:
            raise PydanticCustomError(
                "ndarray_wire", "array shape must be a list of non-negative integers, got {shape}",
                {"shape": repr(shape)[:100]},
            )
        self._check_shape(shape)
        data = value["data"]
        if isinstance(data, str):
            try:
                data = base64.b64decode(data.encode("ascii"), validate=True)
            except (ValueError, binascii.Error) as err:  # UnicodeEncodeError is a ValueError
                raise PydanticCustomError(
                    "ndarray_wire", "array data is not valid base64: {err}", {"err": str(err)[:100]}
                ) from err
        elif not isinstance(data, (bytes, bytearray)):
            raise PydanticCustomError(
                "ndarray_wire", "array data must be bytes or a base64 string, got {kind}",
                {"kind": type(data).__name__},
            )
        expected = math.prod(shape) * dtype.itemsize
        if len(data) != expected:
            raise PydanticCustomError(
                "ndarray_wire", "array data holds {have} bytes, shape {shape} of {dtype} needs {need}",
                {"have": len(data), "shape": str(shape), "dtype": str(dtype), "need": expected},
            )
        return np.frombuffer(data, dtype=dtype).reshape(shape)

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
        least = "" if self.min_shape is None else f", at least {_shape_text(self.min_shape)}"
        return {
            "type": "object",
            "description": (
                f"numpy array, dtype {self.dtype}, shape {_shape_text(self.shape)} ('*' = any size){least}; "
                "data is the C-order little-endian buffer, base64 in JSON, raw bytes in msgpack"
            ),
            "additionalProperties": False,
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
_CASTABLE_KINDS = "biuf"
"""numpy kinds an array may have to be cast into a field: bool, signed, unsigned, floating."""
_WIRE_KINDS = "iuf"
"""numpy kinds a wire object may name (genxr writes only these)."""
_WIRE_KEYS = frozenset({"dtype", "shape", "data"})
_WIRE_DTYPES: dict[str, np.dtype] = {}
_WIRE_DTYPES_KEPT = 256
"""Distinct wire dtype strings remembered (``"float32"``, ``"<f4"``, ...), so a stream of odd names cannot grow it."""


def _little_endian(name: str) -> np.dtype:
    dtype = _DTYPES.get(name)
    if dtype is None:
        dtype = _DTYPES[name] = np.dtype(name).newbyteorder("<")
    return dtype


def _wire_dtype(name: Any) -> np.dtype:
    """The numpy dtype a wire object names, byte order included, or a validation error."""
    dtype = _WIRE_DTYPES.get(name) if isinstance(name, str) else None
    if dtype is not None:
        return dtype
    if isinstance(name, str) and len(name) <= 32:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a deprecated alias ("a") is refused, not warned about
                dtype = np.dtype(name)
        except Exception:  # TypeError for unknown names, SyntaxError/ValueError for malformed ones
            dtype = None
    if dtype is None or dtype.kind not in _WIRE_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise PydanticCustomError(
            "ndarray_wire", "unknown dtype {dtype}; a wire array is integer or floating, e.g. 'float32' or '<f4'",
            {"dtype": repr(name)[:64]},
        )
    if len(_WIRE_DTYPES) < _WIRE_DTYPES_KEPT:
        _WIRE_DTYPES[name] = dtype
    return dtype


def _castable(source: np.dtype, target: np.dtype) -> bool:
    """Whether values of ``source`` may be cast into a ``target`` field at all (values checked by :func:`_cast`):
    ``same_kind`` casts, and any integer into any integer (int64 from a list of ints into uint8)."""
    if source.kind not in _CASTABLE_KINDS:
        return False
    return np.can_cast(source, target, casting="same_kind") or (source.kind in "iu" and target.kind in "iu")


def _cast(array: np.ndarray, target: np.dtype) -> np.ndarray:
    """``array`` as a new C-contiguous array of ``target`` when no value changes on the way: safe
    casts (including a byte-order change) always; integer narrowing only when every value fits,
    integers into floats only when every value is exact. Float narrowing is returned as cast: the
    caller checks it stayed finite (1e39 -> float32 is inf)."""
    if not np.can_cast(array.dtype, target, casting="safe") and target.kind in "iu" and array.size:
        info = np.iinfo(target)
        outside = (array < info.min) | (array > info.max)
        if outside.any():
            index = tuple(int(i) for i in np.argwhere(outside)[0])
            raise PydanticCustomError(
                "ndarray_out_of_range", "value {value} at index {index} does not fit in {dtype} [{low}, {high}]",
                {"value": str(array[index]), "index": str(index), "dtype": target.name,
                 "low": int(info.min), "high": int(info.max)},
            )
    with np.errstate(over="ignore", invalid="ignore"):
        out = array.astype(target, order="C")
        if target.kind == "f" and array.dtype.kind in "iu" and not np.can_cast(array.dtype, target, casting="safe"):
            inexact = out.astype(array.dtype) != array  # int32 16777217 is 16777216.0 in float32
            if inexact.any():
                index = tuple(int(i) for i in np.argwhere(inexact)[0])
                raise PydanticCustomError(
                    "ndarray_inexact", "value {value} at index {index} is not exactly representable in {dtype}",
                    {"value": str(array[index]), "index": str(index), "dtype": target.name},
                )
    return out


def to_wire(array: np.ndarray) -> dict[str, Any]:
    """The msgpack wire form of an array: dtype name, shape and raw little-endian bytes."""
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return {"dtype": str(little.dtype), "shape": list(little.shape), "data": little.tobytes()}

"""Issue #18, the fuzz corpus: every message type in ``MESSAGE_TYPES`` is fed bad input - wrong
types, out-of-range ints (2**70, negatives), NaN/inf, wrong array dtypes, shapes and byte
orders, empty and huge strings, missing and extra fields, malformed wire dicts and envelopes for
``decode`` - and 100% of it must be refused with a ``pydantic.ValidationError`` that names the
field (its location, or for a model-level rule its message), nothing else raised. Valid
instances, random ones included, round-trip exactly through ``encode``/``decode``.

The corpus is built from the fields' own declarations (types, bounds, array specs), so a field
added to a message is fuzzed without editing this file. Hypothesis runs derandomized.
"""

from __future__ import annotations

import copy
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

import annotated_types
import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from genxr.platform.arrays import Array
from genxr.platform.messages import (
    AVATAR_JOINT_COUNT,
    HAND_JOINT_COUNT,
    INT64_MAX,
    MESSAGE_TYPES,
    UINT64_MAX,
    AudioChunk,
    AvatarMotion,
    AvatarRequest,
    DisplayFrame,
    HandJoints,
    Message,
    Pose,
    SessionEvent,
    TrackingFrame,
    WorldFrame,
    WorldFrameRequest,
    decode,
    encode,
)
from tests.helpers.messages import all_messages, assert_same

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
VALID: dict[str, Message] = {type(m).__name__: m for m in all_messages()}
MISSING = object()
"""Marks a field deleted from the input."""


# --- what each field is, from its declaration ---------------------------------------------------


@dataclass
class Spec:
    kind: str
    """int, float, str, bool, literal, message, vector, array, messages (a list of), arrays (a list of)."""
    optional: bool = False
    required: bool = True
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    min_length: int | None = None
    max_length: int | None = None
    finite: bool = False
    choices: tuple = ()
    message: type[Message] | None = None
    size: int = 0
    array: Array | None = None
    item: Spec | None = None
    extra: dict = field(default_factory=dict)


def _constraints(spec: Spec, metadata) -> None:
    for m in metadata:
        if isinstance(m, FieldInfo):
            _constraints(spec, m.metadata)
        elif isinstance(m, annotated_types.Ge):
            spec.low = m.ge
        elif isinstance(m, annotated_types.Gt):
            spec.low, spec.low_open = m.gt, True
        elif isinstance(m, annotated_types.Le):
            spec.high = m.le
        elif isinstance(m, annotated_types.Lt):
            spec.high, spec.high_open = m.lt, True
        elif isinstance(m, annotated_types.MinLen):
            spec.min_length = m.min_length
        elif isinstance(m, annotated_types.MaxLen):
            spec.max_length = m.max_length
        elif isinstance(m, Array):
            spec.array = m
        elif getattr(m, "allow_inf_nan", None) is False:
            spec.finite = True


def spec_of(annotation, metadata=()) -> Spec:
    spec = Spec(kind="?")
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        assert len(args) == 1, f"unions other than Optional are not fuzzed yet: {annotation}"
        inner = spec_of(args[0], metadata)
        inner.optional = True
        return inner
    if typing.get_origin(annotation) is Annotated:
        base, *extra = typing.get_args(annotation)
        return spec_of(base, [*metadata, *extra])
    _constraints(spec, metadata)
    origin = typing.get_origin(annotation)
    if annotation is bool:
        spec.kind = "bool"
    elif annotation is int:
        spec.kind = "int"
    elif annotation is float:
        spec.kind = "float"
    elif annotation is str:
        spec.kind = "str"
    elif origin is Literal:
        spec.kind, spec.choices = "literal", typing.get_args(annotation)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        spec.kind, spec.message = "message", annotation
    elif origin is tuple:
        spec.kind, spec.size = "vector", len(typing.get_args(annotation))
        spec.item = spec_of(typing.get_args(annotation)[0])
    elif annotation is np.ndarray and spec.array is not None:
        spec.kind = "array"
    elif origin is list:
        spec.item = spec_of(typing.get_args(annotation)[0])
        spec.kind = {"message": "messages", "array": "arrays"}[spec.item.kind]
    else:
        raise AssertionError(f"the fuzz corpus does not know the field type {annotation}")
    return spec


def fields_of(cls: type[Message]) -> dict[str, Spec]:
    out = {}
    for name, info in cls.model_fields.items():
        spec = spec_of(info.annotation, info.metadata)
        spec.required = info.is_required()
        out[name] = spec
    return out


SPECS = {name: fields_of(cls) for name, cls in MESSAGE_TYPES.items()}


# --- bad values -----------------------------------------------------------------------------------

WRONG_TYPES = [None, "x", [1], {"a": 1}, object()]


def bad_numbers(spec: Spec) -> list:
    values = [math.nan, math.inf, -math.inf] if spec.kind == "float" else [1.5, math.nan, math.inf, 2**70, -2**70, -1]
    if spec.low is not None:
        below = spec.low - 1 if spec.kind == "int" else math.nextafter(spec.low, -math.inf)
        values.append(spec.low if spec.low_open else below)
    if spec.high is not None:
        above = spec.high + 1 if spec.kind == "int" else math.nextafter(spec.high, math.inf)
        values.append(spec.high if spec.high_open else above)
    if spec.kind == "int" and spec.high is not None and spec.high < UINT64_MAX:
        values.append(UINT64_MAX)
    if spec.kind == "float" and spec.low is None and spec.high is None and not spec.finite:
        raise AssertionError("a float field without bounds must at least refuse NaN/inf (allow_inf_nan=False)")
    return [v for v in values if not (spec.kind == "int" and v == -1 and spec.low is not None and spec.low < 0)]


def minimum(array: Array) -> tuple[int, ...] | None:
    return getattr(array, "min_shape", None)


def bad_arrays(spec: Spec, good: np.ndarray) -> list:
    """Arrays of the wrong dtype, shape, size, values or (non-)finiteness for ``spec``."""
    a = spec.array
    target = np.dtype(a.dtype)
    out = [good.astype(np.complex64), good.astype("U8"), good.astype(object), np.float32(1.0),
           good[..., None], good.reshape(-1) if good.ndim > 1 else good.reshape(1, -1)]
    if good.size:
        if target.kind == "f":
            for value in (math.nan, math.inf, -math.inf, 1e39):
                bad = good.astype(np.float64)
                bad.flat[good.size // 2] = value
                out.append(bad)
                out.append(bad.astype(">f8"))  # byte order does not hide it
        else:
            out.append(good.astype(np.float32))  # float -> integer is never lossless
            wide = good.astype(np.int32)
            wide.flat[0] = np.iinfo(target).max + 1
            out.append(wide)
            negative = good.astype(np.int32)
            negative.flat[-1] = -1
            out.append(negative)
    for axis, want in enumerate(a.shape):
        if want is not None:
            for wrong in (want - 1, want + 1):
                shape = list(good.shape)
                shape[axis] = wrong
                out.append(np.zeros(shape, target))
    if minimum(a) is not None:
        for axis, least in enumerate(minimum(a)):
            if least > 0 and a.shape[axis] is None:
                shape = list(good.shape)
                shape[axis] = least - 1
                out.append(np.zeros(shape, target))
    free = [axis for axis, want in enumerate(a.shape) if want is None]
    if free:
        shape = [want if want is not None else (minimum(a) or [1] * len(a.shape))[axis] or 1
                 for axis, want in enumerate(a.shape)]
        per_step = math.prod(shape) * target.itemsize
        shape[free[0]] = a.max_bytes // (per_step // shape[free[0]]) + 1
        out.append(np.broadcast_to(np.zeros((), target), shape))  # too large, without allocating it
    out += [None, "x", 5, 1.5, [[1.0, 2.0], [3.0]], {"dtype": a.dtype}]
    return out


def lawful_wrong_type(spec: Spec, value: Any) -> bool:
    """The generic wrong-type values that some fields rightly take: a string, a one-number list."""
    return ((spec.kind == "str" and value == "x")
            or (spec.kind == "array" and value == [1] and spec.array.shape == (None,)))


def bad_values(owner: str, name: str, spec: Spec, good: Any) -> list:
    """Values of field ``name`` that must be refused."""
    values = [] if spec.optional else [None]
    values += [v for v in WRONG_TYPES if v is not None and not lawful_wrong_type(spec, v)]
    if spec.kind in ("int", "float"):
        values += bad_numbers(spec) + [[0], "1e400"]
    elif spec.kind == "str":
        values += [5, ["s"], "\ud800"]
        if spec.min_length:
            values.append("")
        if spec.max_length is not None:
            values.append("x" * (spec.max_length + 1))
            values.append("x" * 1_000_000)
    elif spec.kind == "bool":
        values += [2, 0.5, "maybe", [True]]
    elif spec.kind == "literal":
        values += ["bogus", "", 5, str(spec.choices[0]).upper()]
    elif spec.kind == "message":
        values += [5, [1], {**good.model_dump(), "bogus_field": 1}]
        if any(info.is_required() for info in spec.message.model_fields.values()):
            values.append({})
    elif spec.kind == "vector":
        n = spec.size
        values += [[0.0] * (n - 1), [0.0] * (n + 1), [math.nan] * n, [math.inf] + [0.0] * (n - 1), ["a"] * n, 5]
    elif spec.kind == "array":
        values += bad_arrays(spec, good)
    elif spec.kind == "messages":
        values += [[], [good[0]] * ((spec.max_length or 0) + 1), [5], [{}], good[0]]
    elif spec.kind == "arrays":
        values += [[], [good[0]] * ((spec.max_length or 0) + 1), good[0]]
        values += [[bad] for bad in bad_arrays(spec.item, good[0])]
    values += SEMANTIC.get((owner, name), lambda g: [])(good)
    return values


def _rest_hand(side: str) -> HandJoints:
    return VALID["TrackingFrame"].left_hand.model_copy(update={"hand": side})


SEMANTIC = {
    # Values of the right type that break a field's own rule.
    ("Pose", "orientation"): lambda g: [(0.0, 0.0, 0.0, 2.0), (0.0, 0.0, 0.0, 0.0), (1.0, 1.0, 0.0, 0.0)],
    ("HandJoints", "radii"): lambda g: [np.full(HAND_JOINT_COUNT, -0.01, np.float32)],
    ("HandJoints", "orientations"): lambda g: [np.zeros((HAND_JOINT_COUNT, 4), np.float32)],
    ("AudioChunk", "samples"): lambda g: [np.full(8, 1.5, np.float32), np.full(8, -2.0, np.float32)],
    ("TrackingFrame", "left_hand"): lambda g: [_rest_hand("right")],
    ("TrackingFrame", "right_hand"): lambda g: [_rest_hand("left")],
    ("TrackingFrame", "predicted_display_time_ns"): lambda g: [VALID["TrackingFrame"].sample_time_ns - 1],
    ("WorldFrameRequest", "tracking"): lambda g: [list(reversed(g)), [g[0], g[0]],
                                                  [g[0], g[1].model_copy(update={"frame_id": g[0].frame_id})]],
    ("AvatarMotion", "root_translation"): lambda g: [np.zeros((g.shape[0] + 1, 3), np.float32)],
}


# --- the corpus -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    owner: str
    """The message type validated."""
    path: tuple
    """Field (and sub-field) changed."""
    value: Any
    label: str


def filled(message: Message) -> Message:
    """``message`` with every optional field it leaves None set to a valid value."""
    update = {name: stand_in(spec) for name, spec in SPECS[type(message).__name__].items()
              if getattr(message, name) is None and stand_in(spec) is not None}
    return type(message).model_validate({**python_fields(message), **update})


def corpus() -> list[Case]:
    cases = []
    for owner, message in BASE.items():
        specs = SPECS[owner]
        for name, spec in specs.items():
            good = getattr(message, name)
            for value in bad_values(owner, name, spec, good):
                cases.append(Case(owner, (name,), value, f"{owner}.{name} = {short(value)}"))
            if spec.required:
                cases.append(Case(owner, (name,), MISSING, f"{owner}.{name} missing"))
            if spec.kind == "message" and good is not None:  # one level down: the nested field is named in full
                nested = type(good).__name__
                for sub, sub_spec in SPECS[nested].items():
                    for value in bad_values(nested, sub, sub_spec, getattr(good, sub))[:6]:
                        cases.append(Case(owner, (name, sub), value, f"{owner}.{name}.{sub} = {short(value)}"))
        cases.append(Case(owner, ("bogus_field",), 1, f"{owner} with an extra field"))
    return cases


def stand_in(spec: Spec) -> Any:
    """A valid value of an optional field that the valid instance leaves None."""
    if spec.kind == "message":
        return VALID[spec.message.__name__]
    if spec.kind == "arrays":
        return [np.zeros((4, 4, 3), np.dtype(spec.item.array.dtype))]
    return None


def short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array{value.shape} {value.dtype}"
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def changed(data: dict, path: tuple, value: Any) -> dict:
    out = dict(data)
    head, *rest = path
    if rest:
        out[head] = changed(dict(out[head]), tuple(rest), value)
    elif value is MISSING:
        out.pop(head, None)
    else:
        out[head] = value
    return out


def python_fields(message: Message) -> dict:
    """The message's fields as a constructor takes them: nested messages as dicts, arrays as arrays."""
    return message.model_dump(mode="python")


def wire_fields(message: Message) -> dict:
    return msgpack.unpackb(encode(message), raw=False)["data"]


def to_wire_value(value: Any) -> Any:
    """``value`` as msgpack carries it (arrays as wire objects in their own byte order); raises
    ``TypeError`` for what msgpack cannot carry at all."""
    if isinstance(value, BaseModel):
        return wire_fields(value)
    if isinstance(value, np.ndarray):
        if value.dtype == object or value.nbytes > (1 << 24):
            raise TypeError("not on the wire")
        return {"dtype": value.dtype.str, "shape": list(value.shape), "data": value.tobytes()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [to_wire_value(v) for v in value]
    if isinstance(value, dict):
        return {k: to_wire_value(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    raise TypeError("not on the wire")


def names_the_field(error: ValidationError, path: tuple) -> bool:
    """An error located at ``path`` (or inside it), or at an enclosing model whose message names it."""
    for detail in error.errors():
        loc = tuple(detail["loc"])
        if loc[:len(path)] == path:
            return True
        if path[:len(loc)] == loc and str(path[len(loc)]) in detail["msg"]:
            return True
    return False


def outcome(validate, path: tuple) -> str | None:
    """None when ``validate()`` raised a ValidationError naming ``path``; else what happened instead."""
    try:
        validate()
    except ValidationError as err:
        return None if names_the_field(err, path) else f"refused without naming {path}: {err}"
    except Exception as err:  # noqa: BLE001 - exactly what the corpus is here to catch
        return f"raised {type(err).__name__}: {err}"
    return "validated"


BASE = {owner: filled(message) for owner, message in VALID.items()}
"""The valid instance each bad input is a change of: every field set."""
CORPUS = corpus()


def test_the_corpus_covers_every_field_of_every_message_type():
    assert set(VALID) == set(MESSAGE_TYPES)
    covered = {(case.owner, case.path[0]) for case in CORPUS}
    assert covered >= {(owner, name) for owner, specs in SPECS.items() for name in specs}
    assert len(CORPUS) > 1000


def test_every_bad_input_is_refused_naming_the_field():
    failures = []
    for case in CORPUS:
        cls = MESSAGE_TYPES[case.owner]
        data = changed(python_fields(BASE[case.owner]), case.path, case.value)
        problem = outcome(lambda: cls.model_validate(data), case.path)
        if problem is not None:
            failures.append(f"{case.label}: {problem}")
    assert not failures, f"{len(failures)} of {len(CORPUS)} bad inputs were not refused:\n" + "\n".join(failures[:40])


def test_every_bad_input_is_refused_by_decode_too():
    failures, tried = [], 0
    for case in CORPUS:
        try:
            value = case.value if case.value is MISSING else to_wire_value(case.value)
            data = changed(wire_fields(BASE[case.owner]), case.path, value)
            payload = msgpack.packb({"type": case.owner, "data": data}, use_bin_type=True)
        except (TypeError, OverflowError, ValueError, UnicodeEncodeError):
            continue  # msgpack cannot carry it (2**70, a lone surrogate, an object): no payload holds it
        tried += 1
        problem = outcome(lambda: decode(payload), case.path)
        if problem is not None:
            failures.append(f"{case.label}: {problem}")
    assert tried > 0.7 * len(CORPUS)
    assert not failures, f"{len(failures)} of {tried} bad payloads were not refused:\n" + "\n".join(failures[:40])


def wire_array_paths() -> list[tuple[str, tuple]]:
    """(message type, path to a wire array object) for every array field of every valid message."""
    out = []
    for owner, message in BASE.items():
        for name, spec in SPECS[owner].items():
            good = getattr(message, name)
            if spec.kind == "array":
                out.append((owner, (name,)))
            elif spec.kind == "arrays" and good is not None:
                out.append((owner, (name, 0)))
            elif spec.kind == "message" and good is not None:
                out += [(owner, (name, sub)) for sub, s in SPECS[type(good).__name__].items() if s.kind == "array"]
    return out


WIRE_BREAKS = [
    ("dtype", "banana"), ("dtype", 5), ("dtype", None), ("dtype", ["float32"]), ("dtype", "object"),
    ("dtype", "U4"), ("dtype", "f4,f4"), ("dtype", "(2,)f4"), ("dtype", "c8"), ("dtype", "V4"), ("dtype", "x" * 10_000),
    ("shape", 3), ("shape", None), ("shape", [[3]]), ("shape", [3.0]), ("shape", [-1]), ("shape", [True]),
    ("shape", "3"), ("shape", [2**64 - 1]), ("shape", [2**32, 2**32]), ("shape", [1] * 100),
    ("data", 5), ("data", None), ("data", [1, 2]), ("data", b""), ("data", b"\x00" * 7), ("data", "!!"),
    ("data", "é"), ("extra", 1), ("dtype", MISSING), ("shape", MISSING), ("data", MISSING),
]


def at(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data


def test_malformed_wire_arrays_are_refused_naming_the_field():
    failures, count = [], 0
    for owner, path in wire_array_paths():
        for key, value in WIRE_BREAKS:
            data = copy.deepcopy(wire_fields(BASE[owner]))
            target = at(data, path)
            if value is MISSING:
                del target[key]
            else:
                target[key] = value
            payload = msgpack.packb({"type": owner, "data": data}, use_bin_type=True)
            count += 1
            field_path = tuple(p for p in path if not isinstance(p, int))
            problem = outcome(lambda: decode(payload), field_path)
            if problem is not None:
                failures.append(f"{owner}.{'.'.join(map(str, path))}[{key!r}] = {short(value)}: {problem}")
    assert count > 300
    assert not failures, "\n".join(failures[:40])


@pytest.mark.parametrize("envelope, loc", [
    ({"type": [1], "data": {}}, "type"), ({"type": None, "data": {}}, "type"), ({"type": 5, "data": {}}, "type"),
    ({"type": "Banana", "data": {}}, "type"), ({"type": "message", "data": {}}, "type"),
    ({"type": "Pose"}, "payload"), ({"data": {}}, "payload"), ({"type": "Pose", "data": {}, "x": 1}, "payload"),
    ([1], "payload"), ("Pose", "payload"), (None, "payload"), (5, "payload"), ({}, "payload"),
    ({b"type": "Pose", b"data": {}}, "payload"),
])
def test_malformed_envelopes_are_refused(envelope, loc):
    payload = msgpack.packb(envelope, use_bin_type=True)
    assert outcome(lambda: decode(payload), (loc,)) is None


@pytest.mark.parametrize("name", sorted(MESSAGE_TYPES))
def test_data_that_is_not_an_object_is_refused(name):
    for data in (None, 5, "x", [1, 2], b"\x00"):
        payload = msgpack.packb({"type": name, "data": data}, use_bin_type=True)
        with pytest.raises(ValidationError):
            decode(payload)


# --- hypothesis: random bad input ---------------------------------------------------------------

NUMERIC = [(owner, name, spec) for owner, specs in SPECS.items() for name, spec in specs.items()
           if spec.kind in ("int", "float")]


@FUZZ
@given(st.data())
def test_random_out_of_range_numbers_are_refused(data):
    owner, name, spec = data.draw(st.sampled_from(NUMERIC))
    candidates = [st.sampled_from([math.nan, math.inf, -math.inf])]
    if spec.kind == "int":
        low = -(2**80) if spec.low is None else int(spec.low)
        high = 2**80 if spec.high is None else int(spec.high)
        candidates += [st.integers(max_value=low - 1), st.integers(min_value=high + 1)]
        candidates.append(st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not float(f).is_integer()))
    else:
        if spec.low is not None:
            candidates.append(st.floats(max_value=spec.low, exclude_max=not spec.low_open, allow_nan=False))
        if spec.high is not None:
            candidates.append(st.floats(min_value=spec.high, exclude_min=not spec.high_open, allow_nan=False))
    value = data.draw(st.one_of(candidates))
    fields = changed(python_fields(BASE[owner]), (name,), value)
    assert outcome(lambda: MESSAGE_TYPES[owner].model_validate(fields), (name,)) is None
    try:
        payload = msgpack.packb({"type": owner, "data": changed(wire_fields(BASE[owner]), (name,), value)})
    except (OverflowError, TypeError):
        return
    assert outcome(lambda: decode(payload), (name,)) is None


ARRAY_FIELDS = [(owner, name, spec) for owner, specs in SPECS.items() for name, spec in specs.items()
                if spec.kind == "array"]
DTYPES = ["u1", "u2", "i1", "i2", "i4", "i8", "u8", "f2", "f4", "f8", ">f4", ">f8", ">i4", ">u2", "?", "c8", "U2"]


def lawful(spec: Spec, array: np.ndarray) -> bool:
    """Whether ``array`` fits the field: its shape pattern, minimum and payload limit."""
    a = spec.array
    return (array.ndim == len(a.shape) and all(w is None or h == w for h, w in zip(array.shape, a.shape))
            and all(h >= m for h, m in zip(array.shape, minimum(a) or (0,) * array.ndim))
            and array.size * np.dtype(a.dtype).itemsize <= a.max_bytes)


@FUZZ
@given(st.data())
def test_random_arrays_are_refused_or_stored_without_loss(data):
    owner, name, spec = data.draw(st.sampled_from(ARRAY_FIELDS))
    good = getattr(BASE[owner], name)
    shape = data.draw(st.one_of(st.just(good.shape),
                                hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6)))
    dtype = np.dtype(data.draw(st.sampled_from(DTYPES)))
    array = data.draw(hnp.arrays(dtype, shape))
    fields = changed(python_fields(BASE[owner]), (name,), array)
    try:
        message = MESSAGE_TYPES[owner].model_validate(fields)
    except ValidationError as err:
        assert names_the_field(err, (name,)), str(err)
        return
    stored = getattr(message, name)
    assert lawful(spec, array) and stored.dtype == np.dtype(spec.array.dtype).newbyteorder("<")
    assert not stored.flags.writeable and stored.flags.c_contiguous
    if stored.dtype.kind in "iu" or array.dtype.kind in "biu":
        assert np.array_equal(stored, array), "an integer cast lost a value"
    else:
        assert np.isfinite(stored).all()
        if array.dtype.itemsize <= stored.dtype.itemsize:
            assert np.array_equal(stored, array), "a widening float cast changed a value"
    assert encode(decode(encode(message))) == encode(message)


WIRE_JUNK = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(),
                      st.text(max_size=12), st.binary(max_size=64),
                      st.lists(st.integers(-3, 30), max_size=5), st.lists(st.none(), max_size=2))


@FUZZ
@given(st.data())
def test_random_wire_arrays_never_raise_anything_but_a_validation_error(data):
    owner, path = data.draw(st.sampled_from(wire_array_paths()))
    wire = copy.deepcopy(wire_fields(BASE[owner]))
    target = at(wire, path)
    for key in data.draw(st.lists(st.sampled_from(["dtype", "shape", "data", "other"]), min_size=1, max_size=3,
                                  unique=True)):
        target[key] = data.draw(WIRE_JUNK)
    payload = msgpack.packb({"type": owner, "data": wire}, use_bin_type=True)
    try:
        message = decode(payload)
    except ValidationError as err:
        assert names_the_field(err, tuple(p for p in path if not isinstance(p, int))), str(err)
        return
    assert encode(decode(encode(message))) == encode(message)  # what decodes is a valid message


ENCODED = [encode(m) for m in all_messages()]


@FUZZ
@given(st.data())
def test_random_and_damaged_payloads_decode_or_are_refused(data):
    kind = data.draw(st.sampled_from(["random", "truncated", "flipped"]))
    if kind == "random":
        payload = data.draw(st.binary(max_size=256))
    else:
        good = data.draw(st.sampled_from(ENCODED))
        if kind == "truncated":
            payload = good[:data.draw(st.integers(0, len(good) - 1))]
        else:
            damaged = bytearray(good)
            for _ in range(data.draw(st.integers(1, 4))):
                damaged[data.draw(st.integers(0, len(good) - 1))] = data.draw(st.integers(0, 255))
            payload = bytes(damaged)
    try:
        message = decode(payload)
    except ValidationError:
        return
    assert encode(decode(encode(message))) == encode(message)


# --- valid messages round-trip exactly --------------------------------------------------------------


def round_trips(message: Message) -> None:
    again = decode(encode(message), expected=type(message))
    assert_same(message, again)
    assert encode(again) == encode(message)


@pytest.mark.parametrize("message", all_messages(), ids=lambda m: type(m).__name__)
def test_valid_messages_round_trip_exactly(message):
    round_trips(message)


@pytest.mark.parametrize("message", all_messages(), ids=lambda m: type(m).__name__)
def test_big_endian_arrays_are_valid_input_with_the_same_values(message):
    fields = {name: (value.astype(value.dtype.newbyteorder(">")) if isinstance(value, np.ndarray) else value)
              for name, value in python_fields(message).items()}
    again = type(message).model_validate(fields)
    assert_same(message, again)


ids = st.integers(0, UINT64_MAX)
times = st.integers(0, INT64_MAX)
texts = st.text(min_size=1, max_size=128)
finite = st.floats(-1e6, 1e6, allow_nan=False)


@st.composite
def unit_quaternions(draw, dtype=np.float64):
    q = np.array(draw(st.tuples(*[st.floats(-1, 1)] * 4)), np.float64)
    if np.linalg.norm(q) < 0.1:
        q = np.array([0.0, 0.0, 0.0, 1.0])
    return (q / np.linalg.norm(q)).astype(dtype)


@st.composite
def poses(draw):
    return Pose(position=draw(st.tuples(finite, finite, finite)),
                orientation=tuple(map(float, draw(unit_quaternions()))))


def float32s(shape, low=-10.0, high=10.0):
    return hnp.arrays(np.float32, shape, elements=st.floats(low, high, width=32))


def images():
    return st.tuples(st.integers(2, 9), st.integers(2, 9)).flatmap(
        lambda hw: hnp.arrays(np.uint8, (*hw, 3)))


@st.composite
def hands(draw, side=None):
    quats = np.stack([draw(unit_quaternions(np.float32)) for _ in range(3)])
    return HandJoints(hand=side or draw(st.sampled_from(["left", "right"])), is_active=draw(st.booleans()),
                      location_flags=draw(hnp.arrays(np.uint8, HAND_JOINT_COUNT)),
                      positions=draw(float32s((HAND_JOINT_COUNT, 3))),
                      orientations=np.resize(quats, (HAND_JOINT_COUNT, 4)),
                      radii=draw(float32s(HAND_JOINT_COUNT, 0.0, 0.125)))


@st.composite
def audio(draw):
    return AudioChunk(speaker=draw(st.sampled_from(["user", "agent"])), start_time_ns=draw(times),
                      sample_rate_hz=draw(st.integers(1, 192_000)),
                      samples=draw(float32s(draw(st.integers(0, 32)), -1.0, 1.0)))


@st.composite
def tracking_frames(draw, frame_id=None, sample=None):
    sample = draw(times) if sample is None else sample
    return TrackingFrame(frame_id=draw(ids) if frame_id is None else frame_id, sample_time_ns=sample,
                         predicted_display_time_ns=draw(st.integers(sample, INT64_MAX)), head=draw(poses()),
                         head_tracked=draw(st.booleans()),
                         left_hand=draw(st.none() | hands("left")), right_hand=draw(st.none() | hands("right")),
                         audio=draw(st.none() | audio()))


@st.composite
def requests(draw):
    count = draw(st.integers(1, 3))
    frame_ids = sorted(draw(st.lists(ids, min_size=count, max_size=count, unique=True)))
    samples = sorted(draw(st.lists(times, min_size=count, max_size=count, unique=True)))
    return WorldFrameRequest(session_id=draw(texts), request_id=draw(ids),
                             tracking=[draw(tracking_frames(i, t)) for i, t in zip(frame_ids, samples)])


@st.composite
def motions(draw):
    frames = draw(st.integers(1, 3))
    return AvatarMotion(session_id=draw(texts), request_id=draw(ids), start_time_ns=draw(times),
                        fps=draw(st.floats(0, 1000, exclude_min=True)),
                        rotations_6d=draw(float32s((frames, AVATAR_JOINT_COUNT, 6))),
                        root_translation=draw(float32s((frames, 3))))


VALID_STRATEGIES = {
    "Pose": poses(),
    "HandJoints": hands(),
    "AudioChunk": audio(),
    "TrackingFrame": tracking_frames(),
    "WorldFrameRequest": requests(),
    "WorldFrame": st.builds(WorldFrame, session_id=texts, request_id=ids, frame_id=ids, head=poses(),
                            generated_for_time_ns=times, vertical_fov_deg=st.floats(0, 180, exclude_min=True,
                                                                                     exclude_max=True),
                            image=images(), model=st.text(max_size=128)),
    "AvatarRequest": st.builds(AvatarRequest, session_id=texts, request_id=ids, time_ns=times,
                               user_head=st.none() | poses(), user_audio=st.none() | audio(),
                               agent_audio=st.none() | audio(), eye_contact=st.none() | st.floats(0, 4)),
    "AvatarMotion": motions(),
    "DisplayFrame": st.builds(DisplayFrame, frame_id=ids, display_time_ns=times, image=images(),
                              view_images=st.none() | st.lists(images(), min_size=1, max_size=4),
                              world_frame_id=st.none() | ids, reprojection_deg=st.floats(0, 360),
                              content_age_ns=st.none() | times, stale=st.booleans()),
    "SessionEvent": st.builds(SessionEvent, session_id=texts, time_ns=times,
                              kind=st.sampled_from(typing.get_args(SessionEvent.model_fields["kind"].annotation)),
                              detail=st.text(max_size=64)),
}


def test_there_is_a_valid_strategy_for_every_message_type():
    assert set(VALID_STRATEGIES) == set(MESSAGE_TYPES)


@FUZZ
@given(st.data())
def test_random_valid_messages_round_trip_exactly(data):
    name = data.draw(st.sampled_from(sorted(VALID_STRATEGIES)))
    round_trips(data.draw(VALID_STRATEGIES[name]))

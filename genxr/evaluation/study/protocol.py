"""A user-study protocol: conditions, tasks, trials and questionnaires, from YAML.

    name: hand conditioning pilot
    base_preset: quick                 # genxr config preset every condition starts from
    participant_id_pattern: 'P\\d{2,3}' # pseudonymous ids only (default P followed by digits)
    trials_per_condition: 2            # repetitions of every task in every condition
    conditions:
      - name: student
        config: {display: {width: 64, height: 64}}      # genxr config overrides (GenXRConfig sections)
        settings: {world: student}                      # what the condition varies about the session
      - name: ground_truth
        settings: {world: ground_truth}
    tasks:
      - {name: press, kind: press_button, seconds: 3}
      - {name: carry, kind: grasp_and_move, seconds: 5, success: experimenter}
    questionnaires:
      - name: control
        items:
          - {id: perceived_control, text: I felt in control of what I saw, scale: 7}
          - {id: comments, text: Anything else?, kind: text}

Validated with pydantic; every error names the file, the line and the offending value
(:class:`ProtocolError`). Condition ``config`` overrides are checked by building the
:class:`~genxr.platform.config.GenXRConfig` they describe. A condition's world is
``settings.world``, named as the session names its world services (``session.world``);
:meth:`Protocol.config_for` puts it into the session's configuration. :func:`missing_parts`
says which conditions need parts of genxr that do not exist (or a checkpoint that is not
there) - they are refused when a study is created, never run with a stand-in.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from genxr.platform.config import ConfigError, GenXRConfig, load_config

SESSION_WORLDS = ("student", "ground_truth")
"""The world services a session runs (``session.world`` without ``auto``: a condition names its world)."""

TASK_BEHAVIOURS = {"press_button": "press_button", "grasp_and_move": "grasp_carry_drop",
                   "talk_to_avatar": "look_around"}
"""The simulated user's behaviour script for each task kind."""


class ProtocolError(ValueError):
    """A protocol that cannot be used; the message names the file, line, field and value."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditionSettings(_Strict):
    """What a condition varies about the session beyond the genxr config.

    ``world``: the session's world service - ``student`` (the hand-conditioned world-model
    student, the session default) or ``ground_truth`` (the simulator's rendering); set as
    ``session.world`` of every trial. ``student_head_only``, ``folded`` and
    ``avatar_eye_contact`` (the avatar's eye-contact guidance scale; None = its default) can
    be asked for but not run: :func:`missing_parts` says what is missing.
    """

    world: Literal["student", "ground_truth", "student_head_only"] = "student"
    folded: bool = False
    avatar_eye_contact: float | None = Field(None, ge=0.0, le=4.0)


class Condition(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
    description: str = ""
    config: dict[str, Any] = Field(default_factory=dict, description="GenXRConfig section overrides")
    settings: ConditionSettings = ConditionSettings()

    @field_validator("config")
    @classmethod
    def _known_sections(cls, value: dict[str, Any]) -> dict[str, Any]:
        known = set(GenXRConfig.model_fields)
        for key in value:
            if key not in known:
                raise ValueError(f"unknown config section {key!r}; known: {', '.join(sorted(known))}")
        if "world" in (value.get("session") or {}):
            raise ValueError("config.session.world is chosen by settings.world (student or ground_truth), "
                             "not by the condition's config")
        return value


class Task(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
    kind: Literal["press_button", "grasp_and_move", "talk_to_avatar"]
    seconds: float = Field(gt=0, le=3600, description="trial length, seconds")
    success: Literal["simulator", "experimenter"] = Field(
        "simulator", description="simulator: judged from the simulator's state (sim source); "
                                 "experimenter: a key press after the trial")
    instructions: str = ""

    @model_validator(mode="after")
    def _judgeable(self) -> Task:
        if self.kind == "talk_to_avatar" and self.success == "simulator":
            raise ValueError("the simulator cannot judge talk_to_avatar; set success: experimenter")
        return self


class Item(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_]{1,64}$")
    text: str = Field(min_length=1)
    kind: Literal["likert", "text"] = "likert"
    scale: int = Field(7, ge=2, le=11, description="points of a likert item, answered 1..scale")
    reverse: bool = Field(False, description="scored as scale + 1 - answer")
    anchors: tuple[str, str] = ("strongly disagree", "strongly agree")


class Questionnaire(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_]{1,64}$")
    items: list[Item] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_items(self) -> Questionnaire:
        ids = [item.id for item in self.items]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"item ids must be unique; repeated: {', '.join(duplicates)}")
        return self


class Protocol(_Strict):
    name: str = Field(min_length=1)
    base_preset: str = "quick"
    participant_id_pattern: str = r"P\d{1,4}"
    trials_per_condition: int = Field(1, ge=1, le=100)
    conditions: list[Condition] = Field(min_length=2)
    tasks: list[Task] = Field(min_length=1)
    questionnaires: list[Questionnaire] = Field(default_factory=list)

    @field_validator("participant_id_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as err:
            raise ValueError(f"not a regular expression: {err}") from None
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> Protocol:
        for what in ("conditions", "tasks", "questionnaires"):
            names = [entry.name for entry in getattr(self, what)]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{what} names must be unique; repeated: {', '.join(duplicates)}")
        return self

    def condition(self, name: str) -> Condition:
        for condition in self.conditions:
            if condition.name == name:
                return condition
        raise ProtocolError(f"unknown condition {name!r}; the protocol has: "
                            f"{', '.join(c.name for c in self.conditions)}")

    def config_for(self, condition: Condition, **session: Any) -> GenXRConfig:
        """The genxr configuration of ``condition``, its world as ``session.world``, with ``session``
        fields set on top; :class:`ProtocolError` if the session cannot run that world."""
        if condition.settings.world not in SESSION_WORLDS:
            raise ProtocolError(f"condition {condition.name!r}: {_world_missing(condition.settings.world)}")
        return self._config(condition, world=condition.settings.world, **session)

    def _config(self, condition: Condition, **session: Any) -> GenXRConfig:
        overrides = {section: dict(values) for section, values in condition.config.items()}
        overrides.setdefault("session", {}).update(session)
        return load_config(self.base_preset, **overrides)


def missing_parts(protocol: Protocol) -> dict[str, list[str]]:
    """Per condition, what it asks of the session that genxr cannot run (each names the field,
    the value and what is missing); conditions that can run are absent."""
    out: dict[str, list[str]] = {}
    for condition in protocol.conditions:
        settings = condition.settings
        needs = [need for need in [_world_missing(settings.world)] if need]
        if settings.folded:
            needs.append("settings.folded = true: the session serves the shipped student unfolded; a folded student "
                         "exists only as an offline export (`genxr export onnx --fold RATIO`)")
        if settings.avatar_eye_contact is not None:
            needs.append(f"settings.avatar_eye_contact = {settings.avatar_eye_contact!r}: the session runs the avatar "
                         "at its default eye-contact guidance; the guidance scale is not a session setting")
        if any(task.kind == "talk_to_avatar" for task in protocol.tasks):
            needs += _avatar_missing(protocol._config(condition))
        if needs:
            out[condition.name] = needs
    return out


def _world_missing(world: str) -> str:
    """Why the session cannot run ``settings.world``; empty if it can."""
    if world == "student_head_only":
        return ("settings.world = 'student_head_only': no head-only student ships (the world-model checkpoints hold "
                "a head-only teacher, teacher_head_only, which is not chunk-causal and cannot stream in a session)")
    if world == "student":
        from genxr.components.worldmodel import checkpoint

        root = checkpoint.CHECKPOINT_ROOT
        if not all((root / part / "config.json").is_file() for part in ("student", "codec")):
            return (f"settings.world = 'student': no world-model student checkpoint at {root / 'student'} "
                    f"(with its codec at {root / 'codec'})")
    return ""


def _avatar_missing(config: GenXRConfig) -> list[str]:
    """Why a talk_to_avatar trial of ``config`` would have no avatar, if it would not."""
    if not config.session.avatar:
        return ["talk_to_avatar: session.avatar is false in this condition"]
    from genxr.components.avatar.checkpoint import shipped_checkpoint

    checkpoint = config.session.avatar_checkpoint or shipped_checkpoint()
    if not (checkpoint / "config.json").is_file():
        return [f"talk_to_avatar: no avatar checkpoint at {checkpoint} (train one with "
                "`genxr train avatar --preset cpu`, or set session.avatar_checkpoint)"]
    return []


def _line_map(node: yaml.Node, path: tuple = (), out: dict[tuple, int] | None = None) -> dict[tuple, int]:
    """1-based line of every value in the composed YAML tree, keyed by its path of keys/indices."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _line_map(value, (*path, key.value), out)
            out[(*path, key.value, "__key__")] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            _line_map(value, (*path, index), out)
    return out


def _line_of(lines: dict[tuple, int], loc: tuple) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def parse_protocol(text: str, source: str = "<protocol>") -> Protocol:
    """The protocol in YAML ``text``; ``source`` names it in errors."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ProtocolError(f"{source}{line}: malformed YAML: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{source}:1: a protocol is a YAML mapping (name, conditions, tasks, ...), "
                            f"got {type(data).__name__}")
    lines = _line_map(node)
    try:
        protocol = Protocol.model_validate(data)
    except ValidationError as err:
        problems = []
        for item in err.errors():
            loc = tuple(item["loc"])
            where = ".".join(str(part) for part in loc) or "(top level)"
            value = item.get("input")
            shown = "" if isinstance(value, (dict, list)) else f" = {value!r}"
            problems.append(f"{source}:{_line_of(lines, loc)}: {where}{shown}: {item['msg']}")
        raise ProtocolError("invalid study protocol:\n" + "\n".join(problems)) from None
    for index, condition in enumerate(protocol.conditions):
        try:
            protocol._config(condition)
        except ConfigError as err:
            line = _line_of(lines, ("conditions", index, "config"))
            raise ProtocolError(f"{source}:{line}: condition {condition.name!r} config: {err}") from None
    return protocol


def load_protocol(path: str | Path) -> Protocol:
    """Reads and validates a protocol file (see :func:`parse_protocol`)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ProtocolError(f"cannot read the protocol {str(path)!r}: {err.strerror or err}") from None
    return parse_protocol(text, str(path))

"""A user-study protocol: conditions, tasks, trials and questionnaires, from YAML.

    name: hand conditioning pilot
    base_preset: quick                 # genxr config preset every condition starts from
    participant_id_pattern: 'P\\d{2,3}' # pseudonymous ids only (default P followed by digits)
    trials_per_condition: 2            # repetitions of every task in every condition
    conditions:
      - name: student
        config: {display: {width: 64, height: 64}}      # genxr config overrides (GenXRConfig sections)
        settings: {world_model: hand_conditioned}       # what the condition varies about the session
      - name: ground_truth
        settings: {world_model: ground_truth}
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
:class:`~genxr.platform.config.GenXRConfig` they describe. What a condition varies - its world
model, fold ratio, avatar, eye contact, spatial ablation, world rate, added latency - is its
``settings`` (:class:`ConditionSettings`); :meth:`Protocol.config_for` puts them into the
session's configuration. :func:`missing_parts`
says which conditions need parts of genxr that do not exist (or a checkpoint that is not
there) - they are refused when a study is created, never run with a stand-in.

A protocol file may come from anyone, so loading it is bounded and strict
(:func:`parse_protocol`): at most :data:`MAX_PROTOCOL_CHARS` characters, values nested at most
:data:`MAX_DEPTH` deep and at most :data:`MAX_NODES` values with every YAML alias expanded
(an alias "bomb" or a recursive alias is refused while it is parsed, before anything is
expanded), no repeated key in a mapping (YAML would silently keep the last), every section
its type (``config: {session: fast}`` is refused, not crashed on), numbers and booleans
strict (``seconds: true`` is not 1 second), and a ``participant_id_pattern`` that cannot
backtrack (:func:`pattern_problem`). Each refusal is a :class:`ProtocolError` naming the
file, line, field and value.
"""

from __future__ import annotations

import re
from pathlib import Path
from re import _constants as sre
from re import _parser as sre_parse
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from genxr.platform.config import AgentLine, ConfigError, GenXRConfig, load_config

WORLD_MODELS = {"hand_conditioned": "student", "head_only": "student_head_only", "pixel_unet": "pixel",
                "ground_truth": "ground_truth", "frozen": "frozen"}
"""A condition's ``settings.world_model`` -> the session's world service (``session.world``)."""

LEGACY_WORLDS = {"student": "hand_conditioned", "student_head_only": "head_only", "ground_truth": "ground_truth"}
"""``settings.world`` of protocols written before ``world_model`` -> its ``world_model``."""

SETTINGS_OWN = {("session", "world"): "world_model", ("session", "world_fold"): "fold", ("session", "avatar"): "avatar",
                ("session", "avatar_guidance_scale"): "avatar_eye_contact",
                ("session", "avatar_spatial"): "avatar_spatial", ("session", "world_rate_hz"): "world_rate_hz",
                ("display", "added_latency_ms"): "added_latency_ms"}
"""Config fields a condition sets through ``settings`` (never also through its ``config``)."""

MAX_PROTOCOL_CHARS = 1_000_000
"""A protocol file is a few kilobytes; anything near this is not one."""

MAX_DEPTH = 20
"""Deepest nesting of YAML values; a protocol needs 6 (file, conditions, condition, config, section, value)."""

MAX_NODES = 10_000
"""Most YAML values (keys included) in a protocol with every alias expanded; the shipped ones have a few hundred."""

MAX_PATTERN_CHARS = 100
"""Longest ``participant_id_pattern``."""

ID_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
"""The only characters of a participant id (:mod:`genxr.evaluation.study.participants` refuses any other
before the pattern is tried), so the only ones :func:`pattern_problem` needs to reason about."""

TASK_BEHAVIOURS = {"press_button": "press_button", "grasp_and_move": "grasp_carry_drop",
                   "talk_to_avatar": "look_around"}
"""The simulated user's behaviour script for each task kind."""


class ProtocolError(ValueError):
    """A protocol that cannot be used; the message names the file, line, field and value."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditionSettings(_Strict):
    """What a condition varies about the session beyond the genxr config; each really changes it.

    * ``world_model``: ``hand_conditioned`` (the world-model student, the session default),
      ``head_only`` (the shipped ablation student, camera conditioning only), ``ground_truth``
      (the simulator's rendering), ``frozen`` (the room rendered once, never updated) or
      ``pixel_unet`` (world model v2, where a trained checkpoint is in place) -
      ``session.world``. (``world: student | student_head_only | ground_truth``, the older
      spelling, is read as the same.)
    * ``fold``: the fraction of the student's channels folded away (``session.world_fold``; 0:
      unfolded; unset: the session default) - a student's setting, refused for other worlds.
    * ``avatar``: the conversational avatar on or off (``session.avatar``); ``avatar_eye_contact``
      its gaze guidance scale (``session.avatar_guidance_scale``) and ``avatar_spatial: false``
      the no-user ablation (``session.avatar_spatial``) - refused with the avatar off.
    * ``world_rate_hz``: most world-model requests per second (``session.world_rate_hz``).
    * ``added_latency_ms``: display latency added (``display.added_latency_ms``).
    """

    world_model: Literal["hand_conditioned", "head_only", "pixel_unet", "ground_truth", "frozen"] = "hand_conditioned"
    fold: float | None = Field(None, ge=0.0, lt=1.0, strict=True)
    avatar: bool | None = Field(None, strict=True)
    avatar_eye_contact: float | None = Field(None, ge=0.0, le=4.0, strict=True)
    avatar_spatial: bool | None = Field(None, strict=True)
    world_rate_hz: float | None = Field(None, gt=0.0, le=240.0, strict=True)
    added_latency_ms: float | None = Field(None, ge=0.0, le=1000.0, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _legacy_world(cls, data: Any) -> Any:
        if isinstance(data, dict) and "world" in data:
            data = dict(data)
            world = data.pop("world")
            if "world_model" in data:
                raise ValueError("set world_model, not both world_model and world (its older spelling)")
            if world not in LEGACY_WORLDS:
                raise ValueError(f"world = {world!r}: the older spelling of world_model takes "
                                 f"{', '.join(LEGACY_WORLDS)}; world_model takes {', '.join(WORLD_MODELS)}")
            data["world_model"] = LEGACY_WORLDS[world]
        return data

    @model_validator(mode="after")
    def _each_changes_something(self) -> ConditionSettings:
        if self.fold is not None and self.world_model not in ("hand_conditioned", "head_only"):
            raise ValueError(f"fold = {self.fold!r} folds a world-model student; world_model {self.world_model!r} "
                             "has none to fold")
        if self.avatar is False:
            for name in ("avatar_eye_contact", "avatar_spatial"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} = {getattr(self, name)!r} changes the avatar, which avatar: false "
                                     "turns off")
        return self

    def session_fields(self) -> dict[tuple[str, str], Any]:
        """(config section, field) -> value for every setting given (``world_model`` always)."""
        out: dict[tuple[str, str], Any] = {("session", "world"): WORLD_MODELS[self.world_model]}
        for (section, field), name in SETTINGS_OWN.items():
            value = getattr(self, name)
            if name != "world_model" and value is not None:
                out[(section, field)] = value
        return out


class Condition(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
    description: str = ""
    config: dict[str, dict[str, Any]] = Field(default_factory=dict, description="GenXRConfig section overrides")
    settings: ConditionSettings = ConditionSettings()

    @field_validator("config")
    @classmethod
    def _known_sections(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        known = set(GenXRConfig.model_fields)
        for key in value:
            if key not in known:
                raise ValueError(f"unknown config section {key!r}; known: {', '.join(sorted(known))}")
        if "world" in value.get("session", {}):
            raise ValueError("config.session.world is chosen by settings.world_model (hand_conditioned, head_only, "
                             "pixel_unet, ground_truth or frozen), not by the condition's config")
        return value

    @model_validator(mode="after")
    def _set_once(self) -> Condition:
        for (section, field), setting in SETTINGS_OWN.items():
            if field in self.config.get(section, {}) and getattr(self.settings, setting) is not None:
                raise ValueError(f"config.{section}.{field} and settings.{setting} set the same thing; keep one")
        return self


class Task(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
    kind: Literal["press_button", "grasp_and_move", "talk_to_avatar"]
    seconds: float = Field(gt=0, le=3600, strict=True, description="trial length, seconds")
    success: Literal["simulator", "experimenter"] = Field(
        "simulator", description="simulator: judged from the simulator's state (sim source); "
                                 "experimenter: a key press after the trial")
    instructions: str = ""
    agent_lines: list[AgentLine] = Field(default_factory=list, max_length=1000, description=(
        "talk_to_avatar: what the agent says and when ({at_s, text} spoken by espeak-ng, or {at_s, wav}); the trial "
        "is then a live conversation - the participant's microphone (audio.input_device) and the agent's voice on "
        "the speakers, both fed to the avatar and recorded; without lines, the scripted conversation"))
    user_lines: list[AgentLine] = Field(default_factory=list, max_length=1000, description=(
        "talk_to_avatar, simulated participants only: what the simulated participant says into its 'microphone' "
        "(spoken by espeak-ng into a WAV the session plays as the user's input)"))

    @model_validator(mode="after")
    def _judgeable(self) -> Task:
        if self.kind == "talk_to_avatar" and self.success == "simulator":
            raise ValueError("the simulator cannot judge talk_to_avatar; set success: experimenter")
        if self.kind != "talk_to_avatar" and (self.agent_lines or self.user_lines):
            raise ValueError(f"agent_lines and user_lines are a talk_to_avatar task's conversation; {self.kind!r} "
                             "has none")
        if self.user_lines and not self.agent_lines:
            raise ValueError("user_lines need agent_lines: without the agent's lines the trial runs the scripted "
                             "conversation, which has its own user")
        return self


class Item(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_]{1,64}$")
    text: str = Field(min_length=1)
    kind: Literal["likert", "text", "choice"] = Field(
        "likert", description="likert: a rating 1..scale; choice: one of two named options (1 = the first), "
                              "e.g. NASA-TLX's pairwise comparisons; text: free text")
    scale: int = Field(7, ge=2, le=21, strict=True, description="points of a likert item, answered 1..scale "
                                                                "(21: NASA-TLX's 0..100 in steps of 5)")
    reverse: bool = Field(False, strict=True, description="scored as scale + 1 - answer")
    anchors: tuple[str, str] = ("strongly disagree", "strongly agree")


QUESTIONNAIRE_TIMES = ("after_condition", "before_session", "after_session", "around_session")
"""When a questionnaire is answered: after each condition's trials (the default), once before the
first trial, once after the last, or both (e.g. pre/post SSQ)."""


class Questionnaire(_Strict):
    """Custom items, or a standard instrument by name (:data:`~.instruments.INSTRUMENTS`: its
    published items, scored by its published rule): ``ipq`` in a protocol's ``questionnaires`` list
    is ``{name: ipq, instrument: ipq}``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_]{1,64}$")
    instrument: str | None = Field(None, description="a standard instrument: ipq, ssq, nasa_tlx, "
                                                     "nasa_tlx_weighted, sus, agency")
    when: Literal["after_condition", "before_session", "after_session", "around_session"] = "after_condition"
    items: list[Item] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _instrument_items(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = {"instrument": data}
        if isinstance(data, dict) and data.get("instrument") is not None:
            from genxr.evaluation.study.instruments import TLX_PAIR_ORDER, InstrumentError, get_instrument

            if "items" in data:
                raise ValueError(f"instrument {data['instrument']!r} brings its own published items; "
                                 "leave out items (or drop instrument for a custom questionnaire)")
            try:
                instrument = get_instrument(data["instrument"]) if isinstance(data["instrument"], str) else None
            except InstrumentError as err:
                raise ValueError(str(err)) from None
            if instrument is None:
                raise ValueError(f"instrument must be a name, got {data['instrument']!r}")
            choices = {f"{first}_vs_{second}" for first, second in TLX_PAIR_ORDER}  # pairwise: no better answer
            data = {"name": instrument.name, **data, "items": [
                {"id": item.id, "text": item.text, "scale": item.points, "anchors": item.anchors,
                 "reverse": item.reverse,
                 "kind": "choice" if item.id in choices else "likert"} for item in instrument.items]}
        return data

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
    participant_id_pattern: str = Field(r"P\d{1,4}", min_length=1, max_length=MAX_PATTERN_CHARS)
    trials_per_condition: int = Field(1, ge=1, le=100, strict=True)
    practice_trials: int = Field(0, ge=0, le=10, strict=True,
                                 description="practice trials of every task before each condition's trials; run "
                                             "and recorded like the others, left out of the analysis")
    conditions: list[Condition] = Field(min_length=2)
    tasks: list[Task] = Field(min_length=1)
    questionnaires: list[Questionnaire] = Field(default_factory=list)

    def questionnaire_named(self, name: str) -> Questionnaire:
        """The questionnaire called ``name``; ProtocolError listing the names if there is none."""
        for questionnaire in self.questionnaires:
            if questionnaire.name == name:
                return questionnaire
        raise ProtocolError(f"unknown questionnaire {name!r}; the protocol has: "
                            f"{', '.join(q.name for q in self.questionnaires)}")

    def questionnaires_at(self, when: str) -> list[Questionnaire]:
        """The questionnaires answered ``after_condition``, ``before_session`` or ``after_session``."""
        return [q for q in self.questionnaires
                if q.when == when or (q.when == "around_session" and when in ("before_session", "after_session"))]

    @field_validator("participant_id_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as err:
            raise ValueError(f"not a regular expression: {err}") from None
        problem = pattern_problem(value)
        if problem:
            raise ValueError(problem)
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

    def config_for(self, condition: Condition, sections: dict[str, dict[str, Any]] | None = None,
                   **session: Any) -> GenXRConfig:
        """The genxr configuration of ``condition``: its config overrides, its settings
        (:meth:`ConditionSettings.session_fields`), then ``sections`` (config section -> fields)
        and ``session`` fields on top; :class:`ProtocolError` if genxr cannot run the condition
        (:func:`missing_parts`)."""
        needs = _condition_missing(self, condition)
        if needs:
            raise ProtocolError(f"condition {condition.name!r}: " + "; ".join(needs))
        return self._config(condition, sections, **session)

    def _config(self, condition: Condition, sections: dict[str, dict[str, Any]] | None = None,
                **session: Any) -> GenXRConfig:
        overrides = {section: dict(values) for section, values in condition.config.items()}
        for (section, field), value in condition.settings.session_fields().items():
            overrides.setdefault(section, {})[field] = value
        for section, values in (sections or {}).items():
            overrides.setdefault(section, {}).update(values)
        overrides.setdefault("session", {}).update(session)
        return load_config(self.base_preset, **overrides)


def missing_parts(protocol: Protocol) -> dict[str, list[str]]:
    """Per condition, what it asks of the session that genxr cannot run (each names the field,
    the value and what is missing); conditions that can run are absent."""
    out: dict[str, list[str]] = {}
    for condition in protocol.conditions:
        needs = _condition_missing(protocol, condition)
        if needs:
            out[condition.name] = needs
    return out


def _condition_missing(protocol: Protocol, condition: Condition) -> list[str]:
    settings = condition.settings
    needs = [need for need in [_world_missing(settings.world_model)] if need]
    config = protocol._config(condition)
    avatar_tasks = [task.name for task in protocol.tasks if task.kind == "talk_to_avatar"]
    if avatar_tasks or settings.avatar_eye_contact is not None or settings.avatar_spatial is not None:
        needs += _avatar_missing(config, avatar_tasks)
    return needs


def _world_missing(world_model: str) -> str:
    """Why the session cannot run ``settings.world_model``; empty if it can."""
    from genxr.components.worldmodel import checkpoint

    root, student = checkpoint.CHECKPOINT_ROOT, WORLD_MODELS[world_model]
    if world_model == "pixel_unet" and not (root / student / "config.json").is_file():
        return (f"settings.world_model = 'pixel_unet': world model v2 is not shipped (no checkpoint at {root / student}); "
                "`genxr train worldmodel-pixel --preset cpu --ship` writes it")
    if world_model not in ("hand_conditioned", "head_only"):
        return ""
    if not all((root / part / "config.json").is_file() for part in (student, "codec")):
        train = "genxr train worldmodel-student" + (" --head-only" if world_model == "head_only" else "")
        return (f"settings.world_model = {world_model!r}: no world-model checkpoint at {root / student} "
                f"(with its codec at {root / 'codec'}); `{train} --ship` writes it")
    return ""


def _avatar_missing(config: GenXRConfig, avatar_tasks: list[str]) -> list[str]:
    """Why the avatar a condition's ``config`` asks for (its settings, or the talk_to_avatar
    tasks named in ``avatar_tasks``) would not run, if it would not."""
    who = f"talk_to_avatar task {', '.join(avatar_tasks)}" if avatar_tasks else "the avatar settings"
    if not config.session.avatar:
        return [f"{who}: session.avatar is false in this condition"]
    from genxr.components.avatar.checkpoint import shipped_checkpoint

    checkpoint = config.session.avatar_checkpoint or shipped_checkpoint()
    if not (checkpoint / "config.json").is_file():
        return [f"{who}: no avatar checkpoint at {checkpoint} (train one with "
                "`genxr train avatar --preset cpu`, or set session.avatar_checkpoint)"]
    return []


_CATEGORIES = {sre.CATEGORY_DIGIT: r"\d", sre.CATEGORY_NOT_DIGIT: r"\D", sre.CATEGORY_WORD: r"\w",
               sre.CATEGORY_NOT_WORD: r"\W", sre.CATEGORY_SPACE: r"\s", sre.CATEGORY_NOT_SPACE: r"\S"}
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)
_SUBSET = ("a participant_id_pattern is a sequence of characters, classes ([a-z], \\d, \\w, .) and repeats of one "
           "of them (?, *, +, {m,n}), optionally as alternatives a|b")


class _Unsafe(ValueError):
    """A participant_id_pattern outside the backtracking-free subset."""


def pattern_problem(pattern: str) -> str:
    """Why ``pattern`` could make :func:`re.fullmatch` backtrack on a participant id; empty if it cannot.

    Python's ``re`` backtracks, and a pattern such as ``(\\d+)+x`` takes 2**n steps on an id of n
    digits, so the protocol's pattern must lie in a subset on which matching is linear (and no
    other regex engine is needed): after Python's own parser, a sequence of single-character
    atoms (a character, a class, ``\\d``, ``\\w``, ``.``), each optionally repeated, with at most
    one alternation whose branches are such sequences; no repeated group, backreference,
    lookaround or inline flag; and no repeat next to something that can take the same
    character (``P\\d+\\d``; write ``P\\d{2,}``), so a repeat never has to give characters back.
    """
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as err:
        return f"not a regular expression: {err}"
    if parsed.state.flags & ~(sre.SRE_FLAG_UNICODE):
        return "inline flags such as (?i) are not allowed in a participant_id_pattern"
    try:
        for sequence in _branches(parsed):
            _check_sequence(sequence)
    except _Unsafe as err:
        return str(err)
    return ""


def _branches(parsed) -> list[list[tuple[frozenset[str], int, int]]]:
    """The pattern's alternatives, each as (characters, min, max) per atom."""
    flat = _inline(parsed)
    branch_at = [index for index, (op, _) in enumerate(flat) if op is sre.BRANCH]
    if len(branch_at) > 1:
        raise _Unsafe(f"more than one alternation (|); {_SUBSET}")
    if not branch_at:
        return [_atoms(flat)]
    index = branch_at[0]
    head, tail = _atoms(flat[:index]), _atoms(flat[index + 1:])
    out = []
    for alternative in flat[index][1][1]:
        inner = _inline(alternative)
        if any(op is sre.BRANCH for op, _ in inner):
            raise _Unsafe(f"an alternation inside an alternation; {_SUBSET}")
        out.append(head + _atoms(inner) + tail)
    return out


def _inline(subpattern) -> list:
    """The items of ``subpattern`` with its unrepeated groups (and theirs) inlined."""
    out = []
    for op, arg in subpattern.data:
        if op is sre.SUBPATTERN:
            if arg[1] or arg[2]:
                raise _Unsafe("inline flags such as (?i:...) are not allowed in a participant_id_pattern")
            out.extend(_inline(arg[3]))
        else:
            out.append((op, arg))
    return out


def _atoms(items: list) -> list[tuple[frozenset[str], int, int]]:
    atoms = []
    for op, arg in items:
        if op is sre.AT and arg in (sre.AT_BEGINNING, sre.AT_BEGINNING_STRING, sre.AT_END, sre.AT_END_STRING):
            continue  # ^ $ \A \Z: the whole id is matched anyway
        if op in _REPEATS:
            low, high, body = arg
            inner = _inline(body)
            if len(inner) != 1 or inner[0][0] in _REPEATS or inner[0][0] in (sre.BRANCH, sre.SUBPATTERN):
                raise _Unsafe(f"a repeated group or repeated repeat (e.g. (\\d+)+ or (ab)*): matching it can "
                              f"backtrack exponentially; {_SUBSET} (an optional part is an alternative: "
                              f"P\\d{{2}}|P\\d{{2}}-[a-z] rather than P\\d{{2}}(-[a-z])?)")
            atoms.append((_chars(*inner[0]), low, high))
        else:
            atoms.append((_chars(op, arg), 1, 1))
    return atoms


def _chars(op, arg) -> frozenset[str]:
    """The id characters one atom matches."""
    if op is sre.LITERAL:
        return frozenset({chr(arg)}) & ID_ALPHABET
    if op is sre.NOT_LITERAL:
        return ID_ALPHABET - {chr(arg)}
    if op is sre.ANY:
        return ID_ALPHABET
    if op is sre.IN:
        chars: set[str] = set()
        negate = False
        for kind, value in arg:
            if kind is sre.NEGATE:
                negate = True
            elif kind is sre.LITERAL:
                chars.add(chr(value))
            elif kind is sre.RANGE:
                chars.update(c for c in ID_ALPHABET if value[0] <= ord(c) <= value[1])
            elif kind is sre.CATEGORY and value in _CATEGORIES:
                chars.update(c for c in ID_ALPHABET if re.fullmatch(_CATEGORIES[value], c))
            else:
                raise _Unsafe(f"{kind} is not allowed in a character class here; {_SUBSET}")
        return frozenset(ID_ALPHABET - chars if negate else chars & ID_ALPHABET)
    what = {sre.GROUPREF: "a backreference", sre.ASSERT: "a lookahead/lookbehind", sre.ASSERT_NOT: "a lookaround",
            sre.GROUPREF_EXISTS: "a conditional group", sre.ATOMIC_GROUP: "an atomic group",
            sre.AT: "a word boundary or anchor other than ^ and $"}.get(op, str(op))
    raise _Unsafe(f"{what} is not allowed; {_SUBSET}")


def _check_sequence(atoms: list[tuple[frozenset[str], int, int]]) -> None:
    """Refuses a repeat whose characters what may follow it can also take (the only way this subset backtracks)."""
    for index, (chars, low, high) in enumerate(atoms):
        if low == high:
            continue
        for after, after_low, _ in atoms[index + 1:]:
            shared = chars & after
            if shared:
                raise _Unsafe(f"a repeat (atom {index + 1}) is followed by something that can take the same "
                              f"character ({min(shared)!r}), so matching can backtrack; make neighbours disjoint "
                              f"(e.g. P\\d{{2,}} rather than P\\d+\\d)")
            if after_low > 0:
                break


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


def _field(path: tuple | list) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class _ProtocolLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, refusing while it composes what no protocol needs and a hostile file
    uses: nesting deeper than :data:`MAX_DEPTH`, more than :data:`MAX_NODES` values once every
    alias is expanded (counted, never expanded: an anchor's size is known when its node is done,
    so a "billion laughs" file stops at the alias that would cross the limit) and an alias inside
    its own anchor (a recursive structure). Each refusal is a :class:`ProtocolError` naming the
    line, the dotted field and the value."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source = source
        self._path: list = []
        self._depth = 0
        self._reach = 0  # deepest level reached so far (inside the node being composed)
        self._nodes = 0
        self._shapes: dict[str, tuple[int, int]] = {}  # anchor -> (values, levels) of its node, aliases expanded
        self._open: set[str] = set()  # anchors whose node is being composed

    def refuse(self, mark: yaml.Mark, value: str, problem: str) -> None:
        raise ProtocolError(f"{self.source}:{mark.line + 1}: {_field(self._path)} = {value}: {problem}")

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        is_key = isinstance(parent, yaml.MappingNode) and index is None
        step = parent is not None and not is_key
        if step:
            self._path.append(index.value if isinstance(index, yaml.ScalarNode)
                              else "?" if isinstance(index, yaml.Node) else index)
        try:
            return self._compose(parent, index)
        finally:
            if step:
                self._path.pop()

    def _compose(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            alias = f"*{event.anchor}"
            if event.anchor in self._open:
                self.refuse(event.start_mark, alias, f"the alias is inside its own anchor &{event.anchor} "
                                                     "(a recursive structure); a protocol is a tree")
            values, levels = self._shapes.get(event.anchor, (0, 0))  # undefined: PyYAML's own error below
            self._grow(values, self._depth + levels, event.start_mark, alias)
            return super().compose_node(parent, index)
        self._depth += 1
        self._grow(1, self._depth, event.start_mark, _event_value(event))
        start_nodes, outer_reach, self._reach = self._nodes - 1, self._reach, self._depth
        anchor = event.anchor
        if anchor is not None:
            self._open.add(anchor)
        node = super().compose_node(parent, index)
        if anchor is not None:
            self._open.discard(anchor)
            self._shapes[anchor] = (self._nodes - start_nodes, self._reach - self._depth + 1)
        self._reach = max(outer_reach, self._reach)
        self._depth -= 1
        return node

    def _grow(self, values: int, reach: int, mark: yaml.Mark, value: str) -> None:
        self._nodes += values
        self._reach = max(self._reach, reach)
        if reach > MAX_DEPTH:
            self.refuse(mark, value, f"values nested {reach} levels deep; a protocol needs a few (at most {MAX_DEPTH})")
        if self._nodes > MAX_NODES:
            why = ("with its aliases expanded (each alias repeats all its anchor holds: an alias bomb)"
                   if value.startswith("*") else "(a protocol has a few hundred)")
            self.refuse(mark, value, f"the protocol would hold more than {MAX_NODES} values {why}")


def _construct_int(loader: _ProtocolLoader, node: yaml.ScalarNode) -> int:
    try:
        return yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError as err:  # e.g. more than Python's 4300 digits
        raise yaml.constructor.ConstructorError(None, None, f"{_shown(node.value, 40)}: {err}",
                                                node.start_mark) from None


_ProtocolLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _event_value(event: yaml.Event) -> str:
    if isinstance(event, yaml.ScalarEvent):
        return _shown(event.value)
    return "[...]" if isinstance(event, yaml.SequenceStartEvent) else "{...}"


def _node_value(node: yaml.Node) -> str:
    return _shown(node.value) if isinstance(node, yaml.ScalarNode) else \
        "[...]" if isinstance(node, yaml.SequenceNode) else "{...}"


def _check_keys(loader: _ProtocolLoader, node: yaml.Node, path: tuple, seen: set[int]) -> None:
    """Refuses a key that is not a scalar and a key repeated in one mapping (YAML keeps the last
    silently); keys compare as the values they construct to (``1`` and ``0x1`` are one key)."""
    if id(node) in seen:  # an anchored node: checked where it was first seen
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if not isinstance(key, yaml.ScalarNode):
                raise ProtocolError(f"{loader.source}:{line}: {_field(path)} = {_node_value(key)}: a key must be a "
                                    "plain name, not a list or a mapping")
            if key.tag != "tag:yaml.org,2002:merge":  # `<<: *anchor` merges; keys written out override it
                name = loader.construct_object(key)
                if name in first:
                    raise ProtocolError(f"{loader.source}:{line}: {_field((*path, key.value))} = {_node_value(value)}: "
                                        f"duplicate key {key.value!r} (first at line {first[name]}); YAML would "
                                        "silently keep only the last, so the protocol is refused")
                first[name] = line
            _check_keys(loader, value, (*path, key.value), seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            _check_keys(loader, value, (*path, index), seen)


def _compose(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    """(the composed tree, its Python data), bounded and checked as :class:`_ProtocolLoader` says."""
    if len(text) > MAX_PROTOCOL_CHARS:
        raise ProtocolError(f"{source}:1: (file) = {len(text)} characters: a protocol is at most "
                            f"{MAX_PROTOCOL_CHARS} characters")
    loader = _ProtocolLoader(text, source)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_keys(loader, node, (), set())
        return node, loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        detail = "; ".join(part for part in (getattr(err, "context", None), getattr(err, "problem", None)) if part)
        raise ProtocolError(f"{source}{line}: malformed YAML: {detail or err}") from None
    finally:
        loader.dispose()


def parse_protocol(text: str, source: str = "<protocol>") -> Protocol:
    """The protocol in YAML ``text``; ``source`` names it in errors (see the module docstring for
    what is refused)."""
    node, data = _compose(text, source)
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
            shown = "" if isinstance(value, (dict, list)) else f" = {_shown(value)}"
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
        with open(path, "rb") as handle:  # never more than a protocol's worth, whatever the file is
            raw = handle.read(4 * MAX_PROTOCOL_CHARS + 1)
    except OSError as err:
        raise ProtocolError(f"cannot read the protocol {str(path)!r}: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise ProtocolError(f"{path}:{line}: (file): not UTF-8 text ({err.reason} at byte {err.start})") from None
    return parse_protocol(text, str(path))

"""Where questionnaire answers and experimenter judgements come from.

:class:`TerminalAnswers` asks in the terminal with rich prompts (re-asking until an answer
is in range). :class:`SimulatedAnswers` is a simulated participant for synthetic studies
and CI: a seeded model of a respondent whose answers follow the task success *as seen* and
the content age they just experienced in that condition, plus seeded noise.
It is a stand-in respondent for exercising the pipeline - never data about people.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

import numpy as np

from genxr.evaluation.study.protocol import Item


class AnswerError(ValueError):
    """An answer outside what the item allows; the message names the item and value."""


def validate_answer(item: Item, value: Any) -> int | str:
    """``value`` checked against ``item``: an int in 1..scale for likert and choice items, a string for text."""
    if item.kind == "text":
        if not isinstance(value, str) or len(value) > 10_000:
            raise AnswerError(f"item {item.id!r}: a free-text answer must be a string of at most 10000 characters")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= int(value) <= item.scale:
        raise AnswerError(f"item {item.id!r}: answer {value!r} is outside 1..{item.scale}")
    return int(value)


def score(item: Item, value: int) -> int:
    """The item's score: the answer, or ``scale + 1 - answer`` for reverse-keyed items."""
    return item.scale + 1 - value if item.reverse else value


class AnswerSource(Protocol):
    def answer(self, item: Item, context: dict[str, Any]) -> int | str:
        """The participant's answer to ``item`` after a condition (``context``: what they experienced)."""

    def task_succeeded(self, trial: str) -> bool | None:
        """The experimenter's judgement of one trial (None: nobody judged it)."""


class TerminalAnswers:
    """Asks the participant (questionnaires) and the experimenter (task success) in the terminal."""

    def __init__(self, console) -> None:
        self.console = console

    def answer(self, item: Item, context: dict[str, Any]) -> int | str:
        from rich.prompt import IntPrompt, Prompt

        if item.kind == "text":
            return Prompt.ask(f"{item.text}", console=self.console, default="")
        while True:
            value = IntPrompt.ask(f"{item.text} (1 = {item.anchors[0]}, {item.scale} = {item.anchors[1]})",
                                  console=self.console)
            try:
                return validate_answer(item, value)
            except AnswerError as err:
                self.console.print(f"[red]{err}[/]")

    def task_succeeded(self, trial: str) -> bool:
        from rich.prompt import Confirm

        return Confirm.ask(f"Experimenter: did the participant complete {trial}?", console=self.console)


WORSE_WHEN_HIGH = ("ssq", "nasa_tlx", "nasa_tlx_weighted")
"""Instruments whose higher answers mean a worse experience (symptoms, workload)."""
AGE_FREE_MS = 50.0
"""Content age (ms) a simulated respondent does not notice."""
AGE_PENALTY_PER_MS = 1 / 300.0
"""How much each further millisecond of content age takes from a simulated respondent's experience (0..1 scale)."""
SUCCESS_WEIGHT = 0.6
"""How far task success (as seen) moves a simulated respondent's experience (0..1 scale) from neutral."""
NOISE_POINTS = 0.8
"""Standard deviation of a simulated answer's noise, scale points."""
SYMPTOM_SHARE = {"ssq": 0.35}
"""Most of a scale a simulated respondent's worst experience reaches on these instruments (simulator
sickness after short sessions is mostly none to slight, Kennedy et al. 1993)."""
BEFORE_SESSION_EXPERIENCE = 0.85
"""A simulated respondent's experience before any trial (what a pre-session SSQ reads: few symptoms)."""


class SimulatedAnswers:
    """A seeded simulated respondent (see module docstring).

    Its experience of a condition, in [0, 1], is ``0.5 + SUCCESS_WEIGHT * (success - 0.5)`` less
    ``AGE_PENALTY_PER_MS`` per millisecond of content age above ``AGE_FREE_MS`` - success *as
    seen* and content age are what the participant saw, so a world model that shows nothing
    changing gets low ratings however well the simulated hand did. A likert answer is
    ``1 + experience * (scale - 1)`` (reversed for reverse-keyed items, and for the instruments in
    :data:`WORSE_WHEN_HIGH`; on symptom scales at most :data:`SYMPTOM_SHARE` of the scale) plus
    seeded noise; a choice item is a seeded coin.
    """

    def __init__(self, seed: int, participant: str) -> None:
        self.seed, self.participant = seed, participant

    def _rng(self, *parts: str) -> np.random.Generator:
        digest = hashlib.sha256("/".join((str(self.seed), self.participant, *parts)).encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    @staticmethod
    def experience(context: dict[str, Any]) -> float:
        """The respondent's experience of what ``context`` describes, in [0, 1]."""
        success = context.get("success_rate")
        if success is None:
            return BEFORE_SESSION_EXPERIENCE
        age_ms = float(context.get("content_age_ms_p50") or context.get("content_latency_ms_p50") or 0.0)
        good = 0.5 + SUCCESS_WEIGHT * (float(success) - 0.5) - max(0.0, age_ms - AGE_FREE_MS) * AGE_PENALTY_PER_MS
        return float(np.clip(good, 0.0, 1.0))

    def answer(self, item: Item, context: dict[str, Any]) -> int | str:
        rng = self._rng(str(context.get("phase", "")), str(context.get("condition", "")),
                        str(context.get("questionnaire", "")), item.id)
        if item.kind == "text":
            return ""
        if item.kind == "choice":
            return int(rng.integers(1, item.scale + 1))
        good = self.experience(context)
        if context.get("instrument") in WORSE_WHEN_HIGH:
            good = 1.0 - good
        if item.reverse:
            good = 1.0 - good
        share = SYMPTOM_SHARE.get(context.get("instrument"), 1.0)
        return int(np.clip(round(1 + good * share * (item.scale - 1) + rng.normal(0.0, NOISE_POINTS * share)), 1,
                           item.scale))

    def task_succeeded(self, trial: str) -> None:
        """None: a simulated participant has no experimenter, so a task judged by one is not judged
        (the trial's record says ``judged_by: not_judged``; tasks the simulator can judge are judged
        on the frames shown)."""

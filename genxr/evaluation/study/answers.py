"""Where questionnaire answers and experimenter judgements come from.

:class:`TerminalAnswers` asks in the terminal with rich prompts (re-asking until an answer
is in range). :class:`SimulatedAnswers` is a simulated participant for synthetic studies
and CI: a seeded model of a respondent whose likert answers rise with the task success and
fall with the content latency they just experienced in that condition, plus seeded noise.
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
    """``value`` checked against ``item``: an int in 1..scale for likert items, a string for text."""
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

    def task_succeeded(self, trial: str) -> bool:
        """The experimenter's judgement of one trial."""


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


class SimulatedAnswers:
    """A seeded simulated respondent (see module docstring)."""

    def __init__(self, seed: int, participant: str) -> None:
        self.seed, self.participant = seed, participant

    def _rng(self, *parts: str) -> np.random.Generator:
        digest = hashlib.sha256("/".join((str(self.seed), self.participant, *parts)).encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def answer(self, item: Item, context: dict[str, Any]) -> int | str:
        rng = self._rng(context.get("condition", ""), item.id)
        if item.kind == "text":
            return ""
        success = float(context.get("success_rate", 0.5))
        latency_ms = float(context.get("content_latency_ms_p50") or 0.0)
        middle = (item.scale + 1) / 2
        leaning = (success - 0.5) * (item.scale - 1) * 0.6 - latency_ms / 50.0 + rng.normal(0.0, 0.8)
        value = int(np.clip(round(middle + leaning), 1, item.scale))
        return item.scale + 1 - value if item.reverse else value

    def task_succeeded(self, trial: str) -> bool:
        raise AnswerError(f"{trial}: a simulated participant has no experimenter to judge success; "
                          "judge it from the simulator (task success: simulator, --source sim)")

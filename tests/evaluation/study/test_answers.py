"""Answers are range-checked; the simulated respondent is seeded and reacts to what it experienced."""

from __future__ import annotations

import pytest

from genxr.evaluation.study.answers import AnswerError, SimulatedAnswers, score, validate_answer
from genxr.evaluation.study.protocol import Item

LIKERT = Item(id="perceived_control", text="I felt in control.", scale=7)


@pytest.mark.parametrize("value", [0, 8, -1, 3.5, "4", True, None])
def test_out_of_range_or_mistyped_answers_are_refused(value):
    with pytest.raises(AnswerError, match=r"item 'perceived_control': answer .* is outside 1..7"):
        validate_answer(LIKERT, value)


def test_valid_answers_and_reverse_scoring():
    assert validate_answer(LIKERT, 7) == 7
    assert score(Item(id="r", text="t", scale=7, reverse=True), 2) == 6
    assert validate_answer(Item(id="c", text="t", kind="text"), "fine") == "fine"
    with pytest.raises(AnswerError, match="free-text answer must be a string"):
        validate_answer(Item(id="c", text="t", kind="text"), 3)


def test_the_simulated_respondent_is_seeded_and_follows_its_experience():
    good = {"condition": "a", "success_rate": 1.0, "content_age_ms_p50": 20.0}
    bad = {"condition": "a", "success_rate": 0.0, "content_age_ms_p50": 400.0}
    respondent = SimulatedAnswers(1, "P01")
    assert respondent.answer(LIKERT, good) == SimulatedAnswers(1, "P01").answer(LIKERT, good)
    assert respondent.answer(LIKERT, good) > respondent.answer(LIKERT, bad)
    assert respondent.task_succeeded("a/press/1") is None, "no experimenter: not judged"


def test_the_simulated_respondent_reads_success_as_seen_and_content_age():
    experience = SimulatedAnswers.experience
    seen = {"success_rate": 1.0, "content_age_ms_p50": 40.0}
    assert experience(seen) > experience({**seen, "success_rate": 0.0}), "what it saw succeed counts"
    assert experience(seen) > experience({**seen, "content_age_ms_p50": 400.0}), "old content counts against"
    assert experience(seen) == experience({**seen, "content_age_ms_p50": 10.0}), "below what it notices: no effect"
    assert experience({"success_rate": None}) == experience({}), "before any trial: its baseline"


def test_symptom_and_workload_scales_are_answered_low_after_a_good_experience():
    from genxr.evaluation.study.protocol import Item

    symptom = Item(id="nausea", text="Nausea", scale=4)
    good = {"condition": "a", "success_rate": 1.0, "content_age_ms_p50": 20.0}
    answers = [SimulatedAnswers(seed, "P01").answer(symptom, {**good, "instrument": "ssq"}) for seed in range(20)]
    agree = [SimulatedAnswers(seed, "P01").answer(symptom, {**good, "instrument": "ipq"}) for seed in range(20)]
    assert sum(answers) < sum(agree)
    choice = Item(id="effort_vs_performance", text="Which?", scale=2, kind="choice")
    assert {SimulatedAnswers(seed, "P01").answer(choice, good) for seed in range(20)} == {1, 2}


def test_terminal_answers_re_ask_until_the_answer_is_in_range(monkeypatch):
    import io

    from rich.console import Console

    from genxr.evaluation.study.answers import TerminalAnswers

    shown = io.StringIO()
    monkeypatch.setattr("sys.stdin", io.StringIO("9\nseven\n5\nit felt laggy\ny\n"))
    answers = TerminalAnswers(Console(file=shown, width=200))
    assert answers.answer(LIKERT, {}) == 5
    assert answers.answer(Item(id="c", text="Anything else?", kind="text"), {}) == "it felt laggy"
    assert answers.task_succeeded("a/press/1") is True
    assert "answer 9 is outside 1..7" in shown.getvalue()

"""Runs a participant through their plan: real genxr sessions, task judgements, questionnaires.

Each trial is one :func:`genxr.xr_runtime.session.run_session` with the condition's
configuration (its ``settings.world`` as ``session.world``) into a fresh attempt folder; the
trial's record names the world service that served it. With ``source="sim"`` the simulated user
performs the task's behaviour (seeded by participant and step) and, for tasks judged by the
simulator, :class:`~genxr.evaluation.study.tasks.TaskJudge` reads the simulator's state
after every frame; otherwise the experimenter judges success. After each condition's
trials, its questionnaires are answered. Every finished step is appended to the log before
the next starts, so an interrupted participant resumes at the first unfinished step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genxr.evaluation.study.answers import AnswerSource, validate_answer
from genxr.evaluation.study.protocol import TASK_BEHAVIOURS
from genxr.evaluation.study.store import Step, Study

LATENCY_KEYS = ("frames", "frame_time_ms_p50", "frame_time_ms_p99", "deadline_miss_rate", "rotational_m2p_ms_p50",
                "rotational_m2p_ms_p99", "content_latency_ms_p50", "content_latency_ms_p99", "world_model_hz")
"""Session metrics (metrics.json) copied into each trial's log record."""


@dataclass
class ParticipantRun:
    """What :func:`run_participant` did."""

    participant: str
    completed_steps: list[str] = field(default_factory=list)
    skipped_steps: int = 0
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)


def _trial_seed(index: int, step: Step) -> int:
    return index * 1000 + step.number


def run_trial(study: Study, participant: str, index: int, step: Step, source: str,
              answers: AnswerSource, display: Callable[[str], None]) -> dict[str, Any]:
    """Runs one trial's session; returns its log record (``interrupted`` True if it was cut off)."""
    from genxr.xr_runtime.session import run_session

    protocol = study.protocol
    condition = protocol.condition(step.condition)
    task = next(t for t in protocol.tasks if t.name == step.task)
    seed = _trial_seed(index, step)
    config = protocol.config_for(condition, source=source, seed=seed, duration_s=task.seconds)
    folder = study.session_folder(participant, step)
    judge = None
    tracking = None
    if source == "sim":
        from genxr.evaluation.study.tasks import TaskJudge
        from genxr.xr_runtime.sim_source import SimulatedSource

        tracking = SimulatedSource(behaviour=TASK_BEHAVIOURS[task.kind], seed=seed,
                                   rate_hz=config.session.display_rate_hz)
        if task.success == "simulator":
            judge = TaskJudge(task.kind)

    def on_progress(frame_id: int) -> None:
        if judge is not None and tracking.latest is not None:
            judge.observe(frame_id, tracking.latest.state)

    display(f"{participant} step {step.number + 1}: {step.key} ({task.seconds:g} s) -> {folder.name}"
            + (f"\n  instructions: {task.instructions}" if task.instructions else ""))
    result = run_session(config, folder, seconds=task.seconds, source=tracking, on_progress=on_progress)
    record: dict[str, Any] = {"type": "trial", "step": step.key, "number": step.number, "condition": step.condition,
                              "task": step.task, "task_kind": task.kind, "repetition": step.repetition,
                              "seed": seed, "source": source, "session": str(folder.relative_to(study.folder)),
                              "world": config.session.world, "world_model": result.world_model,
                              "interrupted": result.interrupted,
                              "metrics": {k: result.metrics.get(k) for k in LATENCY_KEYS}}
    if result.interrupted:
        return record
    if judge is not None:
        record.update(success=judge.success, judged_by="simulator", success_frame=judge.first_success_frame)
    else:
        record.update(success=bool(answers.task_succeeded(step.key)), judged_by="experimenter")
    return record


def _condition_context(records: list[dict[str, Any]], condition: str) -> dict[str, Any]:
    trials = [r for r in records if r.get("type") == "trial" and r["condition"] == condition]
    latencies = [r["metrics"]["content_latency_ms_p50"] for r in trials
                 if r["metrics"].get("content_latency_ms_p50") is not None]
    return {"condition": condition,
            "success_rate": sum(bool(r.get("success")) for r in trials) / len(trials) if trials else 0.0,
            "content_latency_ms_p50": sum(latencies) / len(latencies) if latencies else None}


def run_participant(study: Study, participant: str, *, source: str = "sim", answers: AnswerSource,
                    display: Callable[[str], None] = lambda message: None, max_steps: int | None = None) -> ParticipantRun:
    """Runs the participant's unfinished steps (at most ``max_steps``), appending each to the log."""
    if source not in ("sim", "openxr"):
        raise ValueError(f"source must be 'sim' or 'openxr', got {source!r}")
    index = study.enrol(participant)
    run = ParticipantRun(participant)
    records, run.notes = study.log(participant)
    pending = study.pending(participant)
    run.skipped_steps = len(study.plan(participant)) - len(pending)
    if run.skipped_steps and pending:
        display(f"{participant}: resuming at step {pending[0].number + 1} ({pending[0].key}); "
                f"{run.skipped_steps} steps already done")
    for step in pending[:max_steps]:
        if step.task is not None:
            record = run_trial(study, participant, index, step, source, answers, display)
            if record["interrupted"]:
                study.append(participant, {**record, "type": "interrupted_trial"})
                run.interrupted = True
                return run
        else:
            context = _condition_context(records, step.condition)
            responses: dict[str, dict[str, Any]] = {}
            for questionnaire in study.protocol.questionnaires:
                responses[questionnaire.name] = {
                    item.id: validate_answer(item, answers.answer(item, context)) for item in questionnaire.items}
            record = {"type": "questionnaires", "step": step.key, "number": step.number,
                      "condition": step.condition, "answers": responses}
        study.append(participant, record)
        records.append(record)
        run.completed_steps.append(step.key)
    return run

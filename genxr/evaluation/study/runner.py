"""Runs a participant through their plan: real genxr sessions, task judgements, questionnaires.

Each trial is one :func:`genxr.xr_runtime.session.run_session` with the condition's
configuration (its settings in the session's config) into a fresh attempt folder; the
trial's record names the world service and avatar that served it. With ``source="sim"`` the
simulated user performs the task's behaviour (seeded by participant and step) and, for tasks
judged by the simulator, success is judged on the frames the session showed
(:class:`~genxr.evaluation.study.seen.SeenJudge`: ``success``, ``judged_by: shown_frames``)
next to the simulator's state (:class:`~genxr.evaluation.study.tasks.TaskJudge`:
``success_simulated``); otherwise the experimenter judges success, and for the tasks the
shown frames can judge the same judge logs ``success_shown`` beside the verdict (automatic
logging for people, with the in-process bus). Practice trials run and
are logged like the others (``practice: true``) and are left out of what the participant is
asked about and of the analysis. After each condition's
trials, its questionnaires are answered. Every finished step is appended to the log before
the next starts, so an interrupted participant resumes at the first unfinished step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genxr.evaluation.study.answers import AnswerSource, validate_answer
from genxr.evaluation.study.protocol import TASK_BEHAVIOURS, Task
from genxr.evaluation.study.store import SESSION_STEP, Step, Study

LATENCY_KEYS = ("frames", "frame_time_ms_p50", "frame_time_ms_p99", "deadline_miss_rate", "rotational_m2p_ms_p50",
                "rotational_m2p_ms_p99", "content_latency_ms_p50", "content_latency_ms_p99", "content_age_ms_p50",
                "content_age_ms_p99", "world_model_hz", "avatar_hz", "avatar_eye_contact_ratio", "avatar_gaze_deg_p50",
                "avatar_facing_deg_p50")
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


def _conversation(task: Task, source: str, folder: Path) -> dict[str, dict[str, Any]]:
    """The ``audio`` config of a talk_to_avatar trial with agent lines: a live conversation - the
    participant's microphone and the speakers, or for a simulated participant (``source`` sim) its
    ``user_lines`` spoken into a WAV beside the session folder and no speakers; {} otherwise."""
    if task.kind != "talk_to_avatar" or not task.agent_lines:
        return {}
    audio: dict[str, Any] = {"conversation": "live", "agent_lines": [line.model_dump() for line in task.agent_lines],
                             "input": "microphone", "output": "speakers"}
    if source == "sim":
        audio.update(input="wav", output="none", input_wav=str(_user_voice(task, folder.with_name(
            f"{folder.name}-user.wav"))))
    return {"audio": audio}


def _user_voice(task: Task, path: Path) -> Path:
    """A WAV of the simulated participant's ``user_lines`` (silence between them) at the model's rate."""
    import wave

    import numpy as np

    from genxr.xr_runtime.audio.base import MODEL_RATE_HZ
    from genxr.xr_runtime.audio.voice import speak
    from genxr.xr_runtime.audio.wav import pcm16, read_wav

    track = np.zeros(round(task.seconds * MODEL_RATE_HZ), np.float32)
    for line in task.user_lines:
        spoken = speak(line.text, what="user line") if line.text is not None else \
            read_wav(line.wav, "user line", MODEL_RATE_HZ)
        first = round(line.at_s * MODEL_RATE_HZ)
        end = min(track.size, first + spoken.size)
        if end > first:
            track[first:end] = spoken[:end - first]
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(MODEL_RATE_HZ)
        out.writeframes(pcm16(track))
    return path


def run_trial(study: Study, participant: str, index: int, step: Step, source: str,
              answers: AnswerSource, display: Callable[[str], None]) -> dict[str, Any]:
    """Runs one trial's session; returns its log record (``interrupted`` True if it was cut off)."""
    from genxr.xr_runtime.session import run_session

    protocol = study.protocol
    condition = protocol.condition(step.condition)
    task = next(t for t in protocol.tasks if t.name == step.task)
    seed = _trial_seed(index, step)
    folder = study.session_folder(participant, step)
    config = protocol.config_for(condition, _conversation(task, source, folder), source=source, seed=seed,
                                 duration_s=task.seconds)
    judge = seen = world = None
    tracking = None
    if source == "sim":
        from genxr.evaluation.study.tasks import TaskJudge
        from genxr.xr_runtime.sim_source import SimulatedSource

        tracking = SimulatedSource(behaviour=TASK_BEHAVIOURS[task.kind], seed=seed,
                                   rate_hz=config.session.display_rate_hz)
        if task.success == "simulator":
            judge = TaskJudge(task.kind)
    from genxr.evaluation.study.seen import SEEN_KINDS

    if task.kind in SEEN_KINDS and config.bus.backend == "inproc":  # a served world's frames never pass through here
        from genxr.evaluation.study.seen import SeenJudge
        from genxr.xr_runtime.session import make_world

        seen = SeenJudge(task.kind, seed)
        name, handler = make_world(config)
        world = (name, seen.wrap(handler))

    def on_progress(frame_id: int) -> None:
        if judge is not None and tracking.latest is not None:
            judge.observe(frame_id, tracking.latest.state)

    display(f"{participant} step {step.number + 1}: {step.key} ({task.seconds:g} s) -> {folder.name}"
            + (f"\n  instructions: {task.instructions}" if task.instructions else ""))
    result = run_session(config, folder, seconds=task.seconds, source=tracking, on_progress=on_progress,
                         world=world, sinks=[seen] if seen is not None else [])
    record: dict[str, Any] = {"type": "trial", "step": step.key, "number": step.number, "condition": step.condition,
                              "task": step.task, "task_kind": task.kind, "repetition": step.repetition,
                              "practice": step.practice, "seed": seed, "source": source,
                              "session": str(folder.relative_to(study.folder)),
                              "world": config.session.world, "world_model": result.world_model,
                              "avatar": result.avatar, "interrupted": result.interrupted,
                              "metrics": {k: result.metrics.get(k) for k in LATENCY_KEYS}}
    if result.interrupted:
        return record
    if seen is not None and judge is not None:
        record.update(success=seen.success, judged_by="shown_frames", success_frame=seen.first_success_frame,
                      shown_frames_judged=seen.judged, success_simulated=judge.success,
                      success_simulated_frame=judge.first_success_frame)
    elif judge is not None:
        record.update(success=judge.success, judged_by="simulator", success_frame=judge.first_success_frame,
                      success_simulated=judge.success)
    else:
        verdict = answers.task_succeeded(step.key)
        record.update(success=None if verdict is None else bool(verdict),
                      judged_by="experimenter" if verdict is not None else "not_judged")
        if seen is not None:  # logged automatically beside the experimenter's verdict
            record.update(success_shown=seen.success, success_shown_frame=seen.first_success_frame,
                          shown_frames_judged=seen.judged)
    return record


def _share(verdicts: list[bool | None]) -> float | None:
    judged = [bool(v) for v in verdicts if v is not None]
    return sum(judged) / len(judged) if judged else None


def _mean_metric(trials: list[dict[str, Any]], key: str) -> float | None:
    values = [r["metrics"][key] for r in trials if r["metrics"].get(key) is not None]
    return sum(values) / len(values) if values else None


def _condition_context(records: list[dict[str, Any]], condition: str) -> dict[str, Any]:
    """What the participant experienced in ``condition`` (its non-practice trials): success as
    judged (as seen, for simulated participants), content age and latency; for the session-level
    questionnaires (:data:`SESSION_STEP`) every trial so far."""
    trials = [r for r in records if r.get("type") == "trial" and not r.get("practice")
              and (condition == SESSION_STEP or r["condition"] == condition)]
    return {"condition": condition, "trials": len(trials),
            "success_rate": _share([r.get("success") for r in trials]),
            "content_latency_ms_p50": _mean_metric(trials, "content_latency_ms_p50"),
            "content_age_ms_p50": _mean_metric(trials, "content_age_ms_p50")}


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
            for questionnaire in study.protocol.questionnaires_at(step.phase or "after_condition"):
                asked = {**context, "questionnaire": questionnaire.name, "instrument": questionnaire.instrument,
                         "phase": step.phase or "after_condition"}
                responses[questionnaire.name] = {
                    item.id: validate_answer(item, answers.answer(item, asked)) for item in questionnaire.items}
            record = {"type": "questionnaires", "step": step.key, "number": step.number,
                      "condition": step.condition, "phase": step.phase or "after_condition", "answers": responses}
        study.append(participant, record)
        records.append(record)
        run.completed_steps.append(step.key)
    return run

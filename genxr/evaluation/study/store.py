"""The study folder: protocol, enrolment and every participant's append-only log.

    STUDY_DIR/
      protocol.yaml            the protocol as given to `genxr study new` (never rewritten)
      study.json               name, protocol sha256, participants in enrolment order
      participants/P07/
        log.jsonl              one JSON object per finished step, appended + fsync'd
        sessions/03-fast-press-1-a1/   each trial's genxr session folder (attempt 1, 2, ...)

A participant's plan is a list of steps: the questionnaires answered before the session (e.g.
a pre-SSQ), then for each condition in their Latin-square order every task
``practice_trials`` times as practice and ``trials_per_condition`` times, then the
condition's questionnaires; last the questionnaires answered after the session. A step is
done when its record is in the log; resuming starts at the first step that is not. A trial
whose session was cut off gets a new attempt folder - nothing already recorded is
overwritten. A torn last log line (a crash while appending) is reported and ignored; the
next append ends it and marks it with a ``torn_line`` record. Any other bad line before
intact ones is damage: an error naming the line.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genxr.evaluation.study.design import condition_order
from genxr.evaluation.study.participants import validate_participant_id
from genxr.evaluation.study.protocol import Protocol, ProtocolError, load_protocol, missing_parts
from genxr.xr_runtime.recording.format import write_json_atomic

PROTOCOL_FILE = "protocol.yaml"
STUDY_FILE = "study.json"
LOG_FILE = "log.jsonl"


class StudyError(ValueError):
    """A study folder that cannot be used as asked; the message says why."""


SESSION_STEP = "@session"
"""The ``condition`` of the session-level questionnaire steps (no condition name can start with ``@``)."""


@dataclass(frozen=True)
class Step:
    """One step of a participant's plan: a trial (``task`` set; ``practice`` for a practice
    trial), a condition's questionnaires, or (``condition`` :data:`SESSION_STEP`, ``phase``
    ``before_session`` / ``after_session``) the questionnaires answered once before the first
    trial or after the last."""

    number: int
    condition: str
    task: str | None = None
    repetition: int = 0
    practice: bool = False
    phase: str | None = None

    @property
    def key(self) -> str:
        if self.phase is not None:
            return f"{SESSION_STEP}/{self.phase}"
        if self.task is None:
            return f"{self.condition}/questionnaires"
        return f"{self.condition}/{self.task}/{'practice' if self.practice else ''}{self.repetition}"


def create_study(protocol_path: str | Path, out: str | Path) -> Path:
    """Validates the protocol and creates the study folder ``out`` (which must not hold anything)."""
    protocol_path, out = Path(protocol_path), Path(out)
    protocol = load_protocol(protocol_path)
    blocked = missing_parts(protocol)
    if blocked:
        lines = [f"  {name}: {need}" for name, needs in blocked.items() for need in needs]
        raise StudyError("the protocol needs parts of genxr that do not exist yet, so those conditions "
                         "cannot be run:\n" + "\n".join(lines))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StudyError(f"{out} already exists and is not an empty folder; a study folder is never overwritten")
    text = protocol_path.read_text()
    try:
        (out / "participants").mkdir(parents=True, exist_ok=True)
        (out / PROTOCOL_FILE).write_text(text)
        write_json_atomic(out / STUDY_FILE, {
            "name": protocol.name, "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "protocol_sha256": hashlib.sha256(text.encode()).hexdigest(), "participants": []})
    except OSError as err:
        raise StudyError(f"cannot create the study folder {str(out)!r}: {err.strerror or err}") from None
    return out


class Study:
    """An existing study folder (see module docstring)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not (self.folder / STUDY_FILE).is_file():
            raise StudyError(f"{self.folder} is not a genxr study folder ({STUDY_FILE} is missing); "
                             "create one with `genxr study new PROTOCOL --out DIR`")
        text = (self.folder / PROTOCOL_FILE).read_text()
        self.state = json.loads((self.folder / STUDY_FILE).read_text())
        if hashlib.sha256(text.encode()).hexdigest() != self.state["protocol_sha256"]:
            raise StudyError(f"{self.folder / PROTOCOL_FILE} changed since the study was created; "
                             "a running study's protocol must not change (create a new study)")
        self.protocol: Protocol = load_protocol(self.folder / PROTOCOL_FILE)

    @property
    def participants(self) -> list[str]:
        return list(self.state["participants"])

    def participant_folder(self, participant: str) -> Path:
        return self.folder / "participants" / validate_participant_id(participant, self.protocol.participant_id_pattern)

    def enrol(self, participant: str) -> int:
        """The participant's enrolment index (their Latin-square row), enrolling them if new."""
        self.participant_folder(participant)
        if participant not in self.state["participants"]:
            self.state["participants"].append(participant)
            write_json_atomic(self.folder / STUDY_FILE, self.state)
        return self.state["participants"].index(participant)

    def plan(self, participant: str) -> list[Step]:
        """Every step of the participant's session, in order."""
        if participant not in self.state["participants"]:
            raise StudyError(f"participant {participant!r} is not enrolled in {self.folder}")
        protocol = self.protocol
        order = condition_order([c.name for c in protocol.conditions], self.state["participants"].index(participant))
        steps: list[Step] = []
        if protocol.questionnaires_at("before_session"):
            steps.append(Step(0, SESSION_STEP, phase="before_session"))
        for condition in order:
            for repetition in range(1, protocol.practice_trials + 1):
                for task in protocol.tasks:
                    steps.append(Step(len(steps), condition, task.name, repetition, practice=True))
            for repetition in range(1, protocol.trials_per_condition + 1):
                for task in protocol.tasks:
                    steps.append(Step(len(steps), condition, task.name, repetition))
            if protocol.questionnaires_at("after_condition"):
                steps.append(Step(len(steps), condition))
        if protocol.questionnaires_at("after_session"):
            steps.append(Step(len(steps), SESSION_STEP, phase="after_session"))
        return steps

    def log(self, participant: str) -> tuple[list[dict[str, Any]], list[str]]:
        """(records, notes) of the participant's log; a torn last line is noted, not returned."""
        path = self.participant_folder(participant) / LOG_FILE
        if not path.is_file():
            return [], []
        lines = path.read_text().split("\n")
        records, notes = [], []
        for number, line in enumerate(lines, start=1):
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                if lines[number:number + 1] == [json.dumps({"type": "torn_line", "line": number})]:
                    notes.append(f"{path}:{number}: skipped a torn line (a crash while it was written), "
                                 "ended when the participant resumed")
                    continue
                if any(rest for rest in lines[number:]):
                    raise StudyError(f"{path}:{number}: unreadable record ({err}); intact records follow it, "
                                     "so this is damage, not a crash - inspect the file") from None
                notes.append(f"{path}:{number}: skipped a torn last line (a crash while it was written)")
        return records, notes

    def append(self, participant: str, record: dict[str, Any]) -> None:
        """Appends one record to the participant's log and fsyncs it."""
        folder = self.participant_folder(participant)
        path = folder / LOG_FILE
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(path, "rb+" if path.exists() else "wb") as handle:
                handle.seek(0, os.SEEK_END)
                if handle.tell() and _last_byte(handle) != b"\n":  # a crash tore the last line: end it, mark it
                    handle.seek(0)
                    torn_line = handle.read().count(b"\n") + 1
                    handle.write(b"\n" + json.dumps({"type": "torn_line", "line": torn_line}).encode() + b"\n")
                handle.write((json.dumps(record) + "\n").encode())
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            raise StudyError(f"cannot append to {path}: {err.strerror or err}; the records already there are "
                             "intact, this step will run again on resume") from None

    def pending(self, participant: str) -> list[Step]:
        """The steps whose records are not in the log yet, in plan order."""
        records, _ = self.log(participant)
        done = {record["step"] for record in records if record.get("type") in ("trial", "questionnaires")}
        return [step for step in self.plan(participant) if step.key not in done]

    def session_folder(self, participant: str, step: Step) -> Path:
        """A new attempt folder for the step's trial session (earlier attempts are kept)."""
        sessions = self.participant_folder(participant) / "sessions"
        stem = f"{step.number:02d}-{step.condition}-{step.task}-{'p' if step.practice else ''}{step.repetition}"
        attempt = 1
        while (sessions / f"{stem}-a{attempt}").exists():
            attempt += 1
        return sessions / f"{stem}-a{attempt}"


def _last_byte(handle) -> bytes:
    handle.seek(-1, os.SEEK_END)
    last = handle.read(1)
    handle.seek(0, os.SEEK_END)
    return last


def open_study(folder: str | Path) -> Study:
    """The study in ``folder``; :class:`StudyError` or :class:`ProtocolError` if it is not usable."""
    try:
        return Study(folder)
    except (OSError, json.JSONDecodeError) as err:
        raise StudyError(f"cannot read the study folder {str(folder)!r}: {err}") from None


__all__ = ["ProtocolError", "Step", "Study", "StudyError", "create_study", "open_study"]

"""In-silico studies: a shipped (or any) protocol run end to end with simulated participants.

``genxr study simulate PROTOCOL --participants 8 [--quick] --out DIR`` creates the study,
runs every participant (the simulated user as the tracking source, :class:`SimulatedAnswers`
as respondent), and writes the report - the same code path as a study with people, only
the tracking and the answers are simulated. ``PROTOCOL`` is a protocol file or the name of a
shipped one (:data:`SHIPPED`). ``--quick`` (:func:`quick_form`) is the CI-sized form: the
``quick`` config preset, a 64x64 display, one trial per condition, no practice and tasks of
at most :data:`QUICK_TASK_S` seconds; the study folder keeps the protocol as it ran.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from genxr.evaluation.study.protocol import Protocol, ProtocolError, load_protocol

SHIPPED_FOLDER = Path(__file__).parent / "protocols"
SHIPPED = tuple(sorted(path.stem for path in SHIPPED_FOLDER.glob("*.yaml")))
"""Names of the protocols that ship with genxr (``genxr/evaluation/study/protocols``)."""
QUICK_TASK_S = 2.0
"""Longest task of a protocol's quick form, seconds (the simulated behaviours finish within it)."""
QUICK_DISPLAY_PX = 64
"""Display width and height of a protocol's quick form, pixels."""


def protocol_path(name_or_path: str | Path) -> Path:
    """A protocol file, or the file of the shipped protocol of that name; ProtocolError if neither."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if str(name_or_path) in SHIPPED:
        return SHIPPED_FOLDER / f"{name_or_path}.yaml"
    raise ProtocolError(f"protocol {str(name_or_path)!r} is neither a file nor a shipped protocol "
                        f"({', '.join(SHIPPED)})")


def protocol_data(protocol: Protocol) -> dict[str, Any]:
    """``protocol`` as the YAML mapping that loads back to it (instruments by name, unset settings left out)."""
    data = protocol.model_dump(mode="json", exclude_none=True)
    data["questionnaires"] = [{"name": q.name, "instrument": q.instrument, "when": q.when} if q.instrument
                              else q.model_dump(mode="json", exclude={"instrument"}) for q in protocol.questionnaires]
    return data


def quick_form(protocol: Protocol) -> Protocol:
    """The CI-sized form of ``protocol`` (see the module docstring)."""
    data = protocol_data(protocol)
    data.update(base_preset="quick", trials_per_condition=1, practice_trials=0, name=f"{protocol.name} (quick)")
    for task in data["tasks"]:
        task["seconds"] = min(task["seconds"], QUICK_TASK_S)
    for condition in data["conditions"]:
        condition.setdefault("config", {}).setdefault("display", {}).update(width=QUICK_DISPLAY_PX,
                                                                            height=QUICK_DISPLAY_PX)
    return Protocol.model_validate(data)


def simulate(protocol: str | Path, out: Path, participants: int, quick: bool = False, seed: int = 0,
             display: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Creates the study in ``out``, runs ``participants`` simulated participants (P01, P02, ...)
    and analyses it; returns the analysis summary."""
    from genxr.evaluation.study.analysis import analyze
    from genxr.evaluation.study.answers import SimulatedAnswers
    from genxr.evaluation.study.runner import run_participant
    from genxr.evaluation.study.store import StudyError, create_study, open_study

    if not 1 <= participants <= 999:
        raise StudyError(f"participants must be 1..999, got {participants}")
    source = protocol_path(protocol)
    loaded = load_protocol(source)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StudyError(f"{out} already exists and is not an empty folder; a study folder is never overwritten")
    out.mkdir(parents=True, exist_ok=True)
    ran = out.parent / f".{out.name}.protocol.yaml"  # beside the study: create_study copies it in
    try:
        ran.write_text(yaml.safe_dump(protocol_data(quick_form(loaded) if quick else loaded), sort_keys=False))
        create_study(ran, out)
    finally:
        ran.unlink(missing_ok=True)
    study = open_study(out)
    width = max(2, len(str(participants)))
    for number in range(1, participants + 1):
        participant = f"P{number:0{width}d}"
        display(f"participant {number}/{participants}: {participant}")
        run = run_participant(study, participant, source="sim", answers=SimulatedAnswers(seed, participant),
                              display=display)
        if run.interrupted:
            raise StudyError(f"{participant}: a trial was interrupted; resume with "
                             f"`genxr study run {out} --participant {participant} --answers simulated`")
    return analyze(study)

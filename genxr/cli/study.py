"""``genxr study ...``: protocol -> sessions -> questionnaires -> statistics, losing no data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from genxr.cli.output import JsonFlag, console, fail, print_json, print_message

study_app = typer.Typer(help="User studies: protocol -> sessions -> questionnaires -> statistics, losing no data.",
                        no_args_is_help=True)


def _recordings(path: Path) -> list[Path]:
    """The recording folders at or under ``path`` (a recording, a session, a participant or a study)."""
    from genxr.xr_runtime.recording.format import CHUNKS_FILE

    if (path / CHUNKS_FILE).is_file():
        return [path]
    return sorted(p.parent for p in path.rglob(CHUNKS_FILE))


@study_app.command("new")
def study_new(
    protocol: Annotated[Path, typer.Argument(help="protocol YAML file")],
    out: Annotated[Path, typer.Option(help="study folder to create (must not exist or be empty)")],
) -> None:
    """Validate a protocol and create a study folder for it."""
    from genxr.evaluation.study.protocol import ProtocolError
    from genxr.evaluation.study.store import StudyError, create_study

    try:
        folder = create_study(protocol, out)
    except (ProtocolError, StudyError) as err:
        fail(str(err))
    print_message(f"created study {folder}; run participants with: genxr study run {folder} --participant P01")


@study_app.command("run")
def study_run(
    study: Annotated[Path, typer.Argument(help="study folder (from genxr study new)")],
    participant: Annotated[str, typer.Option(help="pseudonymous participant id, e.g. P07")],
    source: Annotated[str, typer.Option(help="tracking source: sim or openxr")] = "sim",
    answers: Annotated[str, typer.Option(help="terminal (participant answers) or simulated (seeded respondent)")]
    = "terminal",
    seed: Annotated[int, typer.Option(help="seed of the simulated respondent")] = 0,
) -> None:
    """Run (or resume) one participant: every unfinished trial, then each condition's questionnaires."""
    from genxr.evaluation.study.answers import AnswerError, SimulatedAnswers, TerminalAnswers
    from genxr.evaluation.study.participants import ParticipantIdError
    from genxr.evaluation.study.protocol import ProtocolError
    from genxr.evaluation.study.runner import run_participant
    from genxr.evaluation.study.store import StudyError, open_study
    from genxr.xr_runtime.session import SessionError

    if answers not in ("terminal", "simulated"):
        fail(f"--answers must be 'terminal' or 'simulated', got {answers!r}")
    try:
        opened = open_study(study)
        source_of_answers = (SimulatedAnswers(seed, participant) if answers == "simulated"
                             else TerminalAnswers(Console()))
        run = run_participant(opened, participant, source=source, answers=source_of_answers, display=console.print)
    except (StudyError, ProtocolError, ParticipantIdError, AnswerError, SessionError, ValueError) as err:
        fail(str(err))
    except KeyboardInterrupt:
        fail(f"{participant}: stopped; every finished step is saved - run the same command to resume", 130)
    for note in run.notes:
        print_message(note, style="yellow")
    if run.interrupted:
        fail(f"{participant}: a trial was interrupted; run the same command to resume at it", 130)
    print_message(f"{participant}: {len(run.completed_steps)} steps done now, {run.skipped_steps} were done before")


@study_app.command("simulate")
def study_simulate(
    protocol: Annotated[str, typer.Argument(help="protocol file, or a shipped protocol's name: generated_reality, "
                                                 "avatar_eye_contact, folding, synthetic")],
    out: Annotated[Path, typer.Option(help="study folder to create (must not exist or be empty)")],
    participants: Annotated[int, typer.Option(min=1, max=999, help="simulated participants (P01, P02, ...)")] = 8,
    quick: Annotated[bool, typer.Option("--quick", help="CI-sized form: quick preset, 64x64, one trial per "
                                                        "condition, tasks of at most 2 s")] = False,
    seed: Annotated[int, typer.Option(help="seed of the simulated respondents")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Run a protocol end to end in silico: simulated participants (tracking and answers), real sessions, the report."""
    from genxr.evaluation.study.participants import ParticipantIdError
    from genxr.evaluation.study.protocol import ProtocolError
    from genxr.evaluation.study.simulate import simulate
    from genxr.evaluation.study.store import StudyError
    from genxr.xr_runtime.session import SessionError

    try:
        summary = simulate(protocol, out, participants, quick=quick, seed=seed,
                           display=print_message)
    except (StudyError, ProtocolError, ParticipantIdError, SessionError, ValueError) as err:
        fail(str(err))
    except KeyboardInterrupt:
        fail(f"stopped; every finished step is saved in {out} - resume a participant with `genxr study run`", 130)
    means = {measure: {condition: entry["mean"] for condition, entry in details["by_condition"].items()}
             for measure, details in summary["measures"].items()}
    print_json({"study": str(out), "report": summary["report"], "participants": summary["participants"],
                "conditions": summary["conditions"], "means": means}, as_json)


@study_app.command("verify")
def study_verify(
    path: Annotated[Path, typer.Argument(help="a recording, session, participant or study folder")],
) -> None:
    """Check every chunk of every recording under PATH; exit 1 if any is damaged."""
    from genxr.xr_runtime.recording.format import RecordingError
    from genxr.xr_runtime.recording.reader import verify_recording

    folders = _recordings(path)
    if not folders:
        fail(f"no recordings under {path}")
    bad = 0
    for folder in folders:
        try:
            report = verify_recording(folder).as_dict()
        except RecordingError as err:
            report = {"folder": str(folder), "ok": False, "problem": str(err)}
        bad += not report["ok"]
        typer.echo(json.dumps(report))
    raise typer.Exit(1 if bad else 0)


@study_app.command("recover")
def study_recover(
    path: Annotated[Path, typer.Argument(help="a recording, session, participant or study folder")],
) -> None:
    """Repair torn recordings under PATH: save each torn tail beside it and truncate to the last intact chunk."""
    from genxr.xr_runtime.recording.format import RecordingError
    from genxr.xr_runtime.recording.reader import recover_recording

    folders = _recordings(path)
    if not folders:
        fail(f"no recordings under {path}")
    failed = 0
    for folder in folders:
        try:
            typer.echo(json.dumps(recover_recording(folder).as_dict()))
        except RecordingError as err:
            failed += 1
            typer.echo(json.dumps({"folder": str(folder), "ok": False, "problem": str(err)}))
    raise typer.Exit(1 if failed else 0)


@study_app.command("export")
def study_export(
    recording: Annotated[Path, typer.Argument(help="recording folder (a session's recording/)")],
    out: Annotated[Path, typer.Option(help="folder for tracking.<fmt> and events.<fmt>")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet")] = "csv",
) -> None:
    """Export a recording's tracking frames and events as CSV or Parquet tables."""
    from genxr.evaluation.export import export_recording
    from genxr.xr_runtime.recording.format import RecordingError

    try:
        typer.echo(json.dumps(export_recording(recording, out, fmt)))
    except (RecordingError, ValueError, OSError) as err:
        fail(str(err))


@study_app.command("analyze")
def study_analyze(
    study: Annotated[Path, typer.Argument(help="study folder")],
    out: Annotated[Path | None, typer.Option(help="report folder (default STUDY/report)")] = None,
) -> None:
    """Per-condition success, questionnaire scores and latency; paired tests; plots; report.md."""
    from genxr.evaluation.study.analysis import analyze
    from genxr.evaluation.study.protocol import ProtocolError
    from genxr.evaluation.study.store import StudyError, open_study

    try:
        summary = analyze(open_study(study), out)
    except (StudyError, ProtocolError) as err:
        fail(str(err))
    print_message(f"report: {summary['report']}")

"""A synthetic study - 3 simulated participants, 2 conditions, the simulated user as source,
real genxr sessions - runs end to end from the command line and produces the report;
interrupted participants resume at their first unfinished step; nothing recorded is lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.evaluation.study.answers import SimulatedAnswers
from genxr.evaluation.study.runner import run_participant
from genxr.evaluation.study.store import LOG_FILE, StudyError, open_study
from genxr.xr_runtime.recording.reader import read_recording
from tests.helpers.worlds import DEFAULT_STUDENT

PROTOCOL = Path(__file__).parents[3] / "genxr" / "evaluation" / "study" / "protocols" / "synthetic.yaml"
runner = CliRunner()


def genxr(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic") / "study"
    assert genxr("study", "new", PROTOCOL, "--out", folder).exit_code == 0
    for participant in ("P01", "P02", "P03"):
        result = genxr("study", "run", folder, "--participant", participant, "--answers", "simulated", "--seed", 4)
        assert result.exit_code == 0, result.output
    return folder


def test_every_participant_ran_every_trial_in_their_latin_square_order(study):
    opened = open_study(study)
    assert opened.participants == ["P01", "P02", "P03"]
    first_conditions = []
    for participant in opened.participants:
        records, notes = opened.log(participant)
        assert not notes
        trials = [r for r in records if r["type"] == "trial"]
        assert len(trials) == 4 and all(r["judged_by"] == "shown_frames" for r in trials)
        assert all(isinstance(r["success_simulated"], bool) and r["shown_frames_judged"] > 0 for r in trials)
        assert all(r["world"] == "student" and r["world_model"] == DEFAULT_STUDENT for r in trials), \
            "a condition without settings.world_model runs the hand-conditioned student, and its log says so"
        assert [r["type"] for r in records].count("questionnaires") == 2
        first_conditions.append(trials[0]["condition"])
        for trial in trials:
            recording = read_recording(study / trial["session"] / "recording")
            assert recording.complete and len(recording.frames) == trial["metrics"]["frames"]
            assert json.loads((study / trial["session"] / "metrics.json").read_text())["frames"] > 0
        answers = [r for r in records if r["type"] == "questionnaires"][0]["answers"]
        assert 1 <= answers["control"]["perceived_control"] <= 7 and answers["comments"]["free_text"] == ""
    assert first_conditions == ["fast_world", "slow_world", "fast_world"], "Williams rows 0, 1, 0"


def test_analyze_writes_the_report_with_paired_tests_and_plots(study):
    result = genxr("study", "analyze", study)
    assert result.exit_code == 0, result.output
    report = (study / "report" / "report.md").read_text()
    summary = json.loads((study / "report" / "summary.json").read_text())
    for measure in ("success_rate", "success_simulated_rate", "content_age_ms_p50", "q:control", "q:agency", "q:presence", "content_latency_ms_p50",
                    "frame_time_ms_p99", "deadline_miss_rate"):
        assert f"| {measure} |" in report
        assert summary["measures"][measure]["test"]["n"] == 3
        assert summary["measures"][measure]["test"]["test"] == "wilcoxon"
        assert (study / "report" / summary["measures"][measure]["figure"]).stat().st_size > 1000
    assert "q:comments" not in summary["measures"], "free text is not scored"
    control = summary["measures"]["q:control"]["values"]
    assert set(control) == {"P01", "P02", "P03"} and all(set(v) == {"fast_world", "slow_world"} for v in control.values())


def test_verify_and_export_cover_the_study_recordings(study, tmp_path):
    result = genxr("study", "verify", study)
    assert result.exit_code == 0
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(reports) == 12 and all(r["ok"] and r["closed_cleanly"] for r in reports)
    recording = Path(reports[0]["folder"])
    for fmt in ("csv", "parquet"):
        result = genxr("study", "export", recording, "--out", tmp_path / fmt, "--format", fmt)
        assert result.exit_code == 0, result.output
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "parquet" / "tracking.parquet")
    frames = read_recording(recording).frames
    assert table.num_rows == len(frames) and table.column("frame_id").to_pylist() == [f.frame_id for f in frames]
    assert table.column("right_index_tip_x").to_pylist()[0] == pytest.approx(
        float(frames[0].right_hand.positions[10, 0]))
    csv_lines = (tmp_path / "csv" / "events.csv").read_text().splitlines()
    assert csv_lines[0] == "time_ns,session_id,kind,detail" and ",started," in csv_lines[1]


def test_an_interrupted_participant_resumes_at_the_first_unfinished_step(study, tmp_path):
    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    opened = open_study(copy)
    answers = SimulatedAnswers(0, "P04")
    first = run_participant(opened, "P04", answers=answers, max_steps=2)
    assert first.completed_steps == ["slow_world/press/1", "slow_world/carry/1"]
    with open(copy / "participants" / "P04" / LOG_FILE, "a") as handle:
        handle.write('{"type": "trial", "step": "slow_wor')  # killed while appending the next record
    assert "torn last line" in opened.log("P04")[1][0]
    second = run_participant(opened, "P04", answers=answers, max_steps=1)
    assert second.skipped_steps == 2 and second.completed_steps == ["slow_world/questionnaires"]
    records, notes = opened.log("P04")
    assert [r["step"] for r in records if r["type"] != "torn_line"] == [
        "slow_world/press/1", "slow_world/carry/1", "slow_world/questionnaires"]
    assert "ended when the participant resumed" in notes[0]
    log = copy / "participants" / "P04" / LOG_FILE
    log.write_text(log.read_text().replace('{"type": "torn_line", "line": 3}', "{damaged"))
    with pytest.raises(StudyError, match=r"log.jsonl:3: unreadable record .* damage, not a crash"):
        opened.log("P04")
    assert len(list((copy / "participants" / "P04" / "sessions").iterdir())) == 2


def test_bad_participant_ids_and_unknown_studies_are_refused(study, tmp_path):
    for bad in ("../../etc", "Alice", "P1"):
        result = genxr("study", "run", study, "--participant", bad, "--answers", "simulated")
        assert result.exit_code == 2
    assert not (study / "etc").exists() and open_study(study).participants == ["P01", "P02", "P03"]
    result = genxr("study", "run", tmp_path, "--participant", "P01")
    assert result.exit_code == 2 and "not a genxr study folder" in " ".join(result.stderr.split())
    with pytest.raises(StudyError, match="changed since the study was created"):
        copy = tmp_path / "changed"
        shutil.copytree(study, copy, ignore=shutil.ignore_patterns("sessions"))
        (copy / "protocol.yaml").write_text((copy / "protocol.yaml").read_text().replace("seconds: 1.5", "seconds: 9"))
        open_study(copy)


def test_verify_finds_a_torn_trial_recording_and_recover_repairs_it(study, tmp_path):
    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    trial = next(r for r in open_study(copy).log("P02")[0] if r["type"] == "trial")
    chunks = copy / trial["session"] / "recording" / "records.chunks"
    before = read_recording(chunks.parent)
    intact = before.frames
    chunks.write_bytes(chunks.read_bytes()[:-7])  # the machine died while the last chunk was written
    result = genxr("study", "verify", copy / "participants" / "P02")
    assert result.exit_code == 1
    torn = [json.loads(line) for line in result.stdout.splitlines() if not json.loads(line)["ok"]]
    assert len(torn) == 1 and "torn last chunk" in torn[0]["problem"]
    assert genxr("study", "recover", copy).exit_code == 0
    assert genxr("study", "verify", copy).exit_code == 0
    after = read_recording(chunks.parent)
    kept = after.frames
    assert [f.frame_id for f in kept] == [f.frame_id for f in intact[:len(kept)]] and len(kept) > 0
    # The torn chunk was the last one: it may have held frames or only the closing events.
    assert len(kept) + len(after.events) < len(intact) + len(before.events)
    assert len(list(chunks.parent.glob("records.chunks.torn-at-*"))) == 1

"""Every condition setting changes what the session runs (read back from each trial's manifest
and metrics), success is judged on the frames shown next to the simulator's judgement, and
standard instruments are answered before, between and after the conditions and scored.

One simulated participant through one study of five conditions (1.5 s trials, 64x64)."""

from __future__ import annotations

import json

import pytest

from genxr.evaluation.study.analysis import analyze
from genxr.evaluation.study.answers import SimulatedAnswers
from genxr.evaluation.study.runner import run_participant
from genxr.evaluation.study.seen import SeenJudge
from genxr.evaluation.study.store import create_study, open_study

SMALL = "config: {display: {width: 64, height: 64}}"
PROTOCOL = f"""
name: every setting
base_preset: quick
trials_per_condition: 1
conditions:
  - {{name: ground_truth, settings: {{world_model: ground_truth, avatar: false}}, {SMALL}}}
  - {{name: late, settings: {{world_model: ground_truth, avatar: false, added_latency_ms: 100.0}}, {SMALL}}}
  - {{name: frozen, settings: {{world_model: frozen, avatar: false, world_rate_hz: 10.0}}, {SMALL}}}
  - {{name: head_only_folded, settings: {{world_model: head_only, fold: 0.3, avatar: false}}, {SMALL}}}
  - {{name: avatar_ablation, settings: {{world_model: ground_truth, avatar_eye_contact: 2.0, avatar_spatial: false}},
     {SMALL}}}
tasks:
  - {{name: press, kind: press_button, seconds: 1.5}}
questionnaires:
  - agency
  - {{instrument: ssq, when: around_session}}
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("conditions")
    (root / "protocol.yaml").write_text(PROTOCOL)
    folder = create_study(root / "protocol.yaml", root / "study")
    opened = open_study(folder)
    run = run_participant(opened, "P1", source="sim", answers=SimulatedAnswers(0, "P1"))
    assert not run.interrupted
    return opened


def _trials(study) -> dict[str, dict]:
    records, _ = study.log("P1")
    return {r["condition"]: r for r in records if r["type"] == "trial" and not r["practice"]}


def _session(study, trial) -> tuple[dict, dict]:
    folder = study.folder / trial["session"]
    manifest = json.loads((folder / "recording" / "manifest.json").read_text())
    return manifest, json.loads((folder / "metrics.json").read_text())


def test_the_world_model_setting_is_the_world_the_session_ran(study):
    worlds = {name: _session(study, trial)[1]["world_model"] for name, trial in _trials(study).items()}
    assert worlds["ground_truth"] == worlds["late"] == worlds["avatar_ablation"] == "ground_truth"
    assert worlds["frozen"] == "frozen"
    assert worlds["head_only_folded"].startswith("worldmodel-student-head-only-fold0.3@"), worlds


def test_rate_latency_and_avatar_settings_reach_the_session(study):
    trials = _trials(study)
    late_manifest, late = _session(study, trials["late"])
    _, plain = _session(study, trials["ground_truth"])
    assert late_manifest["config"]["display"]["added_latency_ms"] == 100.0
    assert late["rotational_m2p_ms_p50"] - plain["rotational_m2p_ms_p50"] == pytest.approx(100.0, abs=15.0)
    frozen_manifest, frozen = _session(study, trials["frozen"])
    assert frozen_manifest["config"]["session"]["world_rate_hz"] == 10.0
    assert frozen["content_age_ms_p50"] > plain["content_age_ms_p50"] + 300, "a frozen world's content only ages"
    avatar_manifest, avatar = _session(study, trials["avatar_ablation"])
    assert "avatar-stream-no-user" in avatar["avatar"] and "gaze guidance 2" in avatar["avatar"], avatar["avatar"]
    assert avatar_manifest["config"]["session"]["avatar_guidance_scale"] == 2.0
    assert avatar["avatar_hz"] > 0 and 0.0 <= avatar["avatar_eye_contact_ratio"] <= 1.0
    assert trials["avatar_ablation"]["metrics"]["avatar_gaze_deg_p50"] == avatar["avatar_gaze_deg_p50"]
    assert plain["avatar"].startswith("off") and plain["avatar_eye_contact_ratio"] is None, plain["avatar"]


def test_success_is_judged_on_the_frames_shown_beside_the_simulator(study):
    trials = _trials(study)
    for name in ("ground_truth", "late"):
        trial = trials[name]
        assert trial["judged_by"] == "shown_frames" and trial["shown_frames_judged"] > 1
        assert trial["success"] == trial["success_simulated"], "on the simulator's own world both judges agree"
    assert trials["ground_truth"]["success_simulated"], "the simulated user presses the button within 1.5 s"
    frozen = trials["frozen"]
    assert frozen["success_simulated"] and not frozen["success"], "the room changed; the frozen world never showed it"


def test_instruments_are_answered_around_and_between_the_conditions_and_scored(study):
    records, _ = study.log("P1")
    phases = [r["phase"] for r in records if r["type"] == "questionnaires"]
    assert phases[0] == "before_session" and phases[-1] == "after_session" and phases.count("after_condition") == 5
    assert set(records[0]["answers"]) == {"ssq"} and len(records[0]["answers"]["ssq"]) == 16
    summary = analyze(study)
    assert set(summary["measures"]["agency:agency"]["by_condition"]) == {t for t in _trials(study)}
    ssq = summary["session_measures"]["ssq:total"]
    assert ssq["by_phase"]["before_session"]["n"] == ssq["by_phase"]["after_session"]["n"] == 1
    assert ssq["change"]["mean"] == pytest.approx(ssq["by_phase"]["after_session"]["mean"]
                                                  - ssq["by_phase"]["before_session"]["mean"])
    report = (study.folder / "report" / "report.md").read_text()
    assert "## Before and after the session" in report


def test_a_task_the_shown_frames_cannot_judge_is_refused():
    with pytest.raises(ValueError, match="talk_to_avatar"):
        SeenJudge("talk_to_avatar", 0)



class _Experimenter:
    """An experimenter who says every trial succeeded (answers every item with 1)."""

    def answer(self, item, context):
        return "" if item.kind == "text" else 1

    def task_succeeded(self, trial: str) -> bool:
        return True


def test_practice_comes_first_and_an_experimenters_verdict_with_the_shown_frames_logged(tmp_path):
    head = PROTOCOL.split("conditions:")[0].replace("trials_per_condition: 1",
                                                    "trials_per_condition: 1\npractice_trials: 1")
    protocol = head + f"""conditions:
  - {{name: ground_truth, settings: {{world_model: ground_truth, avatar: false}}, {SMALL}}}
  - {{name: frozen, settings: {{world_model: frozen, avatar: false}}, {SMALL}}}
tasks:
  - {{name: press, kind: press_button, seconds: 1.5, success: experimenter}}
"""
    (tmp_path / "protocol.yaml").write_text(protocol)
    opened = open_study(create_study(tmp_path / "protocol.yaml", tmp_path / "study"))
    run_participant(opened, "P1", source="sim", answers=_Experimenter())
    records, _ = opened.log("P1")
    practice = [r for r in records if r["type"] == "trial" and r["practice"]]
    assert len(practice) == 2 and all(r["step"].endswith("/press/practice1") for r in practice)
    assert [r["practice"] for r in records if r["type"] == "trial"] == [True, False, True, False], "practice first"
    trials = {r["condition"]: r for r in records if r["type"] == "trial" and not r["practice"]}
    assert all(t["judged_by"] == "experimenter" and t["success"] is True for t in trials.values())
    summary = analyze(opened)
    assert summary["measures"]["success_rate"]["by_condition"]["frozen"]["n"] == 1, "practice left out"
    assert trials["ground_truth"]["success_shown"] is True and trials["frozen"]["success_shown"] is False

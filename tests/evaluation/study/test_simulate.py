"""`genxr study simulate`: a shipped protocol's CI-sized form runs end to end with simulated
participants - study folder, sessions, questionnaires, report with a plot per measure."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.evaluation.study.protocol import load_protocol
from genxr.evaluation.study.simulate import QUICK_TASK_S, SHIPPED, protocol_path, quick_form
from genxr.evaluation.study.store import open_study

runner = CliRunner()


def test_the_generated_reality_study_runs_in_silico_end_to_end(tmp_path):
    result = runner.invoke(app, ["study", "simulate", "generated_reality", "--quick", "--participants", "1",
                                 "--out", str(tmp_path / "study"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["participants"] == ["P01"]
    assert summary["conditions"] == ["hand_conditioned", "head_only", "ground_truth"]
    means = summary["means"]
    for measure in ("success_rate", "success_simulated_rate", "agency:perceived_control", "ipq:spatial_presence",
                    "nasa_tlx:raw_tlx", "content_age_ms_p50"):
        assert set(means[measure]) == set(summary["conditions"]), measure
    study = open_study(tmp_path / "study")
    assert study.protocol.base_preset == "quick" and all(t.seconds <= QUICK_TASK_S for t in study.protocol.tasks)
    report = tmp_path / "study" / "report"
    assert (report / "report.md").is_file() and (report / "success_rate.png").is_file()
    assert json.loads((report / "summary.json").read_text())["session_measures"]["ssq:total"]["change"]["n"] == 1


def test_simulate_refuses_an_unknown_protocol_and_a_used_folder(tmp_path):
    result = runner.invoke(app, ["study", "simulate", "generated_realty", "--out", str(tmp_path / "a")])
    assert result.exit_code == 2 and "neither a file nor a shipped protocol" in " ".join(result.output.split())
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("")
    result = runner.invoke(app, ["study", "simulate", "folding", "--out", str(tmp_path / "used")])
    assert result.exit_code == 2 and "is never overwritten" in " ".join(result.output.split())


def test_every_shipped_protocol_has_a_quick_form_that_loads_back():
    assert {"generated_reality", "avatar_eye_contact", "folding", "synthetic"} <= set(SHIPPED)
    for name in SHIPPED:
        full = load_protocol(protocol_path(name))
        quick = quick_form(full)
        assert [c.name for c in quick.conditions] == [c.name for c in full.conditions]
        assert [c.settings for c in quick.conditions] == [c.settings for c in full.conditions]
        assert quick.trials_per_condition == 1 and quick.practice_trials == 0
        assert all(quick.config_for(c).display.width == 64 for c in quick.conditions)

"""The genxr command line, driven in-process through typer's runner and once as the real
console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torch
import typer
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.platform.messages import MESSAGE_TYPES
from tests.helpers.cli import said
from tests.helpers.messages import all_messages
from tests.helpers.worlds import DEFAULT_STUDENT

runner = CliRunner()


def test_the_commands_are_registered():
    commands = typer.main.get_command(app).commands
    assert {"doctor", "schema", "demo", "bench", "train", "eval", "export", "serve"} <= set(commands)


def test_console_script_runs_a_command_with_only_its_result_on_stdout():
    exe = shutil.which("genxr", path=str(Path(sys.executable).parent))
    assert exe, "the genxr console script is installed next to this Python"
    done = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([exe, "schema"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) == set(MESSAGE_TYPES)


def test_schema_writes_one_valid_schema_per_message_that_real_messages_satisfy(tmp_path):
    result = runner.invoke(app, ["schema", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in tmp_path.glob("*.schema.json"))
    assert files == sorted(f"{name}.schema.json" for name in MESSAGE_TYPES)
    for message in all_messages():
        schema = json.loads((tmp_path / f"{type(message).__name__}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.validate(json.loads(message.model_dump_json()), schema)


def test_schema_to_an_unwritable_place_fails_with_a_message(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = runner.invoke(app, ["schema", "--out", str(blocker / "schemas")])
    assert result.exit_code == 1
    assert f"cannot write schemas to {blocker / 'schemas'}" in said(result.stderr)


CHECKS = {"python", "torch", "onnxruntime", "nvidia_gpu", "tensorrt", "openxr", "ray"}


def test_doctor_json_reports_every_check_and_explains_missing_openxr(monkeypatch):
    monkeypatch.setenv("XR_RUNTIME_JSON", "/nonexistent/runtime.json")  # no runtime, wherever this runs
    monkeypatch.setenv("XR_LOADER_DEBUG", "none")
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert set(checks) == CHECKS
    assert torch.__version__ in checks["torch"]["detail"], "the torch actually imported"
    assert "CPUExecutionProvider" in checks["onnxruntime"]["detail"]
    assert checks["ray"]["ok"]
    openxr = checks["openxr"]
    assert not openxr["ok"]
    assert "XR_RUNTIME_JSON" in openxr["hint"] and "simulated" in openxr["hint"]
    assert checks["nvidia_gpu"]["ok"] or not checks["tensorrt"]["ok"], "TensorRT is usable only with a GPU"


def test_doctor_table_has_a_row_per_check():
    result = runner.invoke(app, ["doctor"], env={"COLUMNS": "200"})  # a width where every check's name fits
    assert result.exit_code == 0, result.output
    first_cells = {line.strip("│┃ ").split(" ")[0] for line in result.stdout.splitlines() if line.startswith("│")}
    assert CHECKS <= first_cells


def test_bench_bus_prints_one_json_object_with_the_required_keys():
    result = runner.invoke(app, ["bench", "bus", "--json", "--n", "50"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["n"] == 50
    for key in ("inproc_publish_us_p50", "inproc_request_us_p50", "serialize_roundtrip_us_p50"):
        assert report[key] > 0


def test_demo_runs_a_session_and_summarises_it_on_stderr(tmp_path):
    result = runner.invoke(app, ["demo", "--preset", "quick", "--seconds", "1", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "demo").iterdir()} == {"recording", "trace.json", "metrics.json",
                                                               "session.mp4", "spans.jsonl"}
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert metrics["world_model"] == DEFAULT_STUDENT and metrics["frames"] > 0
    assert f"world service: {DEFAULT_STUDENT}" in said(result.stderr), "the summary names the world service used"
    assert "session summary" in said(result.stderr) and result.stdout == "", "messages on stderr, none on stdout"


def test_demo_with_openxr_and_no_runtime_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("XR_RUNTIME_JSON", "/nonexistent/runtime.json")
    monkeypatch.setenv("XR_LOADER_DEBUG", "none")
    result = runner.invoke(app, ["demo", "--source", "openxr", "--seconds", "1", "--out", str(tmp_path / "xr")])
    assert result.exit_code == 2
    message = said(result.stderr)
    assert "No OpenXR runtime is available" in message and "genxr demo --source sim" in message


def test_demo_with_invalid_config_exits_2_naming_the_field(monkeypatch):
    monkeypatch.setenv("GENXR_SESSION__DISPLAY_RATE_HZ", "0")
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 2
    assert "session.display_rate_hz = '0'" in said(result.stderr)


@pytest.mark.parametrize("argv", [["demo", "--preset", "nope"], ["bench", "bus", "--n", "0"],
                                  ["demo", "--source", "kinect"], ["demo", "--source", "replay"]])
def test_bad_arguments_are_refused(argv):
    assert runner.invoke(app, argv).exit_code != 0


def test_bench_frameloop_reports_the_session_against_a_frozen_world_baseline():
    result = runner.invoke(app, ["bench", "frameloop", "--json", "--seconds", "1", "--resolution", "64"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("frame_time_ms_p99", "deadline_miss_rate", "compositor_ms_p50", "rotational_m2p_ms_p99",
                "content_latency_ms_p50", "world_model_hz", "avatar_hz", "frame_time_ms_p99_over_baseline"):
        assert key in report
    assert report["world_model"] == DEFAULT_STUDENT and report["frames"] > 0
    assert 0.0 <= report["deadline_miss_rate"] <= 1.0


@pytest.mark.ray
def test_bench_serve_reports_serve_against_a_bare_handle(serve_handles):
    result = runner.invoke(app, ["bench", "serve", "--json", "--n", "20"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("serve_rtt_ms_p50", "serve_rtt_ms_p99", "bare_handle_rtt_ms_p50", "serve_overhead_ratio",
                "inproc_rtt_ms_p50", "throughput_rps_1_sessions", "throughput_rps_4_sessions"):
        assert report[key] > 0
    assert report["ort_speedup_vs_torch"] > 0 and report["student_step_onnxruntime_ms"] > 0

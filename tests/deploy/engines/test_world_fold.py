"""The folded student on an engine: its export cached under a key holding the ratio, its warm-up
chunks on the same folded torch module (one model per stream), its frames naming it, and bad
ratios refused naming the field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genxr.components.sim.user import ScriptedUser
from genxr.deploy.engines.base import make_engine
from genxr.deploy.engines.world import (
    PARITY_MAX_PIXEL_ERROR,
    EngineChunkStep,
    EngineStudentWorld,
    check_fold,
    folded_student,
    model_name,
    student_engine,
    student_onnx,
    student_onnx_key,
    weights_fingerprint,
)
from genxr.platform.messages import WorldFrameRequest

SEED = 3
RATIO = 0.3


def _requests(session_id: str, count: int):
    """Requests 2 model frames (66.7 ms) apart, each with the tracking frames since the last one."""
    steps = [s.frame for s in ScriptedUser("look_around", seed=SEED).steps(count * 6)]
    return [WorldFrameRequest(session_id=session_id, request_id=i, tracking=steps[i * 6:(i + 1) * 6])
            for i in range(count)]


@pytest.fixture(scope="module")
def folded_engine():
    """The folded step's ORT engine from the default cache folder (shared with Serve replicas here)."""
    return student_engine("onnxruntime", fold=RATIO)


def test_the_folded_engine_world_streams_frames_names_its_model_and_matches_folded_torch(folded_engine):
    served = EngineStudentWorld(folded_engine, seed=SEED, fold=RATIO)
    folded_torch = EngineStudentWorld("torch", seed=SEED, fold=RATIO)
    unfolded = EngineStudentWorld("torch", seed=SEED)
    differences = []
    for request in _requests("fold-world", 8):
        frame, expected, shipped = served(request), folded_torch(request), unfolded(request)
        assert frame.image.shape == (64, 64, 3) and frame.image.dtype == np.uint8
        assert frame.model == "worldmodel-student-fold0.3@onnxruntime[CPUExecutionProvider]"
        assert expected.model == "worldmodel-student-fold0.3@torch" and shipped.model == "worldmodel-student@torch"
        assert np.abs(frame.image.astype(int) - expected.image.astype(int)).max() <= PARITY_MAX_PIXEL_ERROR
        differences.append(np.abs(frame.image.astype(int) - shipped.image.astype(int)).max())
    assert max(differences) > 10 * PARITY_MAX_PIXEL_ERROR, "the folded student is another model than the shipped one"
    described = served.describe()
    assert described["model"] == frame.model and described["fold"] == RATIO
    assert described["engine_steps"] > 0 and described["torch_steps"] > 0


def test_warm_up_chunks_run_on_the_folded_torch_module(folded_engine):
    world = EngineStudentWorld(folded_engine, seed=SEED, fold=RATIO)
    step = world.stream.student
    assert isinstance(step, EngineChunkStep)
    module, report = folded_student(RATIO)
    assert step.student is module, "the chunks the engine does not run run on the folded module"
    assert module.blocks[0].ff.net[0].proj.out_features == 358 and report["ratio"] == RATIO
    assert EngineStudentWorld("torch", seed=SEED, fold=RATIO).stream.student is module


def test_the_cache_key_holds_the_ratio():
    keys = {ratio: student_onnx_key(ratio) for ratio in (None, 0.3, 0.5)}
    assert len(set(keys.values())) == 3, keys
    assert keys[0.3].startswith("student-step-fold0.3-") and keys[0.5].startswith("student-step-fold0.5-")
    assert keys[None].startswith("student-step-") and "fold" not in keys[None]
    assert student_onnx_key(0) == keys[None] == student_onnx_key(0.0), "0 is the student as shipped"
    assert model_name(0) == model_name(None) == "worldmodel-student" and model_name(0.5) == "worldmodel-student-fold0.5"


def test_a_folded_export_is_reused_and_one_of_other_weights_re_exported(tmp_path):
    path = student_onnx(tmp_path, fold=RATIO)
    assert path.name == f"{student_onnx_key(RATIO)}.onnx"
    report = json.loads(path.with_suffix(".json").read_text())
    assert report["compression"]["method"] == "fold" and report["compression"]["ratio"] == RATIO
    assert report["weights_fingerprint"] == weights_fingerprint(folded_student(RATIO)[0])
    assert max(report["parity_max_abs_error_per_chunk"]) <= 1e-4
    mtime = path.stat().st_mtime_ns
    assert student_onnx(tmp_path, fold=RATIO) == path and path.stat().st_mtime_ns == mtime, "reused"
    report["weights_fingerprint"] = "0" * 16
    path.with_suffix(".json").write_text(json.dumps(report))
    with pytest.warns(RuntimeWarning, match="folded to weights 0000000000000000"):
        student_onnx(tmp_path, fold=RATIO)
    assert json.loads(path.with_suffix(".json").read_text())["weights_fingerprint"] != "0" * 16
    engine = make_engine("onnxruntime", onnx_path=path)
    assert engine.input_names[0] == "latents"


@pytest.mark.parametrize("ratio", [1.0, 1.5, -0.1, float("nan"), "half", True])
def test_a_ratio_outside_0_1_is_refused_naming_the_field(ratio):
    with pytest.raises(ValueError, match=r"world_fold must be a fraction of channels in \[0, 1\)"):
        check_fold(ratio, "world_fold")
    with pytest.raises(ValueError, match=r"^fold must be a fraction"):
        EngineStudentWorld("torch", fold=ratio)


def test_a_ratio_that_empties_a_group_is_refused_naming_the_group():
    with pytest.raises(ValueError, match="condition.skeleton"):
        EngineStudentWorld("torch", fold=0.9)

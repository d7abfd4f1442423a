"""The world-model student with its steady-state step on an engine: its export cached under
the checkpoint hash, parity with the torch stream over several chunks, and the engine that
really ran named in the frames."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.sim.user import ScriptedUser
from genxr.components.sim.world_service import GroundTruthWorld
from genxr.components.worldmodel.checkpoint import CHECKPOINT_ROOT, load_model
from genxr.components.worldmodel.service import StudentWorld
from genxr.components.worldmodel.stream import WorldModelStream
from genxr.deploy.engines.base import check_engine_name, describe_engine, make_engine, tensorrt_status
from genxr.deploy.engines.world import PARITY_MAX_PIXEL_ERROR, EngineChunkStep, EngineStudentWorld, student_onnx
from genxr.deploy.export.cache import cache_folder
from genxr.platform.messages import WorldFrameRequest

SEED = 3


def test_an_unknown_engine_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"engine must be one of \['torch', 'onnxruntime', 'tensorrt'\], got 'tvm'"):
        check_engine_name("tvm")


@pytest.fixture(scope="module")
def student_step():
    """The shipped student's step from the default cache folder (exported there on first use,
    shared with a Serve world replica on this machine), and its ORT engine."""
    path = student_onnx()
    return path, make_engine("onnxruntime", onnx_path=path)


def test_the_student_step_is_cached_under_its_content_hash(student_step):
    path, _ = student_step
    assert path.parent == cache_folder() and path.name.startswith("student-step-")
    assert path.with_suffix(".json").is_file(), "the export's parity report travels with it"
    mtime = path.stat().st_mtime_ns
    assert student_onnx(path.parent) == path and path.stat().st_mtime_ns == mtime, "reused, not exported again"


def test_engine_stream_matches_the_torch_stream_over_several_chunks(student_step):
    _, engine = student_step
    codec, _ = load_model(CHECKPOINT_ROOT / "codec")
    student, _ = load_model(CHECKPOINT_ROOT / "student")
    chunks = 8
    frames = [s.frame for s in ScriptedUser("look_around+press_button", seed=SEED).steps(1 + 2 * chunks)]
    anchor = GroundTruthWorld(SEED)(WorldFrameRequest(session_id="p", request_id=0, tracking=[frames[0]])).image
    reference, served = WorldModelStream(student, codec, seed=SEED), WorldModelStream(student, codec, seed=SEED)
    served.student = EngineChunkStep(student, engine)
    reference.reset(anchor, frames[0])
    served.reset(anchor, frames[0])
    errors = []
    for k in range(chunks):
        tracking = frames[1 + 2 * k:3 + 2 * k]
        errors.append(int(np.abs(reference.step(tracking).astype(int) - served.step(tracking).astype(int)).max()))
    config = student.config
    assert len(reference.sigmas) == 2, "one Euler step per chunk (the default): one forward, fused with the write"
    # a chunk's clean output reaches the cache in the next chunk's forward: the cache is full one chunk later
    warm_up_chunks = config.window_frames // config.chunk_frames + 1
    assert served.student.engine_steps == chunks - warm_up_chunks, "steady-state chunks ran in the engine"
    assert served.student.torch_steps == 1 + warm_up_chunks, "anchor and cache-filling chunks in torch"
    assert max(errors) <= PARITY_MAX_PIXEL_ERROR, errors


def _requests(session_id: str, count: int):
    """Requests 2 model frames (66.7 ms) apart, each with the tracking frames since the last one."""
    steps = [s.frame for s in ScriptedUser("look_around", seed=SEED).steps(count * 6)]
    return [WorldFrameRequest(session_id=session_id, request_id=i, tracking=steps[i * 6:(i + 1) * 6])
            for i in range(count)]


def test_engine_student_world_answers_like_the_torch_service_and_names_its_engine(student_step):
    _, engine = student_step
    served, reference = EngineStudentWorld(engine, seed=SEED), StudentWorld(seed=SEED)
    for request in _requests("engine-world", 8):
        frame, expected = served(request), reference(request)
        assert frame.model == "worldmodel-student@onnxruntime[CPUExecutionProvider]"
        assert np.abs(frame.image.astype(int) - expected.image.astype(int)).max() <= PARITY_MAX_PIXEL_ERROR
    described = served.describe()
    assert described["engine"] == "onnxruntime[CPUExecutionProvider]" and described["engine_steps"] > 0


def test_tensorrt_without_a_gpu_falls_back_to_onnxruntime_and_says_so(student_step):
    usable, _ = tensorrt_status()
    if usable:
        pytest.skip("TensorRT is usable here; the fallback is for machines without it")
    path, _ = student_step
    with pytest.warns(RuntimeWarning, match="falling back to ONNX Runtime on the CPU"):
        engine = make_engine("tensorrt", onnx_path=path)
    assert describe_engine(engine) == "onnxruntime[CPUExecutionProvider]"

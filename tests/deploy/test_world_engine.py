"""The world-model student with its steady-state step on an engine: the cached ONNX export
(reuse, recovery from a corrupt or foreign file), parity with the torch stream over several
chunks, and the engine that really ran named in the frames."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from genxr.components.ground_truth_world import GroundTruthWorld
from genxr.components.sim.user import ScriptedUser
from genxr.components.worldmodel.checkpoint import CHECKPOINT_ROOT, load_model
from genxr.components.worldmodel.service import StudentWorld
from genxr.components.worldmodel.stream import WorldModelStream
from genxr.deploy.engines import OnnxRuntimeEngine, make_engine, tensorrt_status
from genxr.deploy.world_engine import (
    PARITY_MAX_PIXEL_ERROR,
    EngineChunkStep,
    EngineStudentWorld,
    cache_folder,
    cached_onnx,
    check_engine_name,
    check_onnx,
    describe_engine,
    student_onnx,
)
from genxr.platform.messages import WorldFrameRequest

SEED = 3


class Doubler(torch.nn.Module):
    def forward(self, x):
        return 2.0 * x


def export_doubler(out) -> None:
    export_doubler.calls += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(Doubler(), (torch.ones(1, 3),), str(out), input_names=["x"], output_names=["y"], dynamo=False)


def check_doubler(path) -> None:
    check_onnx(path, ("x",))


@pytest.fixture(autouse=True)
def _reset_calls():
    export_doubler.calls = 0


def test_the_export_is_made_once_then_reused(tmp_path):
    first = cached_onnx("doubler", export_doubler, check_doubler, tmp_path)
    again = cached_onnx("doubler", export_doubler, check_doubler, tmp_path)
    assert first == again == tmp_path / "doubler.onnx" and export_doubler.calls == 1
    y = OnnxRuntimeEngine(again).run({"x": np.arange(3, dtype=np.float32)[None]})["y"]
    np.testing.assert_array_equal(y, [[0.0, 2.0, 4.0]])
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".onnx") == ["doubler.onnx"], "no partial files left"


def test_a_corrupt_cached_file_is_re_exported_with_a_warning(tmp_path):
    path = cached_onnx("doubler", export_doubler, check_doubler, tmp_path)
    path.write_bytes(path.read_bytes()[:40])  # a torn write
    with pytest.warns(RuntimeWarning, match="cached ONNX file is unusable .*not a valid ONNX model"):
        recovered = cached_onnx("doubler", export_doubler, check_doubler, tmp_path)
    assert export_doubler.calls == 2
    assert OnnxRuntimeEngine(recovered).run({"x": np.ones((1, 3), np.float32)})["y"].tolist() == [[2.0, 2.0, 2.0]]


def test_a_cached_file_of_another_step_is_re_exported(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(Doubler(), (torch.ones(1, 3),), str(tmp_path / "doubler.onnx"), input_names=["z"], dynamo=False)
    with pytest.warns(RuntimeWarning, match=r"has inputs \['z'\], expected \['x'\]"):
        path = cached_onnx("doubler", export_doubler, check_doubler, tmp_path)
    assert export_doubler.calls == 1 and OnnxRuntimeEngine(path).input_names == ("x",)


def test_an_export_that_fails_its_check_leaves_nothing_behind(tmp_path):
    with pytest.raises(ValueError, match=r"has inputs \['x'\], expected \['latents'\]"):
        cached_onnx("doubler", export_doubler, lambda p: check_onnx(p, ("latents",)), tmp_path)
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob(".*.onnx"))


def test_the_cache_folder_follows_genxr_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GENXR_CACHE", str(tmp_path))
    assert cache_folder() == tmp_path / "onnx"
    monkeypatch.delenv("GENXR_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == tmp_path / "xdg" / "genxr" / "onnx"


def test_an_unknown_engine_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"engine must be one of \['torch', 'onnxruntime', 'tensorrt'\], got 'tvm'"):
        check_engine_name("tvm")


@pytest.fixture(scope="module")
def student_step(tmp_path_factory):
    """The shipped student's step exported once into a fresh cache folder, and its ORT engine."""
    folder = tmp_path_factory.mktemp("onnx-cache")
    path = student_onnx(folder)
    return path, make_engine("onnxruntime", onnx_path=path)


def test_the_student_step_is_cached_under_its_checkpoint_hash(student_step):
    path, _ = student_step
    assert path.name.startswith("student-step-") and path.with_suffix(".json").is_file()
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
    warm_up_chunks = (config.sink_frames + config.window_frames - 1) // config.chunk_frames
    per_chunk = len(reference.sigmas)  # Euler steps + the cache write
    assert served.student.engine_steps == (chunks - warm_up_chunks) * per_chunk, "steady-state chunks ran in the engine"
    assert served.student.torch_steps == 1 + warm_up_chunks * per_chunk, "anchor and cache-filling chunks in torch"
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

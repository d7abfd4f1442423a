"""The world model as a Ray Serve deployment behind the bus: round trips, typed deadline
errors, unknown sessions, and a replica killed mid-session that Serve restarts while the
session goes on with its state re-created."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from genxr.deploy.serving.ray_bus import RayBus
from genxr.deploy.serving.sessions import UnknownSessionError
from genxr.platform.bus import RequestTimeoutError, ServiceUnavailableError
from genxr.platform.messages import (
    AvatarMotion,
    AvatarRequest,
    WorldFrame,
    WorldFrameRequest,
)
from genxr.platform.services import AVATAR_SERVICE, WORLD_SERVICE
from genxr.xr_runtime.sim_source import SimulatedSource
from tests.helpers.worlds import DEFAULT_STUDENT

pytestmark = pytest.mark.ray


def tracking(count: int = 4, seed: int = 5):
    with SimulatedSource(behaviour="idle", seed=seed) as source:
        return [step.frame for step, _ in zip(source.user.steps(), range(count))]


def request(session_id: str, request_id: int = 0) -> WorldFrameRequest:
    return WorldFrameRequest(session_id=session_id, request_id=request_id, tracking=tracking())


def test_world_request_round_trips_through_serve(serve_handles):
    events = []
    with RayBus("round-trip", on_event=lambda kind, detail: events.append(kind)) as bus:
        bus.attach(WORLD_SERVICE, serve_handles["world_model"], {"seed": 5})
        frame = bus.request(WORLD_SERVICE, request("round-trip"), timeout_s=60)
    assert isinstance(frame, WorldFrame) and frame.model == "ground_truth"
    assert frame.image.shape == (64, 64, 3) and frame.image.std() > 0
    assert frame.frame_id == 3 and not events


def test_serve_answer_equals_the_in_process_answer(serve_handles):
    from genxr.components.sim.world_service import GroundTruthWorld

    with RayBus("parity") as bus:
        bus.attach(WORLD_SERVICE, serve_handles["world_model"], {"seed": 5})
        served = bus.request(WORLD_SERVICE, request("parity"), timeout_s=60)
    local = GroundTruthWorld(seed=5)(request("parity"))
    np.testing.assert_array_equal(served.image, local.image)


def test_a_deadline_shorter_than_the_model_raises_the_typed_timeout(serve_handles):
    with RayBus("slow") as bus:
        bus.attach(WORLD_SERVICE, serve_handles["world_model"], {"seed": 5})
        with pytest.raises(RequestTimeoutError, match="world_model"):
            bus.request(WORLD_SERVICE, request("slow"), timeout_s=0.0005)
        assert bus.stats.timed_out_requests == 1


def test_unknown_session_id_is_an_error_not_a_crash(serve_handles):
    handle = serve_handles["world_model"]
    with pytest.raises(UnknownSessionError, match="unknown session id 'never-opened'"):
        handle.remote(request("never-opened")).result(timeout_s=60)
    assert handle.pid.remote().result(timeout_s=60) > 0, "the replica is still serving"


def test_killed_replica_is_restarted_and_the_session_resumes(serve_handles):
    handle = serve_handles["world_model"]
    events = []
    with RayBus("survivor", on_event=lambda kind, detail: events.append((kind, detail))) as bus:
        first = bus.attach(WORLD_SERVICE, handle, {"seed": 5})
        bus.request(WORLD_SERVICE, request("survivor"), timeout_s=60)
        old_pid = handle.pid.remote().result(timeout_s=60)
        os.kill(old_pid, signal.SIGKILL)
        deadline = time.monotonic() + 90
        frame = None
        while frame is None and time.monotonic() < deadline:
            try:
                frame = bus.request(WORLD_SERVICE, request("survivor", 1), timeout_s=10)
            except (ServiceUnavailableError, RequestTimeoutError):
                time.sleep(0.5)
        assert frame is not None, "Serve restarted the replica and the session got answers again"
        assert handle.pid.remote().result(timeout_s=60) != old_pid
        assert first["pid"] == old_pid and bus.attached["world_model"]["pid"] != old_pid, "the new replica described"
    assert ("model_ready", "world_model: session state re-created on a new replica") in events


def test_a_session_switches_to_serve_with_backend_ray_and_nothing_else(serve_handles, tmp_path):
    from genxr.platform.config import load_config
    from genxr.xr_runtime.recording.reader import read_recording
    from genxr.xr_runtime.session import run_session

    config = load_config("quick", bus={"backend": "ray"}, display={"width": 64, "height": 64})
    result = run_session(config, tmp_path / "ray-session", seconds=60.0, max_frames=60)
    assert result.world_model == "student (Ray Serve)", "the shipped student, served by a replica"
    assert result.metrics["world_model_hz"] > 0 and result.metrics["frames"] > 0
    assert result.metrics["avatar_hz"] > 0, "avatar motions came back from the avatar deployment"
    assert result.avatar == "streaming (Ray Serve avatar deployment, onnxruntime[CPUExecutionProvider])"
    served = result.metrics["served"]
    assert served["world_model"]["model"] == DEFAULT_STUDENT
    assert served["avatar"]["model"] == "avatar-stream@onnxruntime[CPUExecutionProvider]"
    assert served["avatar"]["pid"] != os.getpid()
    assert f"world_model over Ray Serve: {DEFAULT_STUDENT} " \
           "(engine onnxruntime[CPUExecutionProvider])" in result.notes
    recording = read_recording(tmp_path / "ray-session" / "recording")
    assert recording.complete


def test_a_replica_refuses_anything_but_a_genxr_message(serve_handles):
    with pytest.raises(TypeError, match="expects a genxr message, got bytes"):
        serve_handles["world_model"].remote(b"raw bytes").result(timeout_s=60)


def avatar_request(session_id: str, request_id: int, time_ns: int) -> AvatarRequest:
    return AvatarRequest(session_id=session_id, request_id=request_id, time_ns=time_ns, user_head=tracking(1)[0].head)


def test_the_avatar_deployment_streams_each_session_on_its_own(serve_handles):
    start = 1_000_000_000
    with RayBus("avatar-a") as a, RayBus("avatar-b") as b:
        described = a.attach(AVATAR_SERVICE, serve_handles["avatar"], {"start_time_ns": start, "seed": 1})
        b.attach(AVATAR_SERVICE, serve_handles["avatar"], {"start_time_ns": start, "seed": 1})
        assert described["kind"] == "avatar:stream" and described["rate_hz"] > 0
        first_a = a.request(AVATAR_SERVICE, avatar_request("avatar-a", 0, start), timeout_s=60)
        second_a = a.request(AVATAR_SERVICE, avatar_request("avatar-a", 1, start), timeout_s=60)
        first_b = b.request(AVATAR_SERVICE, avatar_request("avatar-b", 0, start), timeout_s=60)
    assert isinstance(first_a, AvatarMotion) and first_a.session_id == "avatar-a" and second_a.request_id == 1
    assert second_a.start_time_ns > first_a.start_time_ns, "session a's stream advanced a chunk"
    assert first_b.start_time_ns == first_a.start_time_ns, "session b has a stream of its own, at its start"
    np.testing.assert_array_equal(first_b.rotations_6d, first_a.rotations_6d)


def test_an_avatar_request_for_an_unknown_session_is_a_typed_error(serve_handles):
    handle = serve_handles["avatar"]
    with pytest.raises(UnknownSessionError, match="unknown session id 'no-avatar-here'"):
        handle.remote(avatar_request("no-avatar-here", 0, 0)).result(timeout_s=60)
    with RayBus("no-start-time") as bus, pytest.raises(ServiceUnavailableError, match="start_time_ns"):
        bus.attach(AVATAR_SERVICE, handle, {"seed": 1})


def test_connecting_again_with_the_same_models_keeps_the_running_replicas(serve_handles):
    from genxr.deploy.serving.deployments import connect

    first = connect(world_kind="world:ground_truth")
    pids = {name: handle.pid.remote().result(timeout_s=60) for name, handle in first.items()}
    again = connect(world_kind="world:ground_truth")
    assert {name: handle.pid.remote().result(timeout_s=60) for name, handle in again.items()} == pids
    assert again["world_model"].replica_info.remote().result(timeout_s=60)["kind"] == "world:ground_truth"
    switched = connect(world_kind="world:ground_truth", avatar_engine="torch")
    assert switched["avatar"].replica_info.remote().result(timeout_s=60)["engine"] == "torch"
    assert switched["avatar"].pid.remote().result(timeout_s=60) != pids["avatar"], "another engine: redeployed"
    assert switched["world_model"].pid.remote().result(timeout_s=60) == pids["world_model"]
    connect(world_kind="world:ground_truth", avatar_engine="onnxruntime")  # as the other tests expect


def test_a_ray_session_whose_avatar_cannot_open_runs_on_without_it(serve_handles, tmp_path):
    from genxr.platform.config import load_config
    from genxr.xr_runtime.session import run_session

    empty = tmp_path / "no-checkpoint"
    empty.mkdir()
    config = load_config("quick", bus={"backend": "ray"}, display={"width": 64, "height": 64},
                         session={"avatar_checkpoint": str(empty)})
    result = run_session(config, tmp_path / "no-avatar", seconds=30.0, max_frames=20)
    assert result.avatar.startswith("unavailable over Ray Serve: cannot open session 'no-avatar' on 'avatar'")
    assert f"no avatar checkpoint at {empty}" in result.avatar
    assert result.metrics["frames"] > 0 and result.metrics["avatar_hz"] == 0
    assert "avatar" not in result.metrics["served"]

"""Ray Serve deployments of genxr's model services, and starting or joining a Ray cluster.

One deployment class, :class:`ModelDeployment`, serves any model a session calls through
the bus: it holds per-session streaming state in a :class:`SessionStore` (opened with the
session's parameters, bounded, evicted when idle) and answers the platform's pydantic
messages as they are (Ray pickles them; they were validated when they were made, and
re-validating every array at the replica doubled the cost of a round trip).
:data:`MODEL_FACTORIES` names what a deployment can hold.

``build_app(...)`` binds the application; :func:`connect` starts a local Ray instance bound
to 127.0.0.1 (or joins ``address``, a cluster started with ``ray start --head``), runs the
app and returns the DeploymentHandles. ``serve_config.yaml`` beside this file deploys the
same app with ``serve deploy`` (its ``import_path`` is :func:`app_builder`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from genxr.deploy.sessions import SessionStore
from genxr.platform.messages import Message, WorldFrame, WorldFrameRequest

APP_NAME = "genxr"


def _ground_truth_world(params: dict[str, Any]) -> Callable[[WorldFrameRequest], WorldFrame]:
    from genxr.components.ground_truth_world import GroundTruthWorld

    return GroundTruthWorld(seed=int(params.get("seed", 0)))


def _student_world(params: dict[str, Any]) -> Callable[[WorldFrameRequest], WorldFrame]:
    from genxr.components.worldmodel.service import StudentWorld

    return StudentWorld(seed=int(params.get("seed", 0)))


def _echo_world(params: dict[str, Any]) -> Callable[[WorldFrameRequest], WorldFrame]:
    """Answers at once with a blank 64x64 frame: measures the serving path without a model."""
    import numpy as np

    image = np.zeros((64, 64, 3), np.uint8)

    def answer(request: WorldFrameRequest) -> WorldFrame:
        newest = request.tracking[-1]
        return WorldFrame(session_id=request.session_id, request_id=request.request_id, frame_id=newest.frame_id,
                          head=newest.head, generated_for_time_ns=newest.predicted_display_time_ns,
                          vertical_fov_deg=90.0, image=image, model="echo")

    return answer


MODEL_FACTORIES: dict[str, Callable[[dict[str, Any]], Callable[[Message], Message]]] = {
    "world:ground_truth": _ground_truth_world,
    "world:student": _student_world,
    "world:echo": _echo_world,
}
"""Model kind -> factory(session params) -> per-session handler (request message -> response)."""


class ModelDeployment:
    """A replica serving one model kind for many sessions (wrapped by ``serve.deployment``)."""

    def __init__(self, kind: str, max_sessions: int = 8, idle_timeout_s: float = 300.0,
                 torch_threads: int | None = 1, nice: int = 10) -> None:
        if kind not in MODEL_FACTORIES:
            raise ValueError(f"unknown model kind {kind!r}; known: {sorted(MODEL_FACTORIES)}")
        os.nice(nice)  # a replica on the headset's PC must not take the CPU from the frame loop
        if torch_threads is not None:
            import torch

            torch.set_num_threads(torch_threads)
        self.kind = kind
        self.sessions = SessionStore(MODEL_FACTORIES[kind], max_sessions=max_sessions, idle_timeout_s=idle_timeout_s)

    def open_session(self, session_id: str, params: dict[str, Any]) -> None:
        self.sessions.open(session_id, params)

    def close_session(self, session_id: str) -> bool:
        return self.sessions.close(session_id)

    def __call__(self, request: Message) -> Message:
        if not isinstance(request, Message):
            raise TypeError(f"{self.kind} replica expects a genxr message, got {type(request).__name__}")
        handler = self.sessions.get(request.session_id)
        return handler(request)

    def pid(self) -> int:
        """The replica's process id (diagnostics, and the replica-restart test)."""
        return os.getpid()


def deployment_options(max_ongoing_requests: int = 4, num_cpus: float = 0.5) -> dict[str, Any]:
    """Serve options for model replicas: small queues (a 90 Hz loop wants fresh answers, not a
    backlog), half a CPU each for scheduling (a world model and an avatar replica then fit on a
    2-core lab PC beside nothing else Ray schedules), quick health checks so a dead replica is
    replaced in seconds."""
    return {"max_ongoing_requests": max_ongoing_requests, "ray_actor_options": {"num_cpus": num_cpus},
            "health_check_period_s": 1.0, "health_check_timeout_s": 10.0}


def build_app(world_kind: str = "world:ground_truth", max_sessions: int = 8, idle_timeout_s: float = 300.0):
    """The Serve application: one ``world_model`` deployment."""
    from ray import serve

    world = serve.deployment(ModelDeployment, name="world_model", **deployment_options())
    return world.bind(world_kind, max_sessions, idle_timeout_s)


def app_builder(args: dict[str, Any]):
    """``import_path`` target for ``serve deploy serve_config.yaml``; ``args`` as in :func:`build_app`."""
    return build_app(**args)


def connect(address: str | None = None, world_kind: str = "world:ground_truth") -> dict[str, Any]:
    """Starts (or joins) Ray and Serve, runs the app, returns ``{"world_model": DeploymentHandle}``.

    A local instance binds to 127.0.0.1 with Serve's HTTP proxy disabled (handles only);
    ``address`` joins an existing cluster instead (``ray start --head`` on the lab PC).
    """
    import ray
    from ray import serve

    if not ray.is_initialized():
        if address is None:
            ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    serve.start(proxy_location="Disabled")
    handle = serve.run(build_app(world_kind), name=APP_NAME, route_prefix=None)
    return {"world_model": handle}

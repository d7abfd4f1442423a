"""Ray Serve deployments of genxr's model services, and starting or joining a Ray cluster.

One deployment class, :class:`ModelDeployment`, serves any model a session calls through
the bus: it holds per-session streaming state in a :class:`SessionStore` (opened with the
session's parameters, bounded, evicted when idle) and answers the platform's pydantic
messages as they are (Ray pickles them; they were validated when they were made, and
re-validating every array at the replica doubled the cost of a round trip).
:data:`MODEL_FACTORIES` names what a deployment can hold; kinds in :data:`ENGINE_KINDS`
take an ``engine`` option (``torch``, ``onnxruntime``, ``tensorrt``; default ONNX Runtime
where it is importable), loaded once per replica when it starts; kinds in :data:`FOLD_KINDS`
(the student) a ``fold`` ratio: the replica folds the shipped student at start (or loads the
cached folded export) and every session on it streams that one folded model
(:class:`~genxr.deploy.engines.world.EngineStudentWorld`). ``build_app``, :func:`connect`,
``serve_config.yaml`` and ``genxr serve`` default to
:data:`~genxr.platform.config.DEFAULT_WORLD_FOLD`; 0 or None is the student as shipped.

``build_app(...)`` binds the ``world_model`` deployment and ``build_avatar_app(...)`` the
``avatar`` deployment, each its own application (changing the world model redeploys only
its own); :func:`connect` starts a local Ray instance bound to 127.0.0.1 (or joins
``address``, a cluster started with ``ray start --head``), runs both and returns the
DeploymentHandles. ``serve_config.yaml`` beside this file deploys the same applications
with ``serve deploy`` (``import_path`` :func:`app_builder` and :func:`avatar_app_builder`).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

from genxr.deploy.serving.sessions import AvatarSessionParams, SessionStore, WorldSessionParams, parse_params
from genxr.platform.config import DEFAULT_WORLD_FOLD
from genxr.platform.messages import (
    AvatarMotion,
    AvatarRequest,
    Message,
    WorldFrame,
    WorldFrameRequest,
)

APP_NAME = "genxr"
AVATAR_APP_NAME = "genxr-avatar"


def _ground_truth_world(params: dict[str, Any], engine: str | None = None) -> Callable[[WorldFrameRequest], WorldFrame]:
    from genxr.components.sim.world_service import GroundTruthWorld

    return GroundTruthWorld(seed=parse_params(WorldSessionParams, params).seed)


def _frozen_world(params: dict[str, Any], engine: str | None = None) -> Callable[[WorldFrameRequest], WorldFrame]:
    from genxr.components.sim.world_service import FrozenWorld

    return FrozenWorld(seed=parse_params(WorldSessionParams, params).seed)


def _student_world(params: dict[str, Any], engine: str | None = None,
                   fold: float | None = None, student: str = "student") -> Callable[[WorldFrameRequest], WorldFrame]:
    from genxr.deploy.engines.base import default_engine
    from genxr.deploy.engines.world import EngineStudentWorld

    return EngineStudentWorld(engine or default_engine(), seed=parse_params(WorldSessionParams, params).seed,
                              fold=fold, student=student)


def _head_only_world(params: dict[str, Any], engine: str | None = None,
                     fold: float | None = None) -> Callable[[WorldFrameRequest], WorldFrame]:
    return _student_world(params, engine, fold, student="student_head_only")


def _avatar_stream(params: dict[str, Any], engine: str | None = None) -> Callable[[AvatarRequest], AvatarMotion]:
    """One session's avatar (:class:`~genxr.deploy.serving.avatar.EngineAvatarService`) on ``engine``,
    opened with ``start_time_ns`` (the session's frame 0 on the genxr clock, required), ``seed``,
    ``guidance_scale`` and ``checkpoint`` (a folder on the replica's machine; default the shipped one)."""
    from genxr.deploy.engines.base import default_engine
    from genxr.deploy.serving.avatar import EngineAvatarService

    opened = parse_params(AvatarSessionParams, params)
    return EngineAvatarService(opened.start_time_ns, engine=engine or default_engine(), seed=opened.seed,
                               guidance_scale=opened.guidance_scale, checkpoint=opened.checkpoint,
                               generator="generator" if opened.spatial else "generator_no_user")


def _echo_world(params: dict[str, Any], engine: str | None = None) -> Callable[[WorldFrameRequest], WorldFrame]:
    """Answers at once with a blank 64x64 frame: measures the serving path without a model."""
    import numpy as np

    parse_params(WorldSessionParams, params)
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
    "world:student_head_only": _head_only_world,
    "world:frozen": _frozen_world,
    "world:echo": _echo_world,
    "avatar:stream": _avatar_stream,
}
"""Model kind -> factory(session params, engine[, fold]) -> per-session handler (request message -> response)."""

def _load_student_engine(engine: str, fold: float | None = None, student: str = "student") -> None:
    from genxr.deploy.engines.world import folded_student, student_engine

    if fold:
        folded_student(fold, student)  # the torch module the warm-up chunks run on
    student_engine(engine, fold=fold, student=student)


def _load_head_only_engine(engine: str, fold: float | None = None) -> None:
    _load_student_engine(engine, fold, student="student_head_only")


def _load_avatar_engine(engine: str) -> None:
    from genxr.deploy.serving.avatar import avatar_step_engine

    avatar_step_engine(engine)


ENGINE_KINDS: dict[str, Callable[..., None]] = {"world:student": _load_student_engine,
                                                "world:student_head_only": _load_head_only_engine,
                                                "avatar:stream": _load_avatar_engine}
"""Model kinds with an ``engine`` option -> what loads (exports once, caches) that engine in a replica
(``fold=`` too for the kinds in :data:`FOLD_KINDS`)."""

FOLD_KINDS = ("world:student", "world:student_head_only")
"""Model kinds with a ``fold`` option: the ratio the student is folded at (None: as shipped)."""


def describe_handler(kind: str, engine: str | None, handler: Any) -> dict[str, Any]:
    """What serves a session: the kind, the engine and providers, the handler's own ``describe()``
    and its request rate (``rate_hz``) where it has one."""
    description: dict[str, Any] = {"kind": kind, "engine": engine, "pid": os.getpid()}
    if hasattr(handler, "rate_hz"):
        description["rate_hz"] = float(handler.rate_hz)
    if hasattr(handler, "describe"):
        description.update(handler.describe())
    return description


class ModelDeployment:
    """A replica serving one model kind for many sessions (wrapped by ``serve.deployment``)."""

    def __init__(self, kind: str, max_sessions: int = 8, idle_timeout_s: float = 300.0,
                 torch_threads: int | None = 1, nice: int = 10, engine: str | None = None,
                 fold: float | None = None) -> None:
        if kind not in MODEL_FACTORIES:
            raise ValueError(f"unknown model kind {kind!r}; known: {sorted(MODEL_FACTORIES)}")
        from genxr.deploy.engines.base import check_engine_name, default_engine
        from genxr.deploy.engines.world import check_fold

        if engine is not None:
            if kind not in ENGINE_KINDS:
                raise ValueError(f"model kind {kind!r} has no engine option (engine={engine!r}); "
                                 f"kinds with one: {sorted(ENGINE_KINDS)}")
            check_engine_name(engine)
        fold = check_fold(fold)
        if fold is not None and kind not in FOLD_KINDS:
            raise ValueError(f"model kind {kind!r} has no fold option (fold={fold!r}); kinds with one: {list(FOLD_KINDS)}")
        _bind_replica_grpc_to_loopback()
        os.nice(nice)  # a replica on the headset's PC must not take the CPU from the frame loop
        if torch_threads is not None:
            import torch

            torch.set_num_threads(torch_threads)
        self.kind = kind
        self.engine = None
        self.fold = fold
        options: dict[str, Any] = {"fold": fold} if kind in FOLD_KINDS else {}
        if kind in ENGINE_KINDS:
            self.engine = engine or default_engine()
            ENGINE_KINDS[kind](self.engine, **options)  # fold, export / build now, not on the first session's open
        self.sessions = SessionStore(functools.partial(MODEL_FACTORIES[kind], engine=self.engine, **options),
                                     max_sessions=max_sessions, idle_timeout_s=idle_timeout_s)

    def open_session(self, session_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """Opens (or re-opens) ``session_id`` with ``params``; returns :meth:`describe` of it."""
        self.sessions.open(session_id, params)
        return self.describe(session_id)

    def describe(self, session_id: str) -> dict[str, Any]:
        """What serves ``session_id`` here (:func:`describe_handler`); UnknownSessionError if not held."""
        return describe_handler(self.kind, self.engine, self.sessions.get(session_id))

    def close_session(self, session_id: str) -> bool:
        return self.sessions.close(session_id)

    def __call__(self, request: Message) -> Message:
        if not isinstance(request, Message):
            raise TypeError(f"{self.kind} replica expects a genxr message, got {type(request).__name__}")
        handler = self.sessions.get(request.session_id)
        return handler(request)

    def replica_info(self) -> dict[str, Any]:
        """The model kind, engine name and fold ratio (None: unfolded) this replica was started with,
        and how many sessions it holds."""
        return {"kind": self.kind, "engine": self.engine, "fold": self.fold, "sessions": len(self.sessions)}

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


def build_app(world_kind: str = "world:ground_truth", max_sessions: int = 8, idle_timeout_s: float = 300.0,
              world_engine: str | None = None, world_fold: float | None = DEFAULT_WORLD_FOLD):
    """The world application: one ``world_model`` deployment serving ``world_kind`` (on
    ``world_engine`` where the kind takes one, see :data:`ENGINE_KINDS`; folded at ``world_fold``
    where it takes one, :data:`FOLD_KINDS`: other kinds ignore it). ValueError naming
    ``world_fold`` for a ratio outside [0, 1)."""
    from ray import serve

    from genxr.deploy.engines.world import check_fold

    _check_kind(world_kind)
    fold = check_fold(world_fold, "world_fold") if world_kind in FOLD_KINDS else None
    world = serve.deployment(ModelDeployment, name="world_model", **deployment_options())
    return world.bind(world_kind, max_sessions, idle_timeout_s, engine=world_engine, fold=fold)


def build_avatar_app(avatar_kind: str = "avatar:stream", max_sessions: int = 8, idle_timeout_s: float = 300.0,
                     avatar_engine: str | None = None):
    """The avatar application: one ``avatar`` deployment (on ``avatar_engine``). It is an
    application of its own so a session that changes the world model (``serve.run`` again)
    leaves the avatar replicas and their sessions be."""
    from ray import serve

    _check_kind(avatar_kind)
    avatar = serve.deployment(ModelDeployment, name="avatar", **deployment_options())
    return avatar.bind(avatar_kind, max_sessions, idle_timeout_s, engine=avatar_engine)


def _check_kind(kind: str) -> None:
    if kind not in MODEL_FACTORIES:
        raise ValueError(f"unknown model kind {kind!r}; known: {sorted(MODEL_FACTORIES)}")


def app_builder(args: dict[str, Any]):
    """``import_path`` target for ``serve deploy serve_config.yaml``; ``args`` as in :func:`build_app`."""
    return build_app(**args)


def avatar_app_builder(args: dict[str, Any]):
    """``import_path`` target of the avatar application; ``args`` as in :func:`build_avatar_app`."""
    return build_avatar_app(**args)


def serve_options(world: str = "student", engine: str | None = None,
                  fold: float | None = DEFAULT_WORLD_FOLD) -> dict[str, Any]:
    """``connect`` keywords for ``genxr serve --world W --engine E --fold R``: ``engine`` applies to
    the student world and to the avatar, ``fold`` to the student; ValueError naming the bad value
    (and ``--fold`` for a ratio outside [0, 1)) otherwise."""
    from genxr.deploy.engines.base import check_engine_name
    from genxr.deploy.engines.world import check_fold

    kind = f"world:{world}"
    if kind not in MODEL_FACTORIES:
        known = sorted(k.removeprefix("world:") for k in MODEL_FACTORIES if k.startswith("world:"))
        raise ValueError(f"--world must be one of {known}, got {world!r}")
    if engine is not None:
        check_engine_name(engine)
    fold = check_fold(fold, "--fold")
    return {"world_kind": kind, "world_engine": engine if kind in ENGINE_KINDS else None, "avatar_engine": engine,
            "world_fold": fold if kind in FOLD_KINDS else None}


def describe_deployments(handles: dict[str, Any]) -> str:
    """One line per deployment: what its replica runs (``replica_info``), e.g. ``world_model: world:student on
    onnxruntime (folded at 0.2)``."""
    lines = []
    for name, handle in sorted(handles.items()):
        info = handle.replica_info.remote().result(timeout_s=60)
        lines.append(f"{name}: {info['kind']}" + (f" on {info['engine']}" if info["engine"] else "")
                     + (f" (folded at {info['fold']:g})" if info.get("fold") else ""))
    return "; ".join(lines)


LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")
"""Node IPs on which a Ray node's servers listen on loopback only (and genxr's replicas too)."""


def start_local_ray(**init_options: Any) -> None:
    """``ray.init`` of a new single-node instance whose every process listens on 127.0.0.1 only.

    Ray's servers (GCS, raylet, core workers, the dashboard and runtime-env agents) bind to
    127.0.0.1 only when the node's IP *is* 127.0.0.1, but Ray 2.60 on Linux rewrites
    ``_node_ip_address="127.0.0.1"`` to the machine's LAN address
    (``services.resolve_ip_for_localhost``) unless ``ray_constants.ENABLE_RAY_CLUSTER`` is off -
    the single-machine mode Ray itself runs on macOS and Windows. It is turned off for this
    ``ray.init`` only (it is read nowhere else in the driver once the node is up); each Ray
    process is then started with ``--node-ip-address=127.0.0.1``. Serve replicas' own gRPC
    server is bound in :func:`_bind_replica_grpc_to_loopback`. ``init_options`` go to
    ``ray.init`` (tests and ``connect`` add nothing)."""
    import ray
    from ray._private import ray_constants

    options = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False, **init_options}
    cluster_mode = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(address="local", _node_ip_address="127.0.0.1", **options)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = cluster_mode


def _bind_replica_grpc_to_loopback() -> None:
    """In a Serve replica on a loopback node, binds the replica's inter-deployment gRPC server to
    127.0.0.1: Ray Serve 2.60 hard-codes ``[::]:0`` for it (``ray/serve/_private/replica.py``,
    ``_on_initialized``, which runs after the user's constructor) with no option to change it.
    Anywhere else (a process that is not a replica, a node on a LAN address, a Serve without
    that function) it leaves everything as it is. ``tests/deploy/serving/test_loopback.py``
    notices if a Ray upgrade opens a port on another address."""
    context = sys.modules.get("ray.serve.context")
    if context is None or context._get_internal_replica_context() is None:  # not in a replica
        return
    replica = sys.modules.get("ray.serve._private.replica")
    original = getattr(replica, "add_port_to_grpc_server", None)
    if original is None or getattr(original, "genxr_loopback", False):
        return
    import ray

    if not ray.is_initialized() or ray.util.get_node_ip_address() not in LOOPBACK_ADDRESSES:
        return

    def add_port_to_grpc_server(server: Any, address: str) -> int:
        if address.startswith("[::]:"):
            address = "127.0.0.1:" + address.removeprefix("[::]:")
        return original(server, address)

    add_port_to_grpc_server.genxr_loopback = True  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = add_port_to_grpc_server


def connect(address: str | None = None, world_kind: str = "world:ground_truth",
            world_engine: str | None = None, avatar_engine: str | None = None,
            world_fold: float | None = DEFAULT_WORLD_FOLD) -> dict[str, Any]:
    """Starts (or joins) Ray and Serve, runs both applications, returns
    ``{"world_model": DeploymentHandle, "avatar": DeploymentHandle}``.

    A local instance (:func:`start_local_ray`) listens on 127.0.0.1 only and runs Serve with its
    HTTP proxy disabled (handles only); without ``address`` it is always a new instance of this
    process (``RAY_ADDRESS`` and clusters started with ``ray start`` are not joined).
    ``address`` joins an existing cluster instead (``ray start --head`` on the lab PC; ``"auto"``
    finds the newest one or reads ``RAY_ADDRESS``).
    An application already running the asked-for model kind (on the asked-for engine, where one
    is given, and for the student folded at ``world_fold``: 0 or None is the student as shipped)
    is kept as it is - its replicas and their sessions live on; otherwise it is (re)deployed.
    Engines left unset accept whatever runs, and default to ONNX Runtime where it is importable
    when deploying. ``world_fold`` outside [0, 1) is a ValueError naming it, before Ray starts.
    """
    import ray
    from ray import serve

    from genxr.deploy.engines.world import check_fold

    world_fold = check_fold(world_fold, "world_fold") if world_kind in FOLD_KINDS else None

    if not ray.is_initialized():
        if address is None:
            start_local_ray()
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    serve.start(proxy_location="Disabled")
    world = _running(APP_NAME, world_kind, world_engine, world_fold)
    if world is None:
        world = serve.run(build_app(world_kind, world_engine=world_engine, world_fold=world_fold), name=APP_NAME,
                          route_prefix=None)
    avatar = _running(AVATAR_APP_NAME, "avatar:stream", avatar_engine)
    if avatar is None:
        avatar = serve.run(build_avatar_app(avatar_engine=avatar_engine), name=AVATAR_APP_NAME, route_prefix=None)
    return {"world_model": world, "avatar": avatar}


def _running(app_name: str, kind: str, engine: str | None, fold: float | None = None):
    """The handle of ``app_name`` if it is running ``kind`` (on ``engine``, unless None; for the
    kinds in :data:`FOLD_KINDS` folded at ``fold``, None or 0 = unfolded), else None."""
    from ray import serve
    from ray.exceptions import RayError

    status = serve.status().applications.get(app_name)
    if status is None or status.status != "RUNNING":
        return None
    handle = serve.get_app_handle(app_name)
    try:
        info = handle.replica_info.remote().result(timeout_s=30)
    except (RayError, TimeoutError, AttributeError):  # an older genxr's replica, or one going away: redeploy
        return None
    if info["kind"] != kind or (engine is not None and info["engine"] != engine):
        return None
    if kind in FOLD_KINDS and (info.get("fold") or None) != (fold or None):  # a replica of an older genxr: unfolded
        return None
    return handle

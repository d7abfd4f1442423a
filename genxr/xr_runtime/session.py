"""The end-to-end session: source -> bus -> world/avatar services -> compositor -> sinks.

:func:`run_session` builds every part from a :class:`~genxr.platform.config.GenXRConfig`,
runs the :class:`~genxr.xr_runtime.frame_loop.FrameLoop` and writes the session folder:

* ``recording/`` - tracking frames and events (:mod:`genxr.xr_runtime.recording.format`),
* ``trace.json`` - Chrome Trace Event JSON of every hop (open in ui.perfetto.dev),
* ``metrics.json`` - frame timing, motion-to-photon, content latency and age, update rates
  (all without the first ``session.warmup_s`` seconds: ``warmup_frames``), per-stage span
  percentiles, bus counters, the models' warm-up requests (``warm_up``),
* ``session.mp4`` - what the display showed,
* ``audio/user.wav``, ``audio/agent.wav`` - with ``audio.conversation=live``, both speakers of
  the conversation the avatar heard (:mod:`genxr.xr_runtime.audio`),
* ``spans.jsonl`` - every span, appended while the session runs (``genxr dashboard --live``);
  the tracer keeps only a recent window in memory, and ``trace.json`` and the span
  percentiles are computed from this file at the end, so memory stays flat however long the
  session runs.

With a headset (an OpenXR graphics session) every frame also goes to the headset first,
one image per eye (:mod:`genxr.xr_runtime.openxr.sink`); the mp4 then shows the left eye.

Ctrl-C, and SIGTERM in the main thread (``kill``, a service manager stopping genxr), end the
session cleanly: every file is closed and complete, the manifest and the ``stopped`` event
say how it ended. A file that cannot be written while the session runs (a full disk) ends it
the same way: what can be written is written, then :class:`SessionError` names the file.
A session folder that cannot be written, or that already holds files (a new session would
mix with an old one), fails before anything starts.
"""

from __future__ import annotations

import errno
import json
import math
import os
import platform as stdlib_platform
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genxr import __version__
from genxr.platform.bus import Bus, InProcessBus, ServiceUnavailableError
from genxr.platform.clock import MONOTONIC, Clock
from genxr.platform.config import GenXRConfig
from genxr.platform.messages import WorldFrame, WorldFrameRequest
from genxr.platform.services import AVATAR_SERVICE, WORLD_SERVICE
from genxr.platform.tracing import LiveSpanWriter, Tracer
from genxr.platform.units import MS_PER_S
from genxr.xr_runtime.compositor import Compositor, CompositorConfig
from genxr.xr_runtime.frame_loop import FrameLoop, warm_up
from genxr.xr_runtime.hud import Hud, HudConfig
from genxr.xr_runtime.openxr.sink import headset_sink
from genxr.xr_runtime.recording.format import write_json_atomic
from genxr.xr_runtime.recording.writer import Recorder
from genxr.xr_runtime.sinks import Sink, VideoSink
from genxr.xr_runtime.sources import TrackingSource, TrackingSourceLost
from genxr.xr_runtime.timing import DisplayClock

LIVE_SPANS_FILE = "spans.jsonl"


class SessionError(RuntimeError):
    """A session that cannot start, or that stopped because a file could not be written; the
    message says why and what to do. ``result`` is the stopped session's, when it ran."""

    def __init__(self, message: str, result: SessionResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class SessionTerminated(KeyboardInterrupt):
    """SIGTERM before the frame loop runs: ends the start-up as Ctrl-C would."""


@dataclass
class SessionResult:
    folder: Path
    metrics: dict[str, Any]
    interrupted: bool = False
    interrupted_by: str | None = None
    """``"Ctrl-C"``, ``"SIGTERM"`` or ``"tracking source lost"`` when ``interrupted``."""
    source_lost: str | None = None
    """What happened to the tracking source, when it was lost mid-session."""
    world_model: str = ""
    avatar: str = ""
    notes: list[str] = field(default_factory=list)


def make_source(config: GenXRConfig, clock: Clock) -> TrackingSource:
    """The tracking source the config names."""
    session = config.session
    if session.source == "sim":
        from genxr.xr_runtime.sim_source import SimulatedSource

        return SimulatedSource(seed=session.seed, rate_hz=session.display_rate_hz, clock=clock)
    if session.source == "openxr":
        from genxr.xr_runtime.openxr.source import OpenXRSource

        # A graphics session even where Monado also offers a headless one: a headset must show images.
        return OpenXRSource(clock=clock, fallback_rate_hz=session.display_rate_hz, prefer_headless=session.openxr_headless)
    from genxr.xr_runtime.replay_source import ReplaySource

    return ReplaySource(session.replay_path, clock=clock)


def world_kind(config: GenXRConfig) -> str:
    """The world service ``session.world`` names; ``auto`` is the world-model student when its
    checkpoint ships with genxr, else the simulator's ground-truth world."""
    if config.session.world != "auto":
        return config.session.world
    from genxr.components.worldmodel.checkpoint import CHECKPOINT_ROOT

    return "student" if (CHECKPOINT_ROOT / "student" / "config.json").is_file() else "ground_truth"


def _notice(message: str) -> None:
    """A line on stderr while a session starts (above ``genxr demo``'s progress bar)."""
    print(message, file=sys.stderr, flush=True)


def make_world(config: GenXRConfig) -> tuple[str, Callable[[WorldFrameRequest], WorldFrame]]:
    """(name, handler) of the world service (see :func:`world_kind`). The student runs as the Serve
    deployment runs it (:class:`~genxr.deploy.engines.world.EngineStudentWorld`): folded at
    ``session.world_fold``, its steady-state chunk step on the default engine (ONNX Runtime where
    it is importable, else eager torch); the name says which, e.g.
    ``worldmodel-student-fold0.2@onnxruntime[CPUExecutionProvider]``. The first session of a
    checkpoint and ratio exports the step to ONNX into the cache (said on stderr)."""
    kind = world_kind(config)
    if kind == "pixel":
        from genxr.components.worldmodel.checkpoint import CHECKPOINT_ROOT
        from genxr.components.worldmodel.service import StudentWorld

        if not (CHECKPOINT_ROOT / "pixel" / "config.json").is_file():
            raise SessionError(f"session.world='pixel': world model v2 is not shipped with genxr (it does not yet beat "
                               f"the geometric prior, docs/worldmodel.md \"World model v2\"); train it with `genxr train "
                               f"worldmodel-pixel --preset cpu --ship` to write {CHECKPOINT_ROOT / 'pixel'}")
        world = StudentWorld(seed=config.session.seed, student="pixel")
        return f"{world.model_name}@torch", world
    if kind in ("student", "student_head_only"):
        from genxr.deploy.engines.base import default_engine
        from genxr.deploy.engines.world import EngineStudentWorld, student_onnx_cached, student_onnx_key
        from genxr.deploy.export.cache import cache_folder

        engine, fold = default_engine(), config.session.world_fold
        if engine != "torch" and not student_onnx_cached(fold, student=kind):
            _notice(f"world model: exporting the {kind}{f' folded at {fold:g}' if fold else ''} to ONNX for {engine} "
                    f"(once per checkpoint and ratio, ~15-60 s) into "
                    f"{cache_folder() / student_onnx_key(fold, kind)}.onnx")
        from genxr.compression import CompressionError

        try:
            world = EngineStudentWorld(engine, seed=config.session.seed, fold=fold, student=kind)
        except (ValueError, CompressionError) as err:  # a ratio that leaves a group of the student without channels
            raise SessionError(f"cannot run the world-model {kind} with session.world_fold={fold}: {err}") from err
        return world.model_name, world
    from genxr.components.sim.world_service import FROZEN_MODEL_NAME, MODEL_NAME, FrozenWorld, GroundTruthWorld

    if kind == "frozen":
        return FROZEN_MODEL_NAME, FrozenWorld(seed=config.session.seed)
    return MODEL_NAME, GroundTruthWorld(seed=config.session.seed)


@dataclass
class ServedAvatar:
    """The avatar as the Ray Serve ``avatar`` deployment (``--backend ray``): the parameters its
    session is opened with; once attached, its chunk rate and what the replica says serves it,
    or why it could not be attached."""

    params: dict[str, Any]
    description: dict[str, Any] = field(default_factory=dict)
    """What the replica says serves the session (empty until attached)."""
    unavailable: str = ""

    @property
    def rate_hz(self) -> float | None:
        """Avatar chunks per second, once attached."""
        return self.description.get("rate_hz")

    def note(self) -> str:
        if self.rate_hz is None:
            return f"unavailable over Ray Serve: {self.unavailable or 'not attached'}"
        return f"streaming (Ray Serve avatar deployment, {self.description.get('engine') or 'torch'})"


AVATAR_EXPORT_NOTICE_S = 3.0
"""An in-process avatar still loading after this long is said on stderr (its first run exports its step)."""


def make_conversation(config: GenXRConfig, start_time_ns: int, clock: Clock = MONOTONIC):
    """The conversation the avatar hears (``config.audio``, :mod:`genxr.xr_runtime.audio`): the
    simulator's script from ``start_time_ns``, or a live one (started when the session enters it);
    :class:`SessionError` naming the ``audio`` field when its microphone, speakers or lines cannot be used."""
    from genxr.xr_runtime.audio import AudioError
    from genxr.xr_runtime.audio import make_conversation as make

    try:
        return make(config, start_time_ns, clock)
    except AudioError as err:
        raise SessionError(f"cannot start the live conversation: {err}") from err


def make_avatar(config: GenXRConfig, start_time_ns: int, clock: Clock = MONOTONIC):
    """(service, conversation, note): the avatar and the conversation it hears
    (:func:`make_conversation`), or (None, None, why not).
    With ``bus.backend == "ray"`` the service is a :class:`ServedAvatar`, attached by the bus;
    in-process it is :class:`~genxr.deploy.serving.avatar.EngineAvatarService` on the default
    engine (ONNX Runtime where it is importable, as the Serve deployment; the plain torch
    ``AvatarService`` otherwise), its step exported to ONNX into the cache on first use."""
    if not config.session.avatar:
        return None, None, "off (session.avatar=false)"
    from genxr.components.avatar.service import AvatarUnavailableError

    if config.bus.backend == "ray":  # its session clock starts when it is attached, after Ray is up
        params: dict[str, Any] = {"seed": config.session.seed, "guidance_scale": config.session.avatar_guidance_scale,
                                  "spatial": config.session.avatar_spatial}
        if config.session.avatar_checkpoint is not None:
            params["checkpoint"] = str(config.session.avatar_checkpoint)
        return ServedAvatar(params), None, "streaming (Ray Serve avatar deployment)"
    from genxr.deploy.engines.base import default_engine, describe_engine
    from genxr.deploy.export.cache import cache_folder
    from genxr.deploy.serving.avatar import EngineAvatarService

    conversation = make_conversation(config, start_time_ns, clock)  # a missing microphone stops it before loading
    engine = default_engine()
    slow = threading.Timer(AVATAR_EXPORT_NOTICE_S, _notice, [
        f"avatar: still loading its chunk step for {engine}; its first run exports it to ONNX into {cache_folder()} "
        "(once per checkpoint, ~40-90 s)"])
    slow.daemon = True
    if engine != "torch":
        slow.start()
    try:
        service = EngineAvatarService(start_time_ns, engine=engine, checkpoint=config.session.avatar_checkpoint,
                                      seed=config.session.seed, guidance_scale=config.session.avatar_guidance_scale,
                                      generator="generator" if config.session.avatar_spatial else "generator_no_user")
    except AvatarUnavailableError as err:
        return None, None, f"unavailable: {err}"
    finally:
        slow.cancel()
    return (service, conversation,
            f"streaming (in the session process, {describe_engine(service.engine)}, {service.model_base}, "
            f"gaze guidance {service.guidance_scale:g})")


def preview_display() -> str:
    """The display the preview window will open on; :class:`SessionError` saying what is missing without one."""
    from genxr.xr_runtime.preview import PREVIEW_HINT, display_name

    where = display_name()
    if where is None:
        raise SessionError(f"--preview needs a display: neither DISPLAY nor WAYLAND_DISPLAY is set; {PREVIEW_HINT}")
    return where


def open_preview(config: GenXRConfig):
    """The preview window ``display.preview`` asks for, as a context manager yielding it (None when off)."""
    if not config.display.preview:
        return nullcontext()
    from genxr.xr_runtime.preview import PreviewUnavailableError, PreviewWindowSink

    try:
        return PreviewWindowSink(config.display.width, config.display.height, max_hz=config.display.preview_max_hz)
    except PreviewUnavailableError as err:
        raise SessionError(str(err)) from err


def _prepare_folder(folder: Path) -> None:
    """Creates ``folder`` and checks it can be written; :class:`SessionError` if not, or if it
    already holds files (a new session would mix with an old one: see :func:`move_aside`)."""
    try:
        held = sorted(entry.name for entry in folder.iterdir()) if folder.is_dir() else []
    except OSError:
        held = []  # unreadable: the probe below says why
    if held:
        shown = ", ".join(held[:6]) + (", ..." if len(held) > 6 else "")
        raise SessionError(f"the session folder {str(folder)!r} is not empty ({shown}): a new session would mix "
                           "with what is there. Choose a new folder with --out, or move or delete this one.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise SessionError(f"cannot write the session folder {str(folder)!r}: {err.strerror or err}. "
                           "Choose another with --out.") from err


def move_aside(folder: str | os.PathLike[str]) -> Path | None:
    """Renames a non-empty ``folder`` to the first free ``<folder>.1``, ``<folder>.2``, ... so a
    new session can start in it (``genxr demo`` does this for its default folder); returns
    where it went, or None when there was nothing to move."""
    folder = Path(folder)
    if not folder.is_dir() or not any(folder.iterdir()):
        return None
    number = 1
    while True:
        target = folder.with_name(f"{folder.name}.{number}")
        if not target.exists() and not target.is_symlink():
            try:
                folder.rename(target)
            except OSError as err:
                raise SessionError(f"cannot move the previous session {str(folder)!r} aside to {str(target)!r}: "
                                   f"{err.strerror or err}. Choose another folder with --out.") from err
            return target
        number += 1


def check_duration(seconds: float, what: str = "seconds") -> float:
    """``seconds`` if it is a usable session length (finite, > 0); :class:`SessionError` naming ``what`` if not."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise SessionError(f"{what} must be a finite number of seconds > 0, got {seconds!r}")
    return value


class _Termination:
    """SIGTERM while a session runs. Until its recording is open it raises
    :class:`SessionTerminated`, as Ctrl-C raises KeyboardInterrupt (loading models can take
    long); from then on (``graceful``) it only sets ``received``: the frame loop stops before
    its next frame, no file is cut mid-write, and the session ends as after Ctrl-C."""

    def __init__(self) -> None:
        self.received: str | None = None
        self.graceful = False

    def __call__(self, signum: int, frame: object) -> None:
        self.received = "SIGTERM"
        if not self.graceful:
            raise SessionTerminated("SIGTERM")


@contextmanager
def _sigterm_handled(termination: _Termination) -> Iterator[None]:
    """Installs ``termination`` as the SIGTERM handler (main thread only) and restores the previous one."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, termination)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _is_disk_full(err: BaseException) -> bool:
    return getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in str(err) \
        or "Disk quota exceeded" in str(err)


def _write_failure(err: OSError, folder: Path, written: list[str], unwritten: list[str]) -> str:
    """What :class:`SessionError` says when writing the session failed."""
    cause = "no space left on device" if _is_disk_full(err) else "a file could not be written"
    detail = err.strerror or str(err)
    if err.filename is not None and str(err.filename) not in detail:
        detail += f" ({err.filename})"
    parts = [f"the session stopped: {cause}: {detail.rstrip('.')}.", "Every file that was open is closed."]
    if written:
        parts.append(f"Written: {', '.join(written)}.")
    if unwritten:
        parts.append(f"Not written: {', '.join(unwritten)}.")
    parts.append("Free some space on that disk, or choose a folder on another one with --out." if _is_disk_full(err)
                 else f"Check {str(folder)!r} and its disk, or choose another folder with --out.")
    return " ".join(parts)


def _open_bus(config: GenXRConfig, session_id: str, clock: Clock, tracer: Tracer | None,
              on_event: Callable[[str, str], None], attach_world: bool, avatar: Any = None) -> Bus:
    """The bus the config names; with Ray and ``attach_world``, the world model is a Serve
    deployment, and a :class:`ServedAvatar` ``avatar`` is attached to the avatar deployment."""
    if config.bus.backend == "inproc":
        return InProcessBus(clock=clock, tracer=tracer, workers=config.bus.workers,
                            handler_nice=config.bus.handler_nice)
    from genxr.deploy.serving.deployments import connect
    from genxr.deploy.serving.ray_bus import RayBus

    try:
        handles = connect(config.bus.ray_address, world_kind=f"world:{world_kind(config)}",
                          world_fold=config.session.world_fold)
    except Exception as err:  # Ray reports start/join failures with many exception types
        raise SessionError(f"cannot start or join Ray (address {config.bus.ray_address!r}): "
                           f"{type(err).__name__}: {err}") from err
    bus = RayBus(session_id, clock=clock, tracer=tracer, workers=config.bus.workers, on_event=on_event)
    if attach_world:
        bus.attach(WORLD_SERVICE, handles["world_model"], {"seed": config.session.seed})
    if isinstance(avatar, ServedAvatar):
        # frame 0 of the avatar's stream is now: starting Ray and deploying took tens of seconds
        avatar.params["start_time_ns"] = clock.now_ns()
        try:
            avatar.description = bus.attach(AVATAR_SERVICE, handles["avatar"], avatar.params)
        except ServiceUnavailableError as err:  # as in-process: the session runs on without an avatar
            avatar.unavailable = str(err)
    return bus


def run_session(config: GenXRConfig, folder: str | os.PathLike[str], *, seconds: float | None = None,
                clock: Clock = MONOTONIC, source: TrackingSource | None = None,
                world: tuple[str, Callable[[WorldFrameRequest], WorldFrame]] | None = None,
                on_progress: Callable[[int], None] | None = None, max_frames: int | None = None,
                sinks: Sequence[Sink] = ()) -> SessionResult:
    """Runs one session for ``seconds`` (default ``config.session.duration_s``) or ``max_frames``
    displayed frames, whichever comes first, into ``folder`` (new or empty); ``world`` = (name,
    handler) replaces the default world service; ``sinks`` also receive every display frame
    (after the session's own; the caller closes them). Ctrl-C or SIGTERM end it early with
    ``interrupted`` set; a file that cannot be written ends it with :class:`SessionError`
    (its ``result`` is the stopped session's) once everything that could be closed and written was."""
    folder = Path(folder)
    duration_s = check_duration(config.session.duration_s if seconds is None else seconds,
                                "session.duration_s" if seconds is None else "seconds")
    _prepare_folder(folder)
    termination = _Termination()
    with _sigterm_handled(termination):
        return _run_session(config, folder, duration_s, clock, source, world, on_progress, max_frames, termination,
                            tuple(sinks))


def _run_session(config: GenXRConfig, folder: Path, duration_s: float, clock: Clock, source: TrackingSource | None,
                 world: tuple[str, Callable[[WorldFrameRequest], WorldFrame]] | None,
                 on_progress: Callable[[int], None] | None, max_frames: int | None,
                 termination: _Termination, extra_sinks: tuple[Sink, ...] = ()) -> SessionResult:
    if config.runtime.torch_threads is not None:
        import torch

        torch.set_num_threads(config.runtime.torch_threads)
    tracer = Tracer(clock=clock, max_spans=config.tracing.max_spans)
    source = source or make_source(config, clock)
    if world is not None:
        world_name, world_handler = world
    elif config.bus.backend == "ray":
        world_name, world_handler = f"{world_kind(config)} (Ray Serve)", None
    else:
        world_name, world_handler = make_world(config)
    avatar, conversation, avatar_note = make_avatar(config, clock.now_ns(), clock)
    display = config.display
    compositor = Compositor(CompositorConfig(width=display.width, height=display.height,
                                             vertical_fov_deg=display.vertical_fov_deg,
                                             stale_after_ms=display.stale_after_ms))
    hud = Hud(HudConfig(corner=display.hud_corner, items=display.hud_items)) if display.hud else None
    if display.preview:
        preview_display()  # no display: stop before anything starts
    metadata = {"genxr": __version__, "python": stdlib_platform.python_version(), "world_model": world_name,
                "avatar": avatar_note, "config": json.loads(config.model_dump_json())}
    interrupted_by: str | None = None
    source_lost: str | None = None
    failure: OSError | None = None
    """The first write that failed once the session had started."""
    loop: FrameLoop | None = None
    started = False

    def bus_event(kind: str, detail: str) -> None:
        if loop is not None:
            loop.emit(kind, detail)

    try:
        with ExitStack() as files:
            # spans.jsonl: every span as it closes (what `genxr dashboard --live` follows, and
            # what trace.json and the stage percentiles are computed from at the end)
            spans = files.enter_context(LiveSpanWriter(tracer, folder / LIVE_SPANS_FILE))
            bus = files.enter_context(_open_bus(config, folder.name, clock, tracer if config.tracing.enabled else None,
                                                bus_event, attach_world=world_handler is None, avatar=avatar))
            recorder = files.enter_context(Recorder(folder / "recording", metadata=metadata))
            termination.graceful = True  # the recording exists: SIGTERM now ends the session at its next frame
            video = files.enter_context(VideoSink(folder / "session.mp4", fps=config.session.display_rate_hz))
            if world_handler is not None:
                bus.serve(WORLD_SERVICE, world_handler)
            if isinstance(avatar, ServedAvatar):
                avatar_note = recorder.metadata["avatar"] = avatar.note()
                if avatar.rate_hz is None:
                    avatar = None
                else:
                    conversation = make_conversation(config, avatar.params["start_time_ns"], clock)
            elif avatar is not None:
                bus.serve(AVATAR_SERVICE, avatar)
            # the models answer once before the source starts the trial's clock (sim and replay start at enter);
            # Serve replicas load and warm their engines when they start, and hold only sessions opened on them
            warm_ups = {} if config.bus.backend == "ray" else warm_up(
                bus, clock, tracer, folder.name, world_service=WORLD_SERVICE,
                avatar_service=AVATAR_SERVICE if avatar is not None else None)
            files.enter_context(source)
            headset = files.enter_context(headset_sink(source, display.width, display.height))
            preview = files.enter_context(open_preview(config))
            if conversation is not None:  # a live one starts now, recorded into audio/ (closed before the recording)
                from genxr.xr_runtime.audio import AudioError, open_conversation

                try:
                    conversation = files.enter_context(open_conversation(conversation, folder, clock,
                                                                         recorder.metadata))
                except AudioError as err:
                    raise SessionError(f"cannot start the live conversation: {err}") from err

            def on_frame(frame):
                if "display_rate_hz" not in recorder.metadata:  # the rate the display is paced at: a runtime's own
                    recorder.metadata["display_rate_hz"] = loop.metrics.summary()["display_rate_hz"]
                recorder.add_frame(frame)
                if on_progress is not None:
                    on_progress(frame.frame_id)

            def should_stop() -> bool:
                return termination.received is not None or spans.error is not None or \
                    (preview is not None and preview.closed)

            loop = FrameLoop(session_id=folder.name, source=source, bus=bus, compositor=compositor,
                             sinks=([headset] if headset is not None else []) + [video, *extra_sinks]
                             + ([preview] if preview is not None else []), hud=hud,
                             clock=clock, tracer=tracer, world_service=WORLD_SERVICE,
                             display_clock=DisplayClock(config.session.display_rate_hz, clock),
                             request_timeout_s=config.bus.request_timeout_ms / MS_PER_S,
                             world_rate_hz=config.session.world_rate_hz,
                             avatar_service=AVATAR_SERVICE if avatar is not None else None,
                             avatar_rate_hz=avatar.rate_hz if avatar is not None else None,
                             conversation=conversation.chunks if conversation is not None else None,
                             on_frame=on_frame, on_event=recorder.add_event,
                             added_latency_ms=display.added_latency_ms, warmup_s=config.session.warmup_s)
            started = True
            try:
                loop.emit("started", f"source={config.session.source} world={world_name} avatar={avatar_note}")
                loop.run(duration_s=duration_s, max_frames=max_frames, should_stop=should_stop)
            except KeyboardInterrupt:
                interrupted_by = "Ctrl-C"
            except TrackingSourceLost as err:  # the headset's runtime went away: end as an interruption
                interrupted_by, source_lost = "tracking source lost", str(err)
            except OSError as err:  # a recording chunk or a sink's file could not be written
                failure = err
            interrupted_by = interrupted_by or termination.received
            failure = failure or spans.error
            if failure is not None:
                stopped = f"write failed: {failure}"
            elif source_lost is not None:
                stopped = f"tracking source lost: {source_lost}"
            elif interrupted_by is not None:
                stopped = f"interrupted ({interrupted_by})"
            else:
                stopped = "preview window closed" if preview is not None and preview.closed else "finished"
            try:
                loop.emit("stopped", stopped)
            except OSError as err:
                failure = failure or err
            recorder.metadata["ended"] = "failed" if failure else "interrupted" if interrupted_by else "finished"
            stats = bus.stats
            served = dict(getattr(bus, "attached", {}))  # Ray Serve: what each replica says serves the session
    except OSError as err:  # closing a file failed (the recorder's last chunk, the mp4, the span stream)
        if not started:
            raise
        failure = failure or err
    failure = failure or spans.error
    written, unwritten = [], []
    stages: dict[str, Any] = {}
    span_file = None
    try:
        span_file = spans.read()
        stages = span_file.summary()
    except OSError as err:
        failure = failure or err
        unwritten.append("trace.json")
    interrupted = interrupted_by is not None
    metrics = {**loop.metrics.summary(), "stages": stages, "dropped_spans": spans.missed_spans,
               "bus": vars(stats), "world_model": world_name, "avatar": avatar_note, "interrupted": interrupted,
               "stopped": stopped, "write_failed": None if failure is None else str(failure), "served": served,
               "video_frames": video.frames, "video_dropped_frames": video.dropped_frames, "warm_up": warm_ups}
    outputs = [("metrics.json", lambda path: write_json_atomic(path, metrics))]
    if span_file is not None:
        outputs.append(("trace.json", lambda path: span_file.write_chrome_trace(
            path, process_name=tracer.process_name, dropped_spans=spans.missed_spans)))
    for name, write in outputs:
        try:
            write(folder / name)
            written.append(name)
        except OSError as err:
            failure = failure or OSError(err.errno, f"cannot write {str(folder / name)!r}: {err.strerror or err}",
                                         str(folder / name))
            unwritten.append(name)
            (folder / f"{name}.tmp").unlink(missing_ok=True)  # a torn temp file frees its space
    notes = [f"{name} over Ray Serve: {d.get('model', d.get('kind'))} (engine {d.get('engine') or 'torch'})"
             for name, d in served.items()]
    result = SessionResult(folder=folder, metrics=metrics, interrupted=interrupted, interrupted_by=interrupted_by,
                           world_model=world_name, avatar=avatar_note, notes=notes, source_lost=source_lost)
    if failure is not None:
        raise SessionError(_write_failure(failure, folder, written, unwritten), result) from failure
    return result

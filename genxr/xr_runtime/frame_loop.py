"""The frame loop: one iteration per display refresh, never waiting on a model.

Each frame:

1. **wait** - the source's ``wait_frame`` (OpenXR's xrWaitFrame) or the loop's
   :class:`DisplayClock` releases the loop and predicts the display time;
2. **read** - the tracking source samples head and hands for that display time; a source
   that fails validation (a NaN pose), gives a frame whose id or sample time does not
   increase (:class:`~genxr.platform.messages.StreamOrder`, the sources' contract) or has
   lost tracking leaves the last good head pose in place and is logged as
   ``tracking_lost``. Only frames that keep the stream in order are passed on (to the
   requests, ``on_frame`` and so the recording); a held frame that cannot is only displayed;
   with ``added_latency_ms`` (the study condition ``display.added_latency_ms``) the frame
   goes through a delay line: the requests, the re-projection and motion-to-photon use the
   frame sampled closest to that long before it (the oldest one until the line holds that
   much), as if the system's motion-to-photon latency were that much larger; the recording
   still gets every frame as the source gave it;
3. **request** - the newest tracking is sent to the world-model and avatar services with
   ``request_async``. Latest-value semantics: at most one request per service is in
   flight; while it is, newer tracking only replaces what the next request will carry, so
   no stale request ever queues up;
4. **collect** - responses that arrived are taken; a deadline that passed or a service
   that failed is logged, and the loop keeps re-projecting the last content (marked stale
   by the compositor once it is too old);
5. **composite + submit** - the compositor re-projects the newest world frame to the
   head pose predicted for display, the optional latency HUD (:mod:`genxr.xr_runtime.hud`)
   is drawn into a corner, and every sink gets the result.

Every step is a span on its own track, tagged with the frame id and the tracking samples
it used, so a trace shows where each millisecond of every frame went.

Before the first frame, :func:`warm_up` has each service answer one request (models loaded and
warmed before a trial's clock starts); the loop's first ``warmup_s`` seconds then run as any
others but are left out of its metrics' summary (:meth:`LoopMetrics.end_warmup`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import ValidationError

from genxr.components.avatar.metrics import gaze_and_facing_deg
from genxr.platform.bus import Bus, BusError, PendingResponse, RequestTimeoutError, Service
from genxr.platform.clock import Clock
from genxr.platform.messages import (
    INT64_MAX,
    AudioChunk,
    AvatarMotion,
    AvatarRequest,
    DisplayFrame,
    Pose,
    SessionEvent,
    StreamOrder,
    TrackingFrame,
    WorldFrame,
    WorldFrameRequest,
)
from genxr.platform.tracing import Tracer
from genxr.platform.units import NS_PER_MS, NS_PER_S
from genxr.xr_runtime.compositor import Compositor
from genxr.xr_runtime.hud import Hud
from genxr.xr_runtime.metrics import LoopMetrics
from genxr.xr_runtime.sinks import Sink
from genxr.xr_runtime.sources import TrackingSource
from genxr.xr_runtime.timing import DisplayClock, FrameTiming
from genxr.xr_runtime.views import DisplayView

_SAMPLE_TIMES_KEPT = 2048
"""Tracking frames remembered for content latency: ~23 s at 90 Hz, far beyond any deadline."""
_DELAY_LINE_KEPT = 4096
"""Most tracking frames the added-latency delay line holds: 1000 ms (the largest delay) at 4 kHz."""
MAX_ADDED_LATENCY_MS = 1000.0
"""Largest ``added_latency_ms`` (``display.added_latency_ms``)."""
WARM_UP_TIMEOUT_S = 60.0
"""How long :func:`warm_up` waits for each service's answer (a first call may load or compile)."""
WARM_UP_FRAME_ID = INT64_MAX
"""Frame id of the warm-up request's tracking frame: one no source gives (they count from 0), so the
trace binds no session frame's flow to the warm-up (and within the span file's int64 frame ids)."""


def warm_up_session_id(session_id: str) -> str:
    """The session id warm-up requests carry: never ``session_id`` itself (at most 128 characters),
    so a service that keeps state per session (the world-model student) starts the session afresh."""
    return f"{session_id[:119]}:warm-up"


def warm_up(bus: Bus, clock: Clock, tracer: Tracer, session_id: str,
            world_service: Service[WorldFrameRequest, WorldFrame] | None = None,
            avatar_service: Service[AvatarRequest, AvatarMotion] | None = None,
            timeout_s: float = WARM_UP_TIMEOUT_S) -> dict[str, dict[str, float | str | None]]:
    """Has each given service answer one request, one after the other, and waits for it (up to
    ``timeout_s`` seconds each): the world one tracking frame (head at the origin, sampled now, id
    :data:`WARM_UP_FRAME_ID`), the avatar the time now without head or audio; both under
    :func:`warm_up_session_id`. Call it before the session's tracking source starts, so the first
    calls' cost (loading, compiling, first allocations) lands on no frame. No frame loop counts it:
    the trace shows a ``warm_up <service>`` span (on the ``loop`` track) around each request.

    Returns per service name ``{"ms": wall time of the request, "error": None or what failed}``; a
    failure does not raise (the loop meets a failing service as ever)."""
    warm_id = warm_up_session_id(session_id)
    requests: list[tuple[Service, Callable[[int], object]]] = []
    if world_service is not None:
        requests.append((world_service, lambda now: WorldFrameRequest(
            session_id=warm_id, request_id=0, tracking=[TrackingFrame(
                frame_id=WARM_UP_FRAME_ID, sample_time_ns=now, predicted_display_time_ns=now, head=Pose())])))
    if avatar_service is not None:
        requests.append((avatar_service, lambda now: AvatarRequest(session_id=warm_id, request_id=0, time_ns=now)))
    results: dict[str, dict[str, float | str | None]] = {}
    for service, build in requests:
        start = clock.now_ns()
        error = None
        with tracer.span(f"warm_up {service.name}", track="loop"):
            try:
                bus.request(service, build(start), timeout_s)
            except BusError as err:
                error = str(err)
        results[service.name] = {"ms": (clock.now_ns() - start) / NS_PER_MS, "error": error}
    return results


class _ServiceSlot:
    """One model service from the loop's side: at most one request in flight, and no more
    than ``rate_hz`` requests a second (a model that could run flat out would otherwise take
    a core from the loop for updates nobody asked for).

    Requests are due on a fixed schedule, ``1 / rate_hz`` apart, not ``1 / rate_hz`` after the
    last send: on a display grid that does not divide the period (a 133 ms avatar chunk at
    90 Hz) the sends then average the rate instead of slipping a display frame every time. A
    slot that fell a whole period behind (a slow model) starts a new schedule from now
    rather than sending a burst.
    """

    def __init__(self, service: Service, timeout_s: float, rate_hz: float | None) -> None:
        if rate_hz is not None and rate_hz <= 0:
            raise ValueError(f"request rate for {service.name!r} must be > 0 Hz, got {rate_hz}")
        self.service = service
        self.timeout_s = timeout_s
        self.min_interval_ns = 0 if rate_hz is None else round(NS_PER_S / rate_hz)
        self.next_due_ns: int | None = None
        """When the next request may be sent (None: at once)."""
        self.pending: PendingResponse | None = None
        self.latest = None
        self.next_request_id = 0


class FrameLoop:
    """Runs a session's frames from ``source`` to ``sinks`` (see module docstring)."""

    def __init__(self, *, session_id: str, source: TrackingSource, bus: Bus, compositor: Compositor,
                 sinks: Sequence[Sink], clock: Clock, tracer: Tracer,
                 world_service: Service[WorldFrameRequest, WorldFrame] | None = None,
                 avatar_service: Service[AvatarRequest, AvatarMotion] | None = None,
                 display_clock: DisplayClock | None = None, chunk_frames: int = 4,
                 request_timeout_s: float = 0.25, world_rate_hz: float | None = None,
                 avatar_rate_hz: float | None = None,
                 conversation: Callable[[int, int], list[AudioChunk]] | None = None, on_frame: Callable[[TrackingFrame], None] | None = None,
                 on_event: Callable[[SessionEvent], None] | None = None, hud: Hud | None = None,
                 added_latency_ms: float = 0.0, warmup_s: float = 0.0) -> None:
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        if not (math.isfinite(added_latency_ms) and 0 <= added_latency_ms <= MAX_ADDED_LATENCY_MS):
            raise ValueError(f"added_latency_ms must be a finite number of ms in [0, {MAX_ADDED_LATENCY_MS:g}], "
                             f"got {added_latency_ms!r}")
        if not (math.isfinite(warmup_s) and warmup_s >= 0):
            raise ValueError(f"warmup_s must be a finite number of seconds >= 0, got {warmup_s!r}")
        self.session_id = session_id
        self.source, self.bus, self.compositor, self.sinks = source, bus, compositor, list(sinks)
        self.clock, self.tracer = clock, tracer
        self.display_clock = display_clock or DisplayClock(clock=clock)
        self.world = _ServiceSlot(world_service, request_timeout_s, world_rate_hz) if world_service else None
        self.avatar = _ServiceSlot(avatar_service, request_timeout_s, avatar_rate_hz) if avatar_service else None
        self.chunk_frames = chunk_frames
        self.conversation = conversation
        self._audio_until_ns: int | None = None
        self.on_frame, self.on_event = on_frame, on_event
        self.hud = hud
        self.metrics = LoopMetrics()
        self.events: list[SessionEvent] = []
        self._recent: deque[TrackingFrame] = deque(maxlen=chunk_frames)
        self._last_good: TrackingFrame | None = None
        self._order = StreamOrder("tracking source")
        """Every frame passed on; the source's frames are checked against it as they are read."""
        self._display_only = False
        """The frame just read is a held one that does not advance the stream: shown, not passed on."""
        self._tracking_lost = False
        self._last_shown_world_id: int | None = None
        self._shown_world_sampled_ns: int | None = None
        """Sample time of the tracking the world frame on screen was generated from (None: unknown)."""
        self._sample_time_of: dict[int, int] = {}
        """Sample time of recent tracking frames by id (bounded), for content latency and age."""
        self.added_latency_ns = round(added_latency_ms * NS_PER_MS)
        self._delay_line: deque[tuple[TrackingFrame, tuple[DisplayView, ...]]] = deque(maxlen=_DELAY_LINE_KEPT)
        """Frames passed on, oldest first, with their views, back to the one the delay picks."""
        self.warmup_ns = round(warmup_s * NS_PER_S)
        self._run_start_ns: int | None = None
        self._warmup_until_ns: int | None = None
        """When the running loop's warm-up ends (None: none, or over)."""

    def emit(self, kind: str, detail: str = "") -> None:
        event = SessionEvent(session_id=self.session_id, time_ns=self.clock.now_ns(), kind=kind, detail=detail[:4096])
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def run(self, max_frames: int | None = None, duration_s: float | None = None,
            should_stop: Callable[[], bool] | None = None) -> LoopMetrics:
        """Runs until the source ends, ``max_frames`` displayed frames (warm-up included) or
        ``duration_s`` is reached, or ``should_stop()``; the first ``warmup_s`` seconds are the
        warm-up. The metrics' duration is set however it ends (an exception too)."""
        start = self._run_start_ns = self.clock.now_ns()
        end = None if duration_s is None else start + int(duration_s * NS_PER_S)
        self._warmup_until_ns = start + self.warmup_ns if self.warmup_ns else None
        try:
            while max_frames is None or self.metrics.frames < max_frames:
                if should_stop is not None and should_stop():
                    break
                if end is not None and self.clock.now_ns() >= end:
                    break
                if not self.step():
                    break
        finally:
            self.metrics.duration_ns = self.clock.now_ns() - start
            last_margin = getattr(self.source, "last_end_margin_ns", None)  # a runtime's: the final xrEndFrame
            margin = last_margin() if callable(last_margin) else None
            if margin is not None:
                self.metrics.end_frame_margin_ns.append(margin)
            if self._warmup_until_ns is not None:  # it ended within its warm-up: none of it is measured
                self._end_warmup()
        return self.metrics

    def _end_warmup(self) -> None:
        self.metrics.end_warmup(self.clock.now_ns() - self._run_start_ns)
        self._warmup_until_ns = None

    def _wait(self) -> FrameTiming:
        with self.tracer.span("wait_frame", track="loop"):
            timing = self.source.wait_frame() if self.source.paces_display else self.display_clock.wait_frame()
        self.metrics.missed_frames += timing.missed_frames
        self.metrics.display_period_ns = timing.display_period_ns
        if timing.previous_end_margin_ns is not None:  # a runtime's xrEndFrame of the previous frame
            self.metrics.end_frame_margin_ns.append(timing.previous_end_margin_ns)
        return timing

    def _read(self, timing: FrameTiming) -> TrackingFrame | None:
        self._display_only = False
        with self.tracer.span("read_tracking", track="tracking", frame_id=timing.frame_id):
            try:
                frame = self.source.read(timing)
                if frame is not None:
                    self._order.check(frame)
            except ValidationError as err:
                first = err.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                frame = self._hold_last(timing, f"source gave an invalid frame: {where}: {first['msg']} "
                                                f"(got {first.get('input')!r})")
        if frame is None:
            return None
        lost = not frame.head_tracked
        if lost != self._tracking_lost:
            self.emit("tracking_lost" if lost else "tracking_regained", "head")
            self._tracking_lost = lost
        if lost:
            self.metrics.tracking_lost_frames += 1
            if self._last_good is not None:  # keep showing the world from the last good head pose
                frame = frame.model_copy(update={"head": self._last_good.head})
        else:
            self._last_good = frame
        return frame

    def _hold_last(self, timing: FrameTiming, reason: str) -> TrackingFrame:
        if not self._tracking_lost:
            self.emit("tracking_lost", reason)
            self._tracking_lost = True
        now = self.clock.now_ns()
        previous = self._last_good
        held = TrackingFrame(frame_id=timing.frame_id, sample_time_ns=now,
                             predicted_display_time_ns=max(now, timing.predicted_display_time_ns),
                             head=previous.head if previous else Pose(),
                             head_tracked=False)
        try:
            self._order.check(held)
        except ValidationError:  # e.g. the source repeated a frame id: show it, keep it out of the stream
            self._display_only = True
        return held

    def _collect(self, slot: _ServiceSlot | None, frame_id: int) -> bool:
        """Takes a finished response into ``slot.latest``; True if a new one arrived."""
        if slot is None or slot.pending is None or not slot.pending.done():
            return False
        name = slot.service.name
        pending, slot.pending = slot.pending, None
        try:
            with self.tracer.span(f"receive {name}", track="loop", frame_id=frame_id):
                slot.latest = pending.result()
            return True
        except RequestTimeoutError as err:
            self.metrics.timeouts[name] = self.metrics.timeouts.get(name, 0) + 1
            self.emit("deadline_missed", str(err))
        except BusError as err:
            self._failed(name, err)
        return False

    def _failed(self, name: str, err: BusError) -> None:
        self.metrics.failures[name] = self.metrics.failures.get(name, 0) + 1
        self.emit("model_failed", str(err))

    def _send(self, slot: _ServiceSlot | None, build: Callable[[int], object], frame_id: int) -> None:
        if slot is None or slot.pending is not None:
            return  # one in flight: newer tracking waits for the next request instead of queueing
        now = self.clock.now_ns()
        if slot.next_due_ns is not None and now < slot.next_due_ns:
            return
        on_schedule = slot.next_due_ns is not None and now - slot.next_due_ns < slot.min_interval_ns
        slot.next_due_ns = (slot.next_due_ns if on_schedule else now) + slot.min_interval_ns
        with self.tracer.span(f"request {slot.service.name}", track="loop", frame_id=frame_id):
            try:
                slot.pending = self.bus.request_async(slot.service, build(slot.next_request_id), slot.timeout_s)
            except BusError as err:
                self._failed(slot.service.name, err)
                return
        slot.next_request_id += 1

    def _measure_gaze(self, motion: AvatarMotion | None, frame: TrackingFrame) -> None:
        """The gaze and facing angles of ``motion``'s frames toward the user's head in ``frame``."""
        if motion is None or not frame.head_tracked:
            return
        head = np.tile(np.asarray(frame.head.position, np.float64), (motion.root_translation.shape[0], 1))
        gaze, facing = gaze_and_facing_deg(motion.rotations_6d, motion.root_translation, head)
        self.metrics.avatar_gaze_deg += gaze.tolist()
        self.metrics.avatar_facing_deg += facing.tolist()

    def _avatar_request(self, request_id: int, frame: TrackingFrame) -> AvatarRequest:
        """The user's head (None while untracked) and both speakers' audio since the last request:
        the microphone's chunk when the source carries one, else the conversation script's."""
        audio = {}
        if self.conversation is not None:
            start = frame.sample_time_ns if self._audio_until_ns is None else self._audio_until_ns
            audio = {chunk.speaker: chunk for chunk in self.conversation(start, frame.sample_time_ns)}
            self._audio_until_ns = frame.sample_time_ns
        if frame.audio is not None:
            audio["user"] = frame.audio
        return AvatarRequest(session_id=self.session_id, request_id=request_id, time_ns=frame.sample_time_ns,
                             user_head=frame.head if frame.head_tracked else None,
                             user_audio=audio.get("user"), agent_audio=audio.get("agent"))

    def _delayed(self, frame: TrackingFrame, views: tuple[DisplayView, ...]
                 ) -> tuple[TrackingFrame, tuple[DisplayView, ...], bool]:
        """(tracking frame, views, whether it was passed on) the rest of the step uses: ``frame`` itself
        without added latency, else the frame of the delay line sampled closest to ``added_latency_ns``
        before ``frame`` (ties: the older; the oldest while the line is shorter than the delay)."""
        if not self.added_latency_ns:
            return frame, views, not self._display_only
        line = self._delay_line
        if not self._display_only:
            line.append((frame, views))
        if not line:  # nothing passed on yet: a held frame shows as it is
            return frame, views, False
        target = frame.sample_time_ns - self.added_latency_ns
        while len(line) > 1 and line[1][0].sample_time_ns <= target:
            line.popleft()
        used = line[0]
        if len(line) > 1 and line[1][0].sample_time_ns - target < target - line[0][0].sample_time_ns:
            used = line[1]
        return used[0], used[1], True

    def _content_sampled(self, world: WorldFrame | None) -> tuple[int | None, bool]:
        """(sample time of the tracking ``world`` was generated from, None if unknown; whether this
        frame is the first to show it)."""
        if world is None:
            return None, False
        if world.frame_id == self._last_shown_world_id:
            return self._shown_world_sampled_ns, False
        self._last_shown_world_id = world.frame_id
        self._shown_world_sampled_ns = self._sample_time_of.get(world.frame_id)
        return self._shown_world_sampled_ns, True

    def step(self) -> bool:
        """One display frame; False when the source has ended. A frame woken within the run's
        first ``warmup_s`` seconds belongs to its warm-up."""
        timing = self._wait()
        if self._warmup_until_ns is not None and timing.wake_time_ns >= self._warmup_until_ns:
            self._end_warmup()
        frame = self._read(timing)
        if frame is None:
            return False
        if not self._display_only:
            if self.on_frame is not None:
                self.on_frame(frame)
            self._sample_time_of[frame.frame_id] = frame.sample_time_ns
        used, views, passed_on = self._delayed(frame, timing.views)
        if passed_on and (not self._recent or used.frame_id != self._recent[-1].frame_id):
            self._recent.append(used)
        frame_id = frame.frame_id
        if self._collect(self.world, frame_id):
            self.metrics.world_updates += 1
        if self._collect(self.avatar, frame_id):
            self.metrics.avatar_updates += 1
            self._measure_gaze(self.avatar.latest, used)
        self._send(self.world, lambda rid: WorldFrameRequest(session_id=self.session_id, request_id=rid,
                                                             tracking=list(self._recent)), frame_id)
        self._send(self.avatar, lambda rid: self._avatar_request(rid, used), frame_id)
        world = self.world.latest if self.world else None
        avatar = self.avatar.latest if self.avatar else None
        content_sampled_ns, first_shown = self._content_sampled(world)
        composite_start = self.clock.now_ns()
        with self.tracer.span("composite", track="compositor", frame_id=frame_id,
                              source_frame_ids=[used.frame_id] + ([world.frame_id] if world else [])):
            shown = self.compositor.composite(frame_id, timing.predicted_display_time_ns, used.head, world, avatar,
                                              views=views, content_sampled_ns=content_sampled_ns)
        self.metrics.compositor_ns.append(self.clock.now_ns() - composite_start)
        if self.hud is not None:
            with self.tracer.span("hud", track="compositor", frame_id=frame_id):
                shown = self.hud.apply(shown, self.metrics, tracking_lost=self._tracking_lost)
        self._submit(shown)
        self._account(timing, used, shown, content_sampled_ns is not None, first_shown)
        return True

    def _submit(self, shown: DisplayFrame) -> None:
        for sink in self.sinks:
            with self.tracer.span(f"submit {sink.name}", track="sink", frame_id=shown.frame_id):
                sink.submit(shown)

    def _account(self, timing: FrameTiming, used: TrackingFrame, shown: DisplayFrame, content_known: bool,
                 first_shown: bool) -> None:
        """Adds the frame to the metrics: ``used`` is the tracking frame it was re-projected with;
        ``content_known`` whether ``shown.content_age_ns`` is measured from its content's sample time,
        ``first_shown`` whether it is the first frame showing that content."""
        metrics = self.metrics
        metrics.frames += 1
        metrics.frame_time_ns.append(self.clock.now_ns() - timing.wake_time_ns)
        metrics.rotational_m2p_ns.append(shown.display_time_ns - used.sample_time_ns)
        if shown.stale:
            metrics.stale_frames += 1
        if content_known and shown.content_age_ns is not None:
            metrics.content_age_ns.append(shown.content_age_ns)
            if first_shown:
                metrics.content_latency_ns.append(shown.content_age_ns)
        while len(self._sample_time_of) > _SAMPLE_TIMES_KEPT:
            del self._sample_time_of[next(iter(self._sample_time_of))]

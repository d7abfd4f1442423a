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
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from genxr.platform.bus import Bus, BusError, PendingResponse, RequestTimeoutError, Service
from genxr.platform.clock import Clock
from genxr.platform.messages import (
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
from genxr.platform.units import NS_PER_S
from genxr.xr_runtime.compositor import Compositor
from genxr.xr_runtime.hud import Hud
from genxr.xr_runtime.metrics import LoopMetrics
from genxr.xr_runtime.sinks import Sink
from genxr.xr_runtime.sources import TrackingSource
from genxr.xr_runtime.timing import DisplayClock, FrameTiming

_SAMPLE_TIMES_KEPT = 2048
"""Tracking frames remembered for content latency: ~23 s at 90 Hz, far beyond any deadline."""


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
                 on_event: Callable[[SessionEvent], None] | None = None, hud: Hud | None = None) -> None:
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
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
        self._sample_time_of: dict[int, int] = {}
        """Sample time of recent tracking frames by id (bounded), for content latency."""

    def emit(self, kind: str, detail: str = "") -> None:
        event = SessionEvent(session_id=self.session_id, time_ns=self.clock.now_ns(), kind=kind, detail=detail[:4096])
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def run(self, max_frames: int | None = None, duration_s: float | None = None,
            should_stop: Callable[[], bool] | None = None) -> LoopMetrics:
        """Runs until the source ends, ``max_frames`` or ``duration_s`` is reached, or ``should_stop()``."""
        start = self.clock.now_ns()
        end = None if duration_s is None else start + int(duration_s * NS_PER_S)
        while max_frames is None or self.metrics.frames < max_frames:
            if should_stop is not None and should_stop():
                break
            if end is not None and self.clock.now_ns() >= end:
                break
            if not self.step():
                break
        self.metrics.duration_ns = self.clock.now_ns() - start
        return self.metrics

    def _wait(self) -> FrameTiming:
        with self.tracer.span("wait_frame", track="loop"):
            timing = self.source.wait_frame() if self.source.paces_display else self.display_clock.wait_frame()
        self.metrics.missed_frames += timing.missed_frames
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

    def step(self) -> bool:
        """One display frame; False when the source has ended."""
        timing = self._wait()
        frame = self._read(timing)
        if frame is None:
            return False
        if not self._display_only:
            if self.on_frame is not None:
                self.on_frame(frame)
            self._recent.append(frame)
            self._sample_time_of[frame.frame_id] = frame.sample_time_ns
        frame_id = frame.frame_id
        if self._collect(self.world, frame_id):
            self.metrics.world_updates += 1
        if self._collect(self.avatar, frame_id):
            self.metrics.avatar_updates += 1
        self._send(self.world, lambda rid: WorldFrameRequest(session_id=self.session_id, request_id=rid,
                                                             tracking=list(self._recent)), frame_id)
        self._send(self.avatar, lambda rid: self._avatar_request(rid, frame), frame_id)
        world = self.world.latest if self.world else None
        avatar = self.avatar.latest if self.avatar else None
        composite_start = self.clock.now_ns()
        with self.tracer.span("composite", track="compositor", frame_id=frame_id,
                              source_frame_ids=[frame_id] + ([world.frame_id] if world else [])):
            shown = self.compositor.composite(frame_id, timing.predicted_display_time_ns, frame.head, world, avatar,
                                              views=timing.views)
        self.metrics.compositor_ns.append(self.clock.now_ns() - composite_start)
        if self.hud is not None:
            with self.tracer.span("hud", track="compositor", frame_id=frame_id):
                shown = self.hud.apply(shown, self.metrics, tracking_lost=self._tracking_lost)
        self._submit(shown)
        self._account(timing, frame, shown)
        return True

    def _submit(self, shown: DisplayFrame) -> None:
        for sink in self.sinks:
            with self.tracer.span(f"submit {sink.name}", track="sink", frame_id=shown.frame_id):
                sink.submit(shown)

    def _account(self, timing: FrameTiming, frame: TrackingFrame, shown: DisplayFrame) -> None:
        metrics = self.metrics
        metrics.frames += 1
        metrics.frame_time_ns.append(self.clock.now_ns() - timing.wake_time_ns)
        metrics.rotational_m2p_ns.append(shown.display_time_ns - frame.sample_time_ns)
        if shown.stale:
            metrics.stale_frames += 1
        world_id = shown.world_frame_id
        if world_id is not None and world_id != self._last_shown_world_id:
            self._last_shown_world_id = world_id
            sampled = self._sample_time_of.get(world_id)
            if sampled is not None:
                metrics.content_latency_ns.append(shown.display_time_ns - sampled)
        while len(self._sample_time_of) > _SAMPLE_TIMES_KEPT:
            del self._sample_time_of[next(iter(self._sample_time_of))]

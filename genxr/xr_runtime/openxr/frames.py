"""One OpenXR session's frames: events, wait/begin, the views, and exactly one end per frame.

OpenXR requires, for every ``xrWaitFrame``, one ``xrBeginFrame`` and one ``xrEndFrame``
(layers or none), and ``xrEndSession`` only once no frame is open. Two parts of genxr
take part in a frame - the tracking source opens it (:meth:`OpenXRFrameCycle.begin`, at
the top of the frame loop's iteration) and the swapchain sink closes it with the projection
layer (:meth:`OpenXRFrameCycle.end`, after compositing) - so this object owns the
rule: a frame nobody ended (no sink, a sink that failed, the loop stopped) is ended with
no layers before the next one is waited for, and when the session stops or closes.

Each frame, while ``should_render``, it locates the views (``xrLocateViews``, the session's
view configuration - PRIMARY_STEREO for a headset - at the predicted display time in the
reference space). Valid views reach the frame loop through ``FrameTiming.views`` (see
:mod:`genxr.xr_runtime.timing`) and the compositor renders one image per view; the raw
``xr.View`` structs stay with the open frame so the sink submits exactly the poses and
fields of view the images were rendered for. Views whose poses the runtime marks invalid
are not used: the frame is then ended with no layers (the runtime keeps showing its last).

``calls`` is the part of pyopenxr's function API used here and by the swapchain sink
(:class:`OpenXRCalls`): the ``xr`` module itself in a session, a recording fake in the
unit tests (no runtime can exist on a CI machine). Structs are always pyopenxr's own.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from genxr.platform.clock import MONOTONIC, Clock
from genxr.platform.messages import Pose
from genxr.xr_runtime.openxr.convert import SessionAction, SessionStateMachine, pose_from_xr
from genxr.xr_runtime.views import DisplayView, ViewFov


class OpenXRCalls(Protocol):
    """The pyopenxr functions the frame cycle and the swapchain sink call (same names and
    arguments as the ``xr`` module, which is the implementation in a real session)."""

    def poll_event(self, instance: Any) -> Any: ...
    def begin_session(self, session: Any, begin_info: Any) -> None: ...
    def end_session(self, session: Any) -> None: ...
    def wait_frame(self, session: Any, frame_wait_info: Any = None) -> Any: ...
    def begin_frame(self, session: Any, frame_begin_info: Any = None) -> None: ...
    def end_frame(self, session: Any, frame_end_info: Any) -> None: ...
    def locate_views(self, session: Any, view_locate_info: Any) -> tuple[Any, Sequence[Any]]: ...
    def enumerate_view_configuration_views(self, instance: Any, system_id: Any,
                                           view_configuration_type: Any) -> Sequence[Any]: ...
    def enumerate_swapchain_formats(self, session: Any) -> Sequence[int]: ...
    def create_swapchain(self, session: Any, create_info: Any) -> Any: ...
    def enumerate_swapchain_images(self, swapchain: Any, element_type: Any) -> Sequence[Any]: ...
    def destroy_swapchain(self, swapchain: Any) -> None: ...
    def acquire_swapchain_image(self, swapchain: Any, acquire_info: Any = None) -> int: ...
    def wait_swapchain_image(self, swapchain: Any, wait_info: Any) -> None: ...
    def release_swapchain_image(self, swapchain: Any, release_info: Any = None) -> None: ...


def views_from_xr(xr, view_state, located: Sequence[Any]) -> tuple[DisplayView, ...]:
    """:class:`DisplayView`s from ``xrLocateViews``' ``xr.ViewState`` and ``xr.View`` array, or ()
    when the runtime has no valid pose for them (flags), or a pose or FOV is unusable (NaN,
    not a rotation, an impossible frustum)."""
    flags = int(view_state.view_state_flags)
    needed = int(xr.ViewStateFlags.POSITION_VALID_BIT) | int(xr.ViewStateFlags.ORIENTATION_VALID_BIT)
    if flags & needed != needed:
        return ()
    views = []
    for view in located:
        pose = pose_from_xr(view.pose)
        if pose is None:
            return ()
        fov = view.fov
        try:
            frustum = ViewFov(float(fov.angle_left), float(fov.angle_right), float(fov.angle_up), float(fov.angle_down))
        except ValueError:
            return ()
        views.append(DisplayView(pose=Pose(position=pose[0], orientation=pose[1]), fov=frustum))
    return tuple(views)


@dataclass
class OpenXRFrame:
    """A frame between ``xrBeginFrame`` and ``xrEndFrame``."""

    frame_id: int
    """The genxr frame id (the source's numbering, carried by the TrackingFrame and DisplayFrame)."""
    state: Any
    """The ``xr.FrameState`` from ``xrWaitFrame`` (predicted display time and period, should_render)."""
    views: tuple[DisplayView, ...]
    """Valid views for the compositor; () when not rendering or no valid pose."""
    located: Sequence[Any]
    """The runtime's ``xr.View`` structs the views came from, for the projection layer."""


class OpenXRFrameCycle:
    """Events, frame pacing and view location of one session (see module docstring)."""

    def __init__(self, calls: OpenXRCalls, *, instance, session, reference_space, view_configuration: str,
                 state_machine: SessionStateMachine | None = None, clock: Clock = MONOTONIC) -> None:
        import xr

        self._xr = xr
        self.calls = calls
        self.instance, self.session, self.reference_space = instance, session, reference_space
        self.view_configuration = getattr(xr.ViewConfigurationType, view_configuration)
        self.state_machine = state_machine or SessionStateMachine()
        self.open_frame: OpenXRFrame | None = None
        self.ended = False
        """True once the runtime asked the application to exit or the session/instance is being lost."""
        self.frames_begun = 0
        self.frames_ended = 0
        self.clock = clock
        self._last_end: tuple[int, int] | None = None
        """(predicted display time as XrTime, ``clock`` time at xrEndFrame) of the last frame ended."""

    @property
    def running(self) -> bool:
        """Between xrBeginSession and xrEndSession."""
        return self.state_machine.running

    def poll_events(self) -> None:
        """Drains the event queue; begins or ends the session as its state asks."""
        xr = self._xr
        while True:
            try:
                buffer = self.calls.poll_event(self.instance)
            except xr.EventUnavailable:
                return
            kind = xr.StructureType(buffer.type)
            if kind == xr.StructureType.EVENT_DATA_INSTANCE_LOSS_PENDING:
                self.ended = True
            elif kind == xr.StructureType.EVENT_DATA_SESSION_STATE_CHANGED:
                event = ctypes.cast(ctypes.byref(buffer), ctypes.POINTER(xr.EventDataSessionStateChanged)).contents
                action = self.state_machine.on_state(xr.SessionState(event.state).name)
                if action is SessionAction.BEGIN:
                    self.calls.begin_session(self.session, xr.SessionBeginInfo(
                        primary_view_configuration_type=self.view_configuration))
                elif action is SessionAction.END:
                    self.end()
                    self.calls.end_session(self.session)
                elif action in (SessionAction.EXIT, SessionAction.LOST):
                    self.ended = True

    def begin(self, frame_id: int) -> OpenXRFrame | None:
        """Ends a frame left open, polls events, then - while the session runs - waits for the
        next frame (``xrWaitFrame`` blocks to the display), begins it and locates its views.
        None when the session is not running (not yet READY, stopped, exiting)."""
        xr = self._xr
        self.end()
        self.poll_events()
        if not self.running or self.ended:
            return None
        state = self.calls.wait_frame(self.session, xr.FrameWaitInfo())
        self.calls.begin_frame(self.session, xr.FrameBeginInfo())
        self.frames_begun += 1
        views: tuple[DisplayView, ...] = ()
        located: Sequence[Any] = ()
        if state.should_render:
            view_state, located = self.calls.locate_views(self.session, xr.ViewLocateInfo(
                view_configuration_type=self.view_configuration, display_time=state.predicted_display_time,
                space=self.reference_space))
            views = views_from_xr(xr, view_state, located)
        self.open_frame = OpenXRFrame(frame_id=frame_id, state=state, views=views, located=located)
        return self.open_frame

    def end(self, layers: Sequence[Any] = ()) -> None:
        """Ends the open frame with ``layers`` (pyopenxr composition layer structs, kept alive by
        the caller until this returns); does nothing when no frame is open."""
        frame, self.open_frame = self.open_frame, None
        if frame is None:
            return
        xr = self._xr
        ended_at = self.clock.now_ns()
        self.calls.end_frame(self.session, xr.FrameEndInfo(
            display_time=frame.state.predicted_display_time, environment_blend_mode=xr.EnvironmentBlendMode.OPAQUE,
            layers=[ctypes.byref(layer) for layer in layers]))
        self.frames_ended += 1
        self._last_end = (int(frame.state.predicted_display_time), ended_at)

    def take_last_end(self) -> tuple[int, int] | None:
        """(predicted display time as XrTime, ``clock`` time when xrEndFrame was called) of the frame
        ended last, once: None when no frame was ended since the previous call."""
        ended, self._last_end = self._last_end, None
        return ended

    def close(self) -> None:
        """Ends a frame left open (leaving the loop early, Ctrl-C); the session itself is ended
        or destroyed by its owner (:class:`~genxr.xr_runtime.openxr.source.OpenXRSource`)."""
        self.end()

"""Head and hand tracking from an OpenXR runtime through pyopenxr.

``with OpenXRSource() as source:`` creates an instance with ``XR_EXT_hand_tracking`` and
``XR_KHR_convert_timespec_time``, checks that the system really tracks hands
(``XrSystemHandTrackingPropertiesEXT``, chained into ``xrGetSystemProperties`` - a runtime
may advertise the extension without a hand device), opens a headless session when the
runtime offers ``XR_MND_headless`` and either ``prefer_headless`` is set (tracking only) or
no ``XR_KHR_opengl_enable`` is offered, otherwise a graphics session through pyopenxr's
offscreen EGL context (what a session showing images on a headset asks for), creates the VIEW and the reference space (STAGE by default), and
runs the session state machine (READY -> begin, STOPPING -> end, EXITING / LOSS_PENDING ->
stop). Each frame it locates the head and both hands' 26 joints at the predicted display
time.

A graphics session is a headset's: its frames are opened by :meth:`OpenXRSource.wait_frame`
through :class:`~genxr.xr_runtime.openxr.frames.OpenXRFrameCycle` (``xrWaitFrame``,
``xrBeginFrame``, ``xrLocateViews`` with PRIMARY_STEREO) and ended by
:class:`~genxr.xr_runtime.openxr.sink.OpenXRSwapchainSink` with the composited views
(``frame_cycle`` is the object both share). The located views reach the compositor in
``FrameTiming.views``.

Runtime quirks handled (verified against Monado, see shared research ``openxr.md``):

* headless ``xrWaitFrame`` returns at once with predicted time 0 and does not throttle:
  the source then paces itself with a :class:`DisplayClock` and converts its own
  CLOCK_MONOTONIC times with ``xrConvertTimespecTimeToTimeKHR`` (time 0 is invalid for
  locate calls);
* headless ``xrBeginFrame`` fails with ``CallOrderInvalidError``: no begin/end when headless;
* pyopenxr 1.1.6501's ``locate_hand_joints_ext`` passes no joint array: the source calls
  the ``xrLocateHandJointsEXT`` function pointer with its own 26-joint array;
* the system-properties chain must be given the struct, not ``ctypes.pointer(struct)``.

Without a runtime, entering raises :class:`OpenXRUnavailableError` whose message says what
to install or set and how to run with the simulated user instead. The conversion functions
and the state machine are plain functions over pyopenxr's own structs, unit-tested
without a runtime.
"""

from __future__ import annotations

import ctypes
import dataclasses
from dataclasses import dataclass
from types import TracebackType


from genxr.platform.clock import MONOTONIC, Clock
from genxr.platform.messages import HAND_JOINT_COUNT, HandJoints, Pose, TrackingFrame
from genxr.platform.units import NS_PER_S
from genxr.xr_runtime.openxr.convert import SessionStateMachine, hand_from_xr, head_from_xr
from genxr.xr_runtime.timing import DisplayClock, FrameTiming

UNAVAILABLE_MESSAGE = (
    "No OpenXR runtime is available ({reason}). Install and start one - SteamVR, Meta Quest Link or "
    "Windows Mixed Reality on Windows; SteamVR or Monado (apt install monado-service; run "
    "monado-service) on Linux - or point XR_RUNTIME_JSON at a runtime manifest such as "
    "/usr/share/openxr/1/openxr_monado.json. To run without a headset use the simulated user: "
    "genxr demo --source sim (or session.source: sim in the config)."
)


class OpenXRUnavailableError(RuntimeError):
    """No runtime, no headset, or a runtime without what genxr needs; the message says what to do."""


def _import_xr():
    try:
        import xr
    except ImportError as err:  # pyopenxr is a dependency; this is a broken install
        raise OpenXRUnavailableError(UNAVAILABLE_MESSAGE.format(reason=f"pyopenxr does not import: {err}")) from err
    return xr


@dataclass(frozen=True)
class OpenXRCapabilities:
    """What the runtime offered, for the session summary and ``genxr doctor``."""

    runtime_name: str
    system_name: str
    hand_tracking: bool
    headless: bool


class OpenXRSource:
    """The OpenXR tracking source (see module docstring)."""

    paces_display = True

    def __init__(self, *, clock: Clock = MONOTONIC, reference_space: str = "STAGE", hands: bool = True,
                 prefer_headless: bool = True, fallback_rate_hz: float = 90.0, app_name: str = "genxr") -> None:
        if reference_space not in ("STAGE", "LOCAL"):
            raise ValueError(f"reference_space must be 'STAGE' or 'LOCAL', got {reference_space!r}")
        self.clock = clock
        self.reference_space = reference_space
        self.want_hands = hands
        self.prefer_headless = prefer_headless
        self.app_name = app_name
        self.state_machine = SessionStateMachine()
        self.capabilities: OpenXRCapabilities | None = None
        self._self_paced = DisplayClock(fallback_rate_hz, clock)
        self._xr = None
        self._instance = None
        self._session = None
        self._gl_context = None
        self.frame_cycle = None
        """The session's :class:`~genxr.xr_runtime.openxr.frames.OpenXRFrameCycle` once entered."""
        self.system_id = None
        self._spaces: dict[str, object] = {}
        self._trackers: dict[str, object] = {}
        self._locate_hand = None
        self._frame_id = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> OpenXRSource:
        xr = self._xr = _import_xr()
        try:
            offered = {e.extension_name.decode() if isinstance(e.extension_name, bytes) else e.extension_name
                       for e in xr.enumerate_instance_extension_properties()}
        except xr.RuntimeUnavailableError as err:
            raise OpenXRUnavailableError(UNAVAILABLE_MESSAGE.format(reason=str(err))) from err
        required = {"XR_KHR_convert_timespec_time"}
        missing = required - offered
        if missing:
            raise OpenXRUnavailableError(f"the OpenXR runtime lacks {sorted(missing)}, which genxr needs for timing")
        headless = "XR_MND_headless" in offered and (self.prefer_headless or "XR_KHR_opengl_enable" not in offered)
        wanted = sorted(required | ({"XR_EXT_hand_tracking"} & offered if self.want_hands else set())
                        | ({"XR_MND_headless"} if headless else set()))
        try:
            if headless:
                self._open_headless(wanted)
            else:
                self._open_graphics(wanted, offered)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _open_headless(self, extensions: list[str]) -> None:
        xr = self._xr
        self._instance = xr.create_instance(xr.InstanceCreateInfo(
            application_info=xr.ApplicationInfo(application_name=self.app_name, api_version=xr.Version(1, 0, 0)),
            enabled_extension_names=extensions))
        system_id = xr.get_system(self._instance, xr.SystemGetInfo(form_factor=xr.FormFactor.HEAD_MOUNTED_DISPLAY))
        self._session = xr.create_session(self._instance, xr.SessionCreateInfo(system_id=system_id))
        self._after_session(system_id, extensions, headless=True)

    def _open_graphics(self, extensions: list[str], offered: set[str]) -> None:
        xr = self._xr
        from xr.utils.gl import ContextObject
        from xr.utils.gl.egl_util import EGLOffscreenContextProvider

        gl = ["XR_KHR_opengl_enable"] + (["XR_MNDX_egl_enable"] if "XR_MNDX_egl_enable" in offered else [])
        self._gl_context = ContextObject(
            context_provider=EGLOffscreenContextProvider(),
            instance_create_info=xr.InstanceCreateInfo(enabled_extension_names=sorted(set(extensions + gl))),
        )
        self._gl_context.__enter__()
        self._instance, self._session = self._gl_context.instance, self._gl_context.session
        self._after_session(self._gl_context.system_id, extensions, headless=False)

    def _after_session(self, system_id, extensions: list[str], headless: bool) -> None:
        from genxr.xr_runtime.openxr.frames import OpenXRFrameCycle

        xr = self._xr
        self.system_id = system_id
        hands = "XR_EXT_hand_tracking" in extensions and self._supports_hand_tracking(system_id)
        properties = xr.get_system_properties(self._instance, system_id)
        runtime = xr.get_instance_properties(self._instance).runtime_name
        self.capabilities = OpenXRCapabilities(
            runtime_name=runtime.decode() if isinstance(runtime, bytes) else str(runtime),
            system_name=properties.system_name.decode(), hand_tracking=hands, headless=headless)
        for name, kind in (("view", xr.ReferenceSpaceType.VIEW),
                           ("reference", getattr(xr.ReferenceSpaceType, self.reference_space))):
            self._spaces[name] = xr.create_reference_space(
                self._session, xr.ReferenceSpaceCreateInfo(reference_space_type=kind))
        if hands:
            for side, hand in (("left", xr.HandEXT.LEFT), ("right", xr.HandEXT.RIGHT)):
                self._trackers[side] = xr.create_hand_tracker_ext(self._session, xr.HandTrackerCreateInfoEXT(
                    hand=hand, hand_joint_set=xr.HandJointSetEXT.DEFAULT))
            self._locate_hand = ctypes.cast(xr.get_instance_proc_addr(self._instance, "xrLocateHandJointsEXT"),
                                            xr.PFN_xrLocateHandJointsEXT)
        self.frame_cycle = OpenXRFrameCycle(
            xr, instance=self._instance, session=self._session, reference_space=self._spaces["reference"],
            view_configuration="PRIMARY_MONO" if headless else "PRIMARY_STEREO", state_machine=self.state_machine)

    @property
    def graphics(self) -> bool:
        """True for a graphics session (a headset's swapchains can be submitted to)."""
        return self._gl_context is not None

    def _supports_hand_tracking(self, system_id) -> bool:
        xr = self._xr
        hand_properties = xr.SystemHandTrackingPropertiesEXT()
        properties = xr.SystemProperties(next=hand_properties)  # the struct, not ctypes.pointer(struct)
        result = xr.raw_functions.xrGetSystemProperties(self._instance, system_id, ctypes.byref(properties))
        xr.check_result(result)
        return bool(hand_properties.supports_hand_tracking)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        xr = self._xr
        if xr is None:
            return
        for tracker in self._trackers.values():
            xr.destroy_hand_tracker_ext(tracker)
        self._trackers.clear()
        if self.frame_cycle is not None:
            self.frame_cycle.close()
        if self._gl_context is not None:
            self._gl_context.__exit__(exc_type, exc, tb)
        else:
            if self._session is not None:
                if self.state_machine.running:
                    xr.end_session(self._session)
                xr.destroy_session(self._session)
            if self._instance is not None:
                xr.destroy_instance(self._instance)
        self._session = self._instance = self._gl_context = None

    # -- per frame ---------------------------------------------------------------------------------

    def _xr_time(self, genxr_time_ns: int):
        """The XrTime for a time on the genxr (CLOCK_MONOTONIC) clock."""
        xr = self._xr
        spec = xr.timespec(tv_sec=genxr_time_ns // NS_PER_S, tv_nsec=genxr_time_ns % NS_PER_S)
        return xr.convert_timespec_time_to_time_khr(self._instance, spec)

    def _genxr_time(self, xr_time) -> int:
        spec = self._xr.convert_time_to_timespec_time_khr(self._instance, xr_time)
        return spec.tv_sec * NS_PER_S + spec.tv_nsec

    def wait_frame(self) -> FrameTiming:
        if self.graphics:  # a headset: the frame cycle waits, begins and locates the views
            self._frame_id += 1
            frame = self.frame_cycle.begin(self._frame_id)
            if frame is None:  # not running (yet, or any more): pace ourselves, as pyopenxr's own loop does
                return dataclasses.replace(self._self_paced.wait_frame(), frame_id=self._frame_id, should_render=False)
            state = frame.state
            return FrameTiming(self._frame_id, self.clock.now_ns(), self._genxr_time(state.predicted_display_time),
                               int(state.predicted_display_period), bool(state.should_render), views=frame.views)
        self.frame_cycle.poll_events()
        if self.state_machine.running:
            state = self._xr.wait_frame(self._session)
            if state.predicted_display_time > 0:  # a throttling runtime
                self._frame_id += 1
                return FrameTiming(self._frame_id, self.clock.now_ns(),
                                   self._genxr_time(state.predicted_display_time),
                                   int(state.predicted_display_period), bool(state.should_render))
        return self._self_paced.wait_frame()  # headless quirk: wait_frame does not throttle

    def read(self, timing: FrameTiming) -> TrackingFrame | None:
        if self.frame_cycle.ended:
            return None
        if not self.state_machine.running:
            return TrackingFrame(frame_id=timing.frame_id, sample_time_ns=self.clock.now_ns(),
                                 predicted_display_time_ns=max(timing.predicted_display_time_ns, self.clock.now_ns()),
                                 head=Pose(), head_tracked=False)
        xr = self._xr
        at = self._xr_time(timing.predicted_display_time_ns)
        sampled = self.clock.now_ns()
        head, head_tracked = head_from_xr(xr.locate_space(self._spaces["view"], self._spaces["reference"], at))
        hands = {side: self._locate_hand_joints(tracker, side, at) for side, tracker in self._trackers.items()}
        return TrackingFrame(frame_id=timing.frame_id, sample_time_ns=sampled,
                             predicted_display_time_ns=max(timing.predicted_display_time_ns, sampled),
                             head=head, head_tracked=head_tracked,
                             left_hand=hands.get("left"), right_hand=hands.get("right"))

    def _locate_hand_joints(self, tracker, side: str, at) -> HandJoints:
        xr = self._xr
        joints = (xr.HandJointLocationEXT * HAND_JOINT_COUNT)()
        locations = xr.HandJointLocationsEXT(joint_count=HAND_JOINT_COUNT, joint_locations=joints)
        info = xr.HandJointsLocateInfoEXT(base_space=self._spaces["reference"], time=at)
        xr.check_result(self._locate_hand(tracker, ctypes.byref(info), ctypes.byref(locations)))
        return hand_from_xr(locations, side)

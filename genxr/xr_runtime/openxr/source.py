"""Head and hand tracking from an OpenXR runtime through pyopenxr.

``with OpenXRSource() as source:`` creates an instance (API 1.0) with ``XR_EXT_hand_tracking``
and ``XR_KHR_convert_timespec_time``, gets the head-mounted system, checks that the system
really tracks hands (``XrSystemHandTrackingPropertiesEXT``, chained into
``xrGetSystemProperties`` - a runtime may advertise the extension without a hand device),
opens a headless session when the runtime offers ``XR_MND_headless`` and either
``prefer_headless`` is set (tracking only) or no ``XR_KHR_opengl_enable`` is offered, otherwise
a graphics session (what a session showing images on a headset asks for): an offscreen EGL
context (pyopenxr's ``EGLOffscreenContextProvider`` and graphics binding, with
``XR_MNDX_egl_enable`` where offered), ``xrGetOpenGLGraphicsRequirementsKHR`` for this instance,
then ``xrCreateSession`` with a fresh ``XrSessionCreateInfo``. It creates the VIEW and the
reference space (STAGE by default) and runs the session state machine (READY -> begin,
STOPPING -> end, EXITING / LOSS_PENDING -> stop). Each frame it locates the head and both
hands' 26 joints at the predicted display time.

A graphics session is a headset's: its frames are opened by :meth:`OpenXRSource.wait_frame`
through :class:`~genxr.xr_runtime.openxr.frames.OpenXRFrameCycle` (``xrWaitFrame``,
``xrBeginFrame``, ``xrLocateViews`` with PRIMARY_STEREO) and ended by
:class:`~genxr.xr_runtime.openxr.sink.OpenXRSwapchainSink` with the composited views
(``frame_cycle`` is the object both share). The located views reach the compositor in
``FrameTiming.views``; so do the display refreshes the loop missed (a gap of more than one
period between consecutive predicted display times: the runtime, not genxr, decides what
was late) and how long before its display time the previous frame was ended.

Opening never leaves anything behind and never hides the runtime's error: any failure -
no runtime, no headset (``xrGetSystem``: ``FormFactorUnavailableError``), a service that is
not running (``RuntimeFailureError``), no EGL display - destroys what was created and raises
:class:`OpenXRUnavailableError` naming the call, the runtime's error and what to do.
Leaving follows the spec: a running session is asked to exit (``xrRequestExitSession``) and
its state changes followed (frames keep being ended, empty, in a graphics session) until
STOPPING, when ``xrEndSession`` is called; a session that never began, or no longer runs,
is not ended. Then hand trackers, spaces, the session, the EGL context and the instance are
destroyed, each even if an earlier step failed (what failed is reported with an
:class:`OpenXRCloseWarning`; the loop's own error is never replaced).

pyopenxr's ``xr.utils.gl.ContextObject`` is not used: its ``session_create_info`` default is
one shared mutable struct, so a second session in a process skipped the graphics
requirements call (``GraphicsRequirementsCallMissingError`` at trial 2 of a study), its
cleanup after a failure raises ``AttributeError`` over the real error, it never ends the
session, and it creates swapchains genxr cannot use.

Runtime quirks handled (verified against Monado, see shared research ``openxr.md``):

* headless ``xrWaitFrame`` returns at once with predicted time 0 and does not throttle:
  the source then paces itself with a :class:`DisplayClock` and converts its own
  CLOCK_MONOTONIC times with ``xrConvertTimespecTimeToTimeKHR`` (time 0 is invalid for
  locate calls);
* headless ``xrBeginFrame`` fails with ``CallOrderInvalidError``: no begin/end when headless;
* pyopenxr 1.1.6501's ``locate_hand_joints_ext`` passes no joint array: the source calls
  the ``xrLocateHandJointsEXT`` function pointer with its own 26-joint array;
* the system-properties chain must be given the struct, not ``ctypes.pointer(struct)``;
* ``xr.check_result`` returns the error instead of raising it: the raw function-pointer
  calls here raise it (:meth:`OpenXRSource._check`);
* a 3DoF or simulated HMD reports the head's position VALID but not TRACKED: the head is
  tracked when its orientation is (``head_position_untracked_frames`` counts those frames).
"""

from __future__ import annotations

import ctypes
import dataclasses
import warnings
from dataclasses import dataclass
from types import TracebackType

from genxr.platform.clock import MONOTONIC, Clock
from genxr.platform.messages import HAND_JOINT_COUNT, HandJoints, LocationFlags, Pose, TrackingFrame
from genxr.platform.units import NS_PER_MS, NS_PER_S
from genxr.xr_runtime.openxr.convert import SessionStateMachine, hand_from_xr, head_from_xr, source_lost_on
from genxr.xr_runtime.timing import DisplayClock, FrameTiming, skipped_refreshes

UNAVAILABLE_MESSAGE = (
    "No OpenXR runtime is available ({reason}). Install and start one - SteamVR, Meta Quest Link or "
    "Windows Mixed Reality on Windows; SteamVR or Monado (apt install monado-service; run "
    "monado-service) on Linux - or point XR_RUNTIME_JSON at a runtime manifest such as "
    "/usr/share/openxr/1/openxr_monado.json. To run without a headset use the simulated user: "
    "genxr demo --source sim (or session.source: sim in the config)."
)
SIM_HINT = "To run without a headset use the simulated user: genxr demo --source sim."
EGL_HINT = (
    "Without a display (DISPLAY / WAYLAND_DISPLAY unset) set EGL_PLATFORM=surfaceless (Mesa) and "
    "PYOPENGL_PLATFORM=egl, or run a headless session (session.openxr_headless: true - tracking only, "
    "needs a runtime offering XR_MND_headless, e.g. Monado)."
)
EXIT_TIMEOUT_NS = NS_PER_S
"""How long leaving waits for the runtime to take a running session to STOPPING."""


class OpenXRUnavailableError(RuntimeError):
    """No runtime, no headset, or a runtime without what genxr needs; the message says what to do."""


class OpenXRCloseWarning(RuntimeWarning):
    """Leaving an OpenXR session did not go as the spec says (the runtime vanished, refused a call);
    everything that could be destroyed was."""


def _import_xr():
    try:
        import xr
    except ImportError as err:  # pyopenxr is a dependency; this is a broken install
        raise OpenXRUnavailableError(UNAVAILABLE_MESSAGE.format(reason=f"pyopenxr does not import: {err}")) from err
    return xr


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _error_hint(xr, err: BaseException) -> str:
    """What to do about a runtime's error while opening a session."""
    if isinstance(err, xr.FormFactorUnavailableError):
        return ("The runtime sees no headset: connect it and switch it on, and start the runtime's service "
                "(monado-service, SteamVR). " + SIM_HINT)
    if isinstance(err, (xr.RuntimeFailureError, xr.InstanceLostError)):
        return "The runtime failed: is its service running (monado-service, SteamVR)? " + SIM_HINT
    if isinstance(err, xr.ApiVersionUnsupportedError):
        return "genxr asks for OpenXR 1.0; update the runtime. " + SIM_HINT
    return SIM_HINT


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
        """The EGL context of a graphics session (made current on entering; destroyed on leaving)."""
        self._gl_binding_keep = None
        self.frame_cycle = None
        """The session's :class:`~genxr.xr_runtime.openxr.frames.OpenXRFrameCycle` once entered."""
        self.system_id = None
        self._spaces: dict[str, object] = {}
        self._trackers: dict[str, object] = {}
        self._locate_hand = None
        self._frame_id = 0
        self._step = ""
        """The call being made while opening (named in the error when it fails)."""
        self._last_display_xr: int | None = None
        """The previous frame's predicted display time (XrTime), for the refreshes missed since."""
        self._display_ns: tuple[int, int] | None = None
        """(XrTime, genxr ns) of the last frame's predicted display time."""
        self.head_position_untracked_frames = 0
        """Frames whose head was tracked by orientation with a position only valid (3DoF, simulated HMD)."""
        self.close_errors: list[str] = []
        """What went wrong while leaving (also reported with :class:`OpenXRCloseWarning`)."""

    # -- hooks the tests replace ------------------------------------------------------------------

    def _load_xr(self):
        """pyopenxr's ``xr`` module (the tests: a fake runtime behind the same names)."""
        return _import_xr()

    def _gl_binding(self):
        """(EGL context, graphics binding) for a graphics session: pyopenxr's offscreen EGL context,
        current on this thread, and its binding (``.pointer`` goes into ``XrSessionCreateInfo.next``)."""
        try:
            from xr.utils.gl import create_graphics_binding  # imports PyOpenGL: its platform is fixed here
            from xr.utils.gl.egl_util import EGLOffscreenContextProvider

            context = EGLOffscreenContextProvider()
        except Exception as err:  # EGLError(EGL_NOT_INITIALIZED), no libEGL, no config
            detail = getattr(err.err, "name", err.err) if hasattr(err, "err") else err
            operation = getattr(getattr(err, "baseOperation", None), "__name__", "")
            raise OpenXRUnavailableError(_one_line(
                f"cannot create the OpenGL context for the headset's swapchains through EGL "
                f"({operation + ': ' if operation else ''}{type(err).__name__} {detail}). {EGL_HINT}")) from err
        try:
            context.make_current()
            return context, create_graphics_binding(context)
        except BaseException:
            context.destroy()
            raise

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> OpenXRSource:
        xr = self._xr = self._load_xr()
        self.state_machine = SessionStateMachine()
        self.close_errors = []
        self._last_display_xr = self._display_ns = None
        try:
            self._step = "xrEnumerateInstanceExtensionProperties"
            offered = {e.extension_name.decode() if isinstance(e.extension_name, bytes) else e.extension_name
                       for e in xr.enumerate_instance_extension_properties()}
            required = {"XR_KHR_convert_timespec_time"}
            missing = required - offered
            if missing:
                raise OpenXRUnavailableError(f"the OpenXR runtime lacks {sorted(missing)}, which genxr needs for "
                                             f"timing. {SIM_HINT}")
            headless = "XR_MND_headless" in offered and (self.prefer_headless or "XR_KHR_opengl_enable" not in offered)
            if not headless and "XR_KHR_opengl_enable" not in offered:
                raise OpenXRUnavailableError("the OpenXR runtime offers neither XR_KHR_opengl_enable (a graphics "
                                             f"session) nor XR_MND_headless (a headless one). {SIM_HINT}")
            wanted = sorted(required | ({"XR_EXT_hand_tracking"} & offered if self.want_hands else set())
                            | ({"XR_MND_headless"} if headless else set()))
            if headless:
                self._open_headless(wanted)
            else:
                self._open_graphics(wanted, offered)
        except OpenXRUnavailableError:
            self._close(warn=False)
            raise
        except xr.RuntimeUnavailableError as err:
            self._close(warn=False)
            raise OpenXRUnavailableError(UNAVAILABLE_MESSAGE.format(reason=_one_line(err))) from err
        except Exception as err:
            self._close(warn=False)
            raise OpenXRUnavailableError(_one_line(
                f"opening the OpenXR session failed at {self._step}: {type(err).__name__}: {err}. "
                f"{_error_hint(xr, err)}")) from err
        except BaseException:  # Ctrl-C while opening: give back what was taken, then stop
            self._close(warn=False)
            raise
        return self

    def _create_instance(self, extensions: list[str]) -> object:
        xr = self._xr
        self._step = "xrCreateInstance"
        self._instance = xr.create_instance(xr.InstanceCreateInfo(
            application_info=xr.ApplicationInfo(application_name=self.app_name, api_version=xr.Version(1, 0, 0)),
            enabled_extension_names=extensions))
        self._step = "xrGetSystem"
        return xr.get_system(self._instance, xr.SystemGetInfo(form_factor=xr.FormFactor.HEAD_MOUNTED_DISPLAY))

    def _open_headless(self, extensions: list[str]) -> None:
        xr = self._xr
        system_id = self._create_instance(extensions)
        self._step = "xrCreateSession (headless)"
        self._session = xr.create_session(self._instance, xr.SessionCreateInfo(system_id=system_id))
        self._after_session(system_id, extensions, headless=True)

    def _open_graphics(self, extensions: list[str], offered: set[str]) -> None:
        xr = self._xr
        gl = ["XR_KHR_opengl_enable"] + (["XR_MNDX_egl_enable"] if "XR_MNDX_egl_enable" in offered else [])
        system_id = self._create_instance(sorted(set(extensions + gl)))
        self._step = "xrGetOpenGLGraphicsRequirementsKHR"
        requirements = xr.GraphicsRequirementsOpenGLKHR()
        get_requirements = ctypes.cast(xr.get_instance_proc_addr(self._instance, "xrGetOpenGLGraphicsRequirementsKHR"),
                                       xr.PFN_xrGetOpenGLGraphicsRequirementsKHR)
        self._check(get_requirements(self._instance, system_id, ctypes.byref(requirements)),
                    "xrGetOpenGLGraphicsRequirementsKHR")
        self._step = "creating the EGL context"
        self._gl_context, self._gl_binding_keep = self._gl_binding()
        self._step = "xrCreateSession (OpenGL)"
        create_info = xr.SessionCreateInfo(system_id=system_id)  # a fresh struct for every session
        create_info.next = self._gl_binding_keep.pointer
        self._session = xr.create_session(self._instance, create_info)
        self._gl_context.make_current()
        self._after_session(system_id, extensions, headless=False)

    def _after_session(self, system_id, extensions: list[str], headless: bool) -> None:
        from genxr.xr_runtime.openxr.frames import OpenXRFrameCycle

        xr = self._xr
        self.system_id = system_id
        self._step = "xrGetSystemProperties"
        hands = "XR_EXT_hand_tracking" in extensions and self._supports_hand_tracking(system_id)
        properties = xr.get_system_properties(self._instance, system_id)
        self._step = "xrGetInstanceProperties"
        runtime = xr.get_instance_properties(self._instance).runtime_name
        system_name = properties.system_name
        self.capabilities = OpenXRCapabilities(
            runtime_name=runtime.decode() if isinstance(runtime, bytes) else str(runtime),
            system_name=system_name.decode() if isinstance(system_name, bytes) else str(system_name),
            hand_tracking=hands, headless=headless)
        for name, kind in (("view", xr.ReferenceSpaceType.VIEW),
                           ("reference", getattr(xr.ReferenceSpaceType, self.reference_space))):
            self._step = f"xrCreateReferenceSpace ({kind.name})"
            self._spaces[name] = xr.create_reference_space(
                self._session, xr.ReferenceSpaceCreateInfo(reference_space_type=kind))
        if hands:
            for side, hand in (("left", xr.HandEXT.LEFT), ("right", xr.HandEXT.RIGHT)):
                self._step = f"xrCreateHandTrackerEXT ({side})"
                self._trackers[side] = xr.create_hand_tracker_ext(self._session, xr.HandTrackerCreateInfoEXT(
                    hand=hand, hand_joint_set=xr.HandJointSetEXT.DEFAULT))
            self._step = "xrGetInstanceProcAddr (xrLocateHandJointsEXT)"
            self._locate_hand = ctypes.cast(xr.get_instance_proc_addr(self._instance, "xrLocateHandJointsEXT"),
                                            xr.PFN_xrLocateHandJointsEXT)
        self.frame_cycle = OpenXRFrameCycle(
            xr, instance=self._instance, session=self._session, reference_space=self._spaces["reference"],
            view_configuration="PRIMARY_MONO" if headless else "PRIMARY_STEREO", state_machine=self.state_machine,
            clock=self.clock)

    @property
    def graphics(self) -> bool:
        """True for a graphics session (a headset's swapchains can be submitted to)."""
        return self._gl_context is not None

    def _check(self, result, what: str) -> None:
        """Raises the runtime's error for a raw function-pointer call's ``XrResult``
        (pyopenxr's ``xr.check_result`` only returns it)."""
        xr = self._xr
        error = xr.check_result(xr.Result(result))
        if error.is_exception():
            raise type(error)(f"{what}: {error}")

    def _supports_hand_tracking(self, system_id) -> bool:
        xr = self._xr
        hand_properties = xr.SystemHandTrackingPropertiesEXT()
        properties = xr.SystemProperties(next=hand_properties)  # the struct, not ctypes.pointer(struct)
        get_properties = ctypes.cast(xr.get_instance_proc_addr(self._instance, "xrGetSystemProperties"),
                                     xr.PFN_xrGetSystemProperties)
        self._check(get_properties(self._instance, system_id, ctypes.byref(properties)), "xrGetSystemProperties")
        return bool(hand_properties.supports_hand_tracking)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._xr is not None:
            self._close(warn=True)

    def _close(self, warn: bool) -> None:
        """Leaves the session as the spec says and destroys everything, each step even when an earlier
        one failed (see module docstring); never raises."""
        xr = self._xr
        errors: list[str] = []

        def attempt(what: str, call, *args) -> None:
            try:
                call(*args)
            except Exception as err:
                errors.append(_one_line(f"{what}: {type(err).__name__}: {err}"))

        if self._session is not None and self.frame_cycle is not None:
            attempt("leaving the session", self._leave_session)
        for side, tracker in self._trackers.items():
            attempt(f"xrDestroyHandTrackerEXT ({side})", xr.destroy_hand_tracker_ext, tracker)
        for name, space in self._spaces.items():
            attempt(f"xrDestroySpace ({name})", xr.destroy_space, space)
        if self._session is not None:
            attempt("xrDestroySession", xr.destroy_session, self._session)
        if self._gl_context is not None:
            attempt("destroying the EGL context", self._gl_context.destroy)
        if self._instance is not None:
            attempt("xrDestroyInstance", xr.destroy_instance, self._instance)
        self._trackers.clear()
        self._spaces.clear()
        self._session = self._instance = self._gl_context = self._gl_binding_keep = self._locate_hand = None
        self.close_errors.extend(errors)
        if warn and errors:
            warnings.warn(OpenXRCloseWarning("leaving the OpenXR session: " + "; ".join(errors)), stacklevel=3)

    def _leave_session(self) -> None:
        """Ends an open frame; asks a running session to exit and follows its states to STOPPING,
        where the frame cycle ends it (xrEndSession is only legal there)."""
        xr, cycle = self._xr, self.frame_cycle
        cycle.close()
        if not self.state_machine.running or cycle.ended:
            return  # never began, already ended, or exiting/lost: nothing to end
        xr.request_exit_session(self._session)
        deadline = self.clock.now_ns() + EXIT_TIMEOUT_NS
        while self.state_machine.running and not cycle.ended and self.clock.now_ns() < deadline:
            if self.graphics:  # frames keep flowing (ended empty) until the runtime says STOPPING
                self._frame_id += 1
                cycle.begin(self._frame_id)
                cycle.end()
            else:
                cycle.poll_events()
                if self.state_machine.running:
                    self.clock.sleep_until_ns(self.clock.now_ns() + 2 * NS_PER_MS)
        if self.state_machine.running:
            raise TimeoutError(f"the runtime did not take the session to STOPPING within "
                               f"{EXIT_TIMEOUT_NS / NS_PER_S:.0f} s of xrRequestExitSession (state "
                               f"{self.state_machine.state}); destroyed without xrEndSession")

    # -- per frame ---------------------------------------------------------------------------------

    def _xr_time(self, genxr_time_ns: int):
        """The XrTime for a time on the genxr (CLOCK_MONOTONIC) clock."""
        xr = self._xr
        spec = xr.timespec(tv_sec=genxr_time_ns // NS_PER_S, tv_nsec=genxr_time_ns % NS_PER_S)
        return xr.convert_timespec_time_to_time_khr(self._instance, spec)

    def _genxr_time(self, xr_time) -> int:
        spec = self._xr.convert_time_to_timespec_time_khr(self._instance, xr_time)
        return spec.tv_sec * NS_PER_S + spec.tv_nsec

    def _display_time_ns(self, xr_time: int) -> int:
        """The genxr time of a predicted display time (XrTime), remembered for the end margin."""
        genxr_ns = self._genxr_time(xr_time)
        self._display_ns = (xr_time, genxr_ns)
        return genxr_ns

    def _end_margin_ns(self) -> int | None:
        """How long before its predicted display time the last frame was ended (xrEndFrame); None
        if no frame was ended since the last call."""
        ended = self.frame_cycle.take_last_end()
        if ended is None or self._display_ns is None or ended[0] != self._display_ns[0]:
            return None
        return self._display_ns[1] - ended[1]

    def last_end_margin_ns(self) -> int | None:
        """The end margin of the frame ended last that no ``wait_frame`` has reported yet - the
        session's final frame, which no next frame reports - once; None if there is none."""
        return self._end_margin_ns() if self.graphics else None

    def wait_frame(self) -> FrameTiming:
        with source_lost_on(self._xr):  # the runtime's service killed mid-session: TrackingSourceLost
            return self._wait_frame()

    def _wait_frame(self) -> FrameTiming:
        if self.graphics:  # a headset: the frame cycle waits, begins and locates the views
            self._frame_id += 1
            frame = self.frame_cycle.begin(self._frame_id)
            margin = self._end_margin_ns()
            if frame is None:  # not running (yet, or any more): pace ourselves, as pyopenxr's own loop does
                self._last_display_xr = None  # refreshes while not running are not misses
                return dataclasses.replace(self._self_paced.wait_frame(), frame_id=self._frame_id, should_render=False,
                                           previous_end_margin_ns=margin)
            return self._timing(frame.state, views=frame.views, margin=margin)
        self.frame_cycle.poll_events()
        if self.state_machine.running:
            state = self._xr.wait_frame(self._session)
            if state.predicted_display_time > 0:  # a throttling runtime
                self._frame_id += 1
                return self._timing(state)
        self._last_display_xr = None
        return self._self_paced.wait_frame()  # headless quirk: wait_frame does not throttle

    def _timing(self, state, views=(), margin: int | None = None) -> FrameTiming:
        display_xr, period = int(state.predicted_display_time), int(state.predicted_display_period)
        missed = skipped_refreshes(self._last_display_xr, display_xr, period)
        self._last_display_xr = display_xr
        return FrameTiming(self._frame_id, self.clock.now_ns(), self._display_time_ns(display_xr), period,
                           bool(state.should_render), missed_frames=missed, views=views,
                           previous_end_margin_ns=margin)

    def read(self, timing: FrameTiming) -> TrackingFrame | None:
        with source_lost_on(self._xr):
            return self._read(timing)

    def _read(self, timing: FrameTiming) -> TrackingFrame | None:
        if self.frame_cycle.ended:
            return None
        if not self.state_machine.running:
            return TrackingFrame(frame_id=timing.frame_id, sample_time_ns=self.clock.now_ns(),
                                 predicted_display_time_ns=max(timing.predicted_display_time_ns, self.clock.now_ns()),
                                 head=Pose(), head_tracked=False)
        xr = self._xr
        at = self._xr_time(timing.predicted_display_time_ns)
        sampled = self.clock.now_ns()
        location = xr.locate_space(self._spaces["view"], self._spaces["reference"], at)
        head, head_tracked = head_from_xr(location)
        if head_tracked and not int(location.location_flags) & LocationFlags.POSITION_TRACKED:
            self.head_position_untracked_frames += 1
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
        self._check(self._locate_hand(tracker, ctypes.byref(info), ctypes.byref(locations)),
                    f"xrLocateHandJointsEXT ({side})")
        return hand_from_xr(locations, side)


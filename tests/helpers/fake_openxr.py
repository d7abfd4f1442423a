"""A spec-enforcing fake OpenXR runtime, built on pyopenxr's real structs; it raises where a real
runtime would, with the error a real runtime gives (``xr.SessionNotStoppingError``, ...).

Two levels:

* :class:`FakeRuntime` - the frames and swapchains of one two-eye headset session, called
  directly as the frame cycle's ``calls`` (``xrWaitFrame`` / ``xrBeginFrame`` / ``xrEndFrame``
  order, the predicted display time at end, acquire -> wait -> release before a swapchain
  is used in a layer, ``xrBeginSession`` only in READY, ``xrEndSession`` only in STOPPING with
  no frame open); every submitted layer is decoded from its C structs.
* :class:`TrackingRuntime` - a whole runtime on a clock: extensions, instances, the system
  (its properties chain, hand tracking support), headless (``XR_MND_headless``, with Monado's
  quirks) and OpenGL sessions, the session's state changes as a runtime sends them,
  ``xrRequestExitSession``, reference spaces, hand trackers, ``xrLocateSpace``,
  ``xrLocateHandJointsEXT`` and the raw function pointers (``xrGetInstanceProcAddr``), the
  timespec conversions on its own XrTime base, and ``xrWaitFrame`` pacing the loop to the
  display on a vsync grid, skipping the refreshes a late application missed and counting the
  frames ended after their display time. Any ``xr`` function can be made to fail
  (``runtime.fail[name] = xr.RuntimeFailureError(...)``): a runtime whose service is not
  running, a headset that is not there. Handles are checked: a call with a destroyed or
  unknown handle raises ``xr.HandleInvalidError``; :meth:`TrackingRuntime.live` lists what
  the application did not destroy.

:class:`XrFunctions` is the ``xr`` module as code under test sees it (its structs, enums and
exceptions are pyopenxr's; every runtime function goes to the fake, and a function the fake
does not implement is an error, so no real loader is ever called with a fake handle).
:class:`FakeOpenXRSource` is the real :class:`~genxr.xr_runtime.openxr.source.OpenXRSource`
on it, with only the EGL context replaced.

The rules enforced and where each was seen: docs/xr_runtime.md, "How the OpenXR path is
verified", and the shared research notes on Monado (``openxr.md``).
"""

from __future__ import annotations

import ctypes

import numpy as np
import xr
import xr.exception
import xr.functions

from genxr.platform.clock import ManualClock
from genxr.platform.messages import HAND_JOINT_COUNT, DisplayFrame, LocationFlags
from genxr.platform.units import NS_PER_S
from genxr.xr_runtime.openxr.convert import FULLY_LOCATED
from genxr.xr_runtime.openxr.frames import OpenXRFrameCycle
from genxr.xr_runtime.openxr.sink import (
    GL_RGBA8,
    GL_RGBA16F,
    GL_SRGB8_ALPHA8,
    OpenXRSwapchainSink,
)
from genxr.xr_runtime.openxr.source import OpenXRSource

PERIOD_NS = 11_111_111
LEFT_FOV = (-0.9, 0.7, 0.8, -0.85)
RIGHT_FOV = (-0.7, 0.9, 0.8, -0.85)
VALID = int(xr.ViewStateFlags.POSITION_VALID_BIT | xr.ViewStateFlags.ORIENTATION_VALID_BIT)
XR_TIME_OFFSET_NS = 3 * NS_PER_S
"""The tracking runtime's XrTime is the genxr time minus this: a source that forgets to convert is off by 3 s."""
BAD_JOINT = 9
SYSTEM_ID = 1
ALL_EXTENSIONS = ("XR_EXT_hand_tracking", "XR_KHR_convert_timespec_time", "XR_KHR_opengl_enable",
                  "XR_MNDX_egl_enable", "XR_MND_headless")
"""What Monado offers (the part genxr uses)."""
HEAD_3DOF = int(LocationFlags.ORIENTATION_VALID | LocationFlags.ORIENTATION_TRACKED | LocationFlags.POSITION_VALID)
"""A 3DoF or simulated HMD: orientation tracked, position only valid (a fixed or modelled neck)."""

_RESULT_OF = {exception: result for result, exception in xr.exception._exception_map.items()}
"""pyopenxr exception class -> the XrResult a runtime returns for it (for the raw function pointers)."""
RUNTIME_FUNCTIONS = frozenset(xr.functions.__all__) | {"convert_timespec_time_to_time_khr",
                                                       "convert_time_to_timespec_time_khr"}
"""Names in the ``xr`` module that call the runtime: :class:`XrFunctions` sends them to the fake."""


def to_xr(genxr_ns: int) -> int:
    return genxr_ns - XR_TIME_OFFSET_NS


def from_xr(xr_time: int) -> int:
    return int(xr_time) + XR_TIME_OFFSET_NS


def handle(kind, value: int):
    return ctypes.cast(ctypes.c_void_p(value), kind)


def address(pointer) -> int:
    return ctypes.cast(pointer, ctypes.c_void_p).value


class CallOrderError(AssertionError):
    """The application broke an OpenXR call-order rule for which the spec names no error code."""


class FakeRuntime:
    """The OpenXR runtime side of a two-eye headset session, as far as frames and swapchains go."""

    view_configurations: tuple = (xr.ViewConfigurationType.PRIMARY_STEREO,)

    def __init__(self, view_flags: int = VALID) -> None:
        self.instance, self.session = handle(xr.Instance, 0x10), handle(xr.Session, 0x20)
        self.space = handle(xr.Space, 0x30)
        self.state = "IDLE"
        """The last session state delivered to the application."""
        self.running = False
        """Between xrBeginSession and xrEndSession."""
        self.events: list[str] = []
        self.calls: list[tuple] = []
        self.should_render: list[bool] = []
        """Per wait_frame, popped from the front; True when empty."""
        self.skip: list[int] = []
        """Per wait_frame, popped from the front: display refreshes skipped before the frame (the
        application was late); none when empty."""
        self.skipped_display_times = 0
        self.view_flags = view_flags
        self.max_image_size = (4096, 4096)
        self.frame = "none"  # none -> waited -> begun -> none
        self.predicted_ns = 0
        self.period_ns = PERIOD_NS
        """The display's refresh period (``XrFrameState.predicted_display_period``): 90 Hz unless a
        test sets another (Monado's null compositor paces at 20 Hz)."""
        self.swapchains: dict[int, dict] = {}
        self.layers: list[list[dict]] = []
        """Per end_frame, the decoded layers."""
        self.destroyed: list[int] = []
        self.fail: dict[str, Exception] = {}
        """``xr`` function name (or raw function name, ``xrGetSystemProperties``) -> the error it raises."""

    def queue(self, *states: str) -> None:
        self.events.extend(states)

    def _log(self, *call) -> None:
        self.calls.append(call)

    # -- events and session -------------------------------------------------------------------------

    def _check_instance(self, instance, what: str) -> None:
        assert address(instance) == address(self.instance), what

    def poll_event(self, instance):
        self._check_instance(instance, "xrPollEvent")
        if not self.events:
            raise xr.EventUnavailable()
        self.state = self.events.pop(0)
        event = xr.EventDataSessionStateChanged(session=self.session, state=getattr(xr.SessionState, self.state))
        buffer = xr.EventDataBuffer()
        ctypes.memmove(ctypes.byref(buffer), ctypes.byref(event), ctypes.sizeof(event))
        return buffer

    def begin_session(self, session, begin_info):
        if self.state != "READY":
            raise xr.SessionNotReadyError(f"xrBeginSession in state {self.state}")
        if self.running:
            raise xr.SessionRunningError("xrBeginSession on a running session")
        if begin_info.primary_view_configuration_type not in self.view_configurations:
            raise xr.ViewConfigurationTypeUnsupportedError(
                f"xrBeginSession with {xr.ViewConfigurationType(begin_info.primary_view_configuration_type).name}")
        self.running = True
        self._log("begin_session")

    def end_session(self, session):
        if self.state != "STOPPING":
            raise xr.SessionNotStoppingError(f"xrEndSession in state {self.state}")
        if self.frame != "none":
            raise CallOrderError(f"xrEndSession with frame {self.frame}")
        self.running = False
        self._log("end_session")

    # -- frames -------------------------------------------------------------------------------------

    def _check_running(self, what: str) -> None:
        if not self.running:
            raise xr.SessionNotRunningError(f"{what} while the session is not running (state {self.state})")

    def _next_display_time(self) -> int:
        skipped = self.skip.pop(0) if self.skip else 0
        self.skipped_display_times += skipped
        return self.predicted_ns + self.period_ns * (1 + skipped)

    def wait_frame(self, session, frame_wait_info=None):
        self._check_running("xrWaitFrame")
        if self.frame != "none":
            raise CallOrderError(f"xrWaitFrame with a frame {self.frame}")
        self.frame = "waited"
        self.predicted_ns = self._next_display_time()
        render = self.should_render.pop(0) if self.should_render else True
        self._log("wait_frame")
        return xr.FrameState(predicted_display_time=self.predicted_ns, predicted_display_period=self.period_ns,
                             should_render=render)

    def begin_frame(self, session, frame_begin_info=None):
        self._check_running("xrBeginFrame")
        if self.frame != "waited":
            raise CallOrderError(f"xrBeginFrame with frame {self.frame}")
        self.frame = "begun"
        self._log("begin_frame")

    def locate_views(self, session, view_locate_info):
        assert view_locate_info.display_time == self.predicted_ns
        assert address(view_locate_info.space) == address(self.space)
        self._log("locate_views")
        views = (xr.View * 2)()
        for view, x, fov in zip(views, (-0.032, 0.032), (LEFT_FOV, RIGHT_FOV)):
            view.pose = xr.Posef(orientation=xr.Quaternionf(0.0, 0.0, 0.0, 1.0), position=xr.Vector3f(x, 1.6, 0.0))
            view.fov = xr.Fovf(*fov)
        return xr.ViewState(view_state_flags=self.view_flags), views

    def end_frame(self, session, frame_end_info):
        self._check_running("xrEndFrame")
        if self.frame != "begun":
            raise CallOrderError(f"xrEndFrame with frame {self.frame}")
        if frame_end_info.display_time != self.predicted_ns:
            raise CallOrderError(f"xrEndFrame for time {frame_end_info.display_time}, predicted {self.predicted_ns}")
        layers = []
        for index in range(frame_end_info.layer_count):
            header = frame_end_info.layers[index].contents
            assert header.type == xr.StructureType.COMPOSITION_LAYER_PROJECTION
            layer = ctypes.cast(frame_end_info.layers[index], ctypes.POINTER(xr.CompositionLayerProjection)).contents
            views = []
            for view in layer.views:
                assert view.type == xr.StructureType.COMPOSITION_LAYER_PROJECTION_VIEW
                swapchain = self.swapchains[address(view.sub_image.swapchain)]
                if swapchain["state"] != "released":
                    raise CallOrderError(f"layer uses swapchain {address(view.sub_image.swapchain)} in state "
                                         f"{swapchain['state']}")
                rect = view.sub_image.image_rect
                views.append({"position": tuple(view.pose.position), "fov": tuple(view.fov),
                              "swapchain": address(view.sub_image.swapchain),
                              "rect": (rect.offset.x, rect.offset.y, rect.extent.width, rect.extent.height)})
            layers.append({"space": address(layer.space), "views": views})
        self.layers.append(layers)
        self.frame = "none"
        self._log("end_frame", len(layers))

    # -- swapchains ---------------------------------------------------------------------------------

    def enumerate_view_configuration_views(self, instance, system_id, view_configuration_type):
        width, height = self.max_image_size
        return [xr.ViewConfigurationView(recommended_image_rect_width=min(1832, width), max_image_rect_width=width,
                                         recommended_image_rect_height=min(1920, height), max_image_rect_height=height,
                                         recommended_swapchain_sample_count=1, max_swapchain_sample_count=4)] * 2

    def enumerate_swapchain_formats(self, session):
        return [GL_RGBA16F, GL_SRGB8_ALPHA8, GL_RGBA8]

    def create_swapchain(self, session, create_info):
        value = 0x100 + len(self.swapchains)
        self.swapchains[value] = {"info": (create_info.width, create_info.height, create_info.format,
                                           create_info.sample_count), "state": "released", "next": 0}
        return handle(xr.Swapchain, value)

    def enumerate_swapchain_images(self, swapchain, element_type):
        assert element_type is xr.SwapchainImageOpenGLKHR
        images = (xr.SwapchainImageOpenGLKHR * 3)()
        for index, image in enumerate(images):
            image.image = address(swapchain) * 10 + index  # a distinct GL texture name per image
        return images

    def destroy_swapchain(self, swapchain):
        self.destroyed.append(address(swapchain))

    def acquire_swapchain_image(self, swapchain, acquire_info=None):
        chain = self.swapchains[address(swapchain)]
        if chain["state"] != "released":
            raise CallOrderError("xrAcquireSwapchainImage twice without a release")
        chain["state"] = "acquired"
        index, chain["next"] = chain["next"], (chain["next"] + 1) % 3
        self._log("acquire", address(swapchain))
        return index

    def wait_swapchain_image(self, swapchain, wait_info):
        chain = self.swapchains[address(swapchain)]
        if chain["state"] != "acquired":
            raise CallOrderError("xrWaitSwapchainImage before acquiring")
        chain["state"] = "waited"
        self._log("wait", address(swapchain))

    def release_swapchain_image(self, swapchain, release_info=None):
        chain = self.swapchains[address(swapchain)]
        if chain["state"] != "waited":
            raise CallOrderError("xrReleaseSwapchainImage before waiting")
        chain["state"] = "released"
        self._log("release", address(swapchain))


class TrackingRuntime(FakeRuntime):
    """A whole runtime on ``clock`` (see the module docstring): :class:`FakeRuntime`'s frames and
    swapchains plus instances, the system, sessions and their states, spaces, hand trackers,
    tracking and time.

    Frames: ``xrWaitFrame`` blocks until one period before the frame's predicted display time,
    on a vsync grid; a refresh whose wake-up already passed when the application asked is
    skipped (``skipped_display_times``), and ``xrEndFrame`` after the frame's display time
    counts in ``late_frames`` (what a compositor logs as "late by N ms"). The head and hands
    are located only at the open frame's predicted display time (a graphics session; the
    genxr rule, checked here) or at any valid time (headless); poses go NaN while
    ``bad_poses`` is set; the head's location flags are ``head_flags``.

    A headless session (``XR_MND_headless``) has Monado's quirks: ``xrWaitFrame`` returns at once
    with predicted display time 0 and ``should_render`` False, ``xrBeginFrame`` /
    ``xrEndFrame`` raise ``CallOrderInvalidError``.
    """

    view_configurations = (xr.ViewConfigurationType.PRIMARY_STEREO, xr.ViewConfigurationType.PRIMARY_MONO)

    def __init__(self, clock: ManualClock, *, extensions: tuple[str, ...] = ALL_EXTENSIONS,
                 hand_tracking: bool = True, head_flags: int = FULLY_LOCATED,
                 max_image_size: tuple[int, int] = (4096, 4096), api_version: tuple[int, int] = (1, 0)) -> None:
        super().__init__()
        self.clock = clock
        self.offered = tuple(extensions)
        self.hand_tracking = hand_tracking
        """The system's ``XrSystemHandTrackingPropertiesEXT.supportsHandTracking`` (the extension may be
        offered without it)."""
        self.head_flags = head_flags
        self.max_image_size = max_image_size
        self.api_version = api_version
        self.bad_poses = False
        self.violations: list[str] = []
        """Spec violations seen where raising is impossible (inside a C callback)."""
        self.called: list[str] = []
        """Every ``xr`` function called through :class:`XrFunctions`, in order."""
        self.instance = self.session = self.space = self.view_space = None
        self.headless = False
        self.exit_requested = False
        self.sessions_created = 0
        self.grid_ns = to_xr(clock.now_ns())
        """XrTime of a vsync: the display refreshes every ``period_ns`` from here."""
        self._frames_in_session = 0
        self.late_frames = 0
        self.end_margins_ns: list[int] = []
        """Per xrEndFrame: the frame's predicted display time minus the time it was ended."""
        self.trackers: list[int] = []
        self.destroyed_trackers: list[int] = []
        self.gl_requirements_calls: list[int] = []
        """The instance of each xrGetOpenGLGraphicsRequirementsKHR call."""
        self._handles: dict[int, dict] = {}
        self._next_handle = 0x1000
        self._callbacks = {  # the raw function pointers xrGetInstanceProcAddr hands out, kept alive here
            "xrLocateHandJointsEXT": xr.PFN_xrLocateHandJointsEXT(self._raw("xrLocateHandJointsEXT",
                                                                            self._locate_hand_joints)),
            "xrGetSystemProperties": xr.PFN_xrGetSystemProperties(self._raw("xrGetSystemProperties",
                                                                            self._get_system_properties)),
            "xrGetOpenGLGraphicsRequirementsKHR": xr.PFN_xrGetOpenGLGraphicsRequirementsKHR(
                self._raw("xrGetOpenGLGraphicsRequirementsKHR", self._get_gl_requirements)),
        }

    # -- handles ------------------------------------------------------------------------------------

    def _new(self, kind: str, parent, **info) -> int:
        value = self._next_handle
        self._next_handle += 0x10
        self._handles[value] = {"kind": kind, "parent": None if parent is None else address(parent),
                                "destroyed": False, **info}
        return value

    def _entry(self, pointer, kind: str, what: str) -> dict:
        value = address(pointer) if pointer is not None else None
        entry = self._handles.get(value)
        if entry is None or entry["kind"] != kind:
            raise xr.HandleInvalidError(f"{what}: {value} is not an {kind} handle of this runtime")
        walk = entry
        while walk is not None:
            if walk["destroyed"]:
                raise xr.HandleInvalidError(f"{what}: {kind} {value:#x} (or its parent) was destroyed")
            walk = self._handles.get(walk["parent"])
        return entry

    def _destroy(self, pointer, kind: str, what: str) -> None:
        self._entry(pointer, kind, what)["destroyed"] = True

    def live(self) -> list[str]:
        """Handles the application created and did not destroy (swapchains included)."""
        left = [f"{entry['kind']} {value:#x}" for value, entry in self._handles.items() if not entry["destroyed"]]
        return left + [f"swapchain {value:#x}" for value in self.swapchains if value not in self.destroyed]

    def _instance_entry(self, instance, what: str) -> dict:
        return self._entry(instance, "instance", what)

    def _check_instance(self, instance, what: str) -> None:
        self._instance_entry(instance, what)

    def _session_entry(self, session, what: str) -> dict:
        return self._entry(session, "session", what)

    def _system(self, instance, system_id, what: str) -> dict:
        entry = self._instance_entry(instance, what)
        if entry["system"] is None or int(system_id) != entry["system"]:
            raise xr.SystemInvalidError(f"{what}: system {system_id} was not got from xrGetSystem on this instance")
        return entry

    def _needs(self, instance, extension: str, what: str) -> None:
        if extension not in self._instance_entry(instance, what)["extensions"]:
            raise xr.FunctionUnsupportedError(f"{what} needs {extension} enabled on the instance")

    def _raw(self, name: str, function):
        """A raw function pointer's body: errors become the XrResult a runtime returns (an exception
        cannot cross the C callback); anything else is recorded as a violation."""
        def call(*args) -> int:
            try:
                if name in self.fail:
                    raise self.fail[name]
                function(*args)
                return int(xr.Result.SUCCESS)
            except xr.XrException as err:
                return int(_RESULT_OF.get(type(err), xr.Result.ERROR_RUNTIME_FAILURE))
            except Exception as err:
                self.violations.append(f"{name}: {type(err).__name__}: {err}")
                return int(xr.Result.ERROR_VALIDATION_FAILURE)
        return call

    # -- instance and system ------------------------------------------------------------------------

    def enumerate_instance_extension_properties(self, layer_name=None):
        return [xr.ExtensionProperties(extension_name=name, extension_version=1) for name in self.offered]

    def create_instance(self, create_info=None):
        info = create_info if create_info is not None else xr.InstanceCreateInfo()
        names = [info.enabled_extension_names[index].decode() for index in range(info.enabled_extension_count)]
        missing = [name for name in names if name not in self.offered]
        if missing:
            raise xr.ExtensionNotPresentError(f"xrCreateInstance: {missing} not offered")
        version = info.application_info.api_version
        if (version.major, version.minor) > self.api_version:
            raise xr.ApiVersionUnsupportedError(f"xrCreateInstance: API {version.major}.{version.minor} asked, "
                                                f"the runtime is {self.api_version[0]}.{self.api_version[1]}")
        self.instance = handle(xr.Instance, self._new("instance", None, extensions=set(names), system=None,
                                                      gl_requirements=set()))
        return self.instance

    def destroy_instance(self, instance):
        self._destroy(instance, "instance", "xrDestroyInstance")

    def get_instance_properties(self, instance):
        self._check_instance(instance, "xrGetInstanceProperties")
        return xr.InstanceProperties(runtime_name="genxr fake runtime")

    def get_system(self, instance, get_info):
        entry = self._instance_entry(instance, "xrGetSystem")
        if get_info.form_factor != xr.FormFactor.HEAD_MOUNTED_DISPLAY:
            raise xr.FormFactorUnsupportedError(f"xrGetSystem: form factor {get_info.form_factor}")
        entry["system"] = SYSTEM_ID
        return SYSTEM_ID

    def get_system_properties(self, instance, system_id):
        self._system(instance, system_id, "xrGetSystemProperties")
        return xr.SystemProperties(system_id=system_id, system_name="genxr fake headset")

    def get_instance_proc_addr(self, instance, name):
        needs = {"xrLocateHandJointsEXT": "XR_EXT_hand_tracking", "xrGetSystemProperties": None,
                 "xrGetOpenGLGraphicsRequirementsKHR": "XR_KHR_opengl_enable"}
        if name not in needs:
            raise xr.FunctionUnsupportedError(f"xrGetInstanceProcAddr: the fake runtime has no {name}")
        if needs[name] is not None:
            self._needs(instance, needs[name], f"xrGetInstanceProcAddr({name})")
        else:
            self._check_instance(instance, "xrGetInstanceProcAddr")
        return ctypes.cast(self._callbacks[name], xr.PFN_xrVoidFunction)

    def _get_system_properties(self, instance, system_id, properties) -> None:
        self._system(instance, system_id, "xrGetSystemProperties")
        properties = properties.contents
        properties.system_id = int(system_id)
        properties.system_name = b"genxr fake headset"
        chained = ctypes.cast(properties._next, ctypes.c_void_p).value
        while chained:
            base = ctypes.cast(chained, ctypes.POINTER(xr.BaseOutStructure)).contents
            if base.type == xr.StructureType.SYSTEM_HAND_TRACKING_PROPERTIES_EXT:
                ctypes.cast(chained, ctypes.POINTER(xr.SystemHandTrackingPropertiesEXT)).contents \
                    .supports_hand_tracking = self.hand_tracking
            chained = ctypes.cast(base._next, ctypes.c_void_p).value

    def _get_gl_requirements(self, instance, system_id, requirements) -> None:
        entry = self._system(instance, system_id, "xrGetOpenGLGraphicsRequirementsKHR")
        entry["gl_requirements"].add(int(system_id))
        self.gl_requirements_calls.append(address(instance))

    # -- session ------------------------------------------------------------------------------------

    def create_session(self, instance, create_info):
        entry = self._system(instance, create_info.system_id, "xrCreateSession")
        binding = create_info.next
        binding = binding.value if isinstance(binding, ctypes.c_void_p) else binding
        if not binding:
            if "XR_MND_headless" not in entry["extensions"]:
                raise xr.GraphicsDeviceInvalidError("xrCreateSession without a graphics binding needs XR_MND_headless")
            headless = True
        else:
            kind = ctypes.cast(binding, ctypes.POINTER(xr.BaseInStructure)).contents.type
            needs = {int(xr.StructureType.GRAPHICS_BINDING_EGL_MNDX): "XR_MNDX_egl_enable",
                     int(xr.StructureType.GRAPHICS_BINDING_OPENGL_XLIB_KHR): "XR_KHR_opengl_enable"}
            if int(kind) not in needs or needs[int(kind)] not in entry["extensions"] \
                    or "XR_KHR_opengl_enable" not in entry["extensions"]:
                raise xr.GraphicsDeviceInvalidError(f"xrCreateSession with graphics binding {kind}: not enabled")
            if SYSTEM_ID not in entry["gl_requirements"]:
                raise xr.GraphicsRequirementsCallMissingError(
                    "Has not called xrGetOpenGL[ES]GraphicsRequirementsKHR")  # what Monado says
            headless = False
        if any(other["kind"] == "session" and not other["destroyed"] and other["parent"] == address(instance)
               for other in self._handles.values()):
            raise xr.LimitReachedError("xrCreateSession: this instance already has a session")
        self.session = handle(xr.Session, self._new("session", instance, headless=headless))
        self.sessions_created += 1
        self.headless, self.running, self.exit_requested, self.frame = headless, False, False, "none"
        self.state, self.events, self._frames_in_session = "IDLE", [], 0
        self.queue("IDLE", "READY")  # a runtime sends READY once it is ready for the session to begin
        return self.session

    def destroy_session(self, session):
        self._destroy(session, "session", "xrDestroySession")
        self.running, self.frame, self.events = False, "none", []

    def begin_session(self, session, begin_info):
        self._session_entry(session, "xrBeginSession")
        super().begin_session(session, begin_info)
        self.queue("SYNCHRONIZED", "VISIBLE", "FOCUSED")

    def _stop(self) -> None:
        last = self.events[-1] if self.events else self.state
        down = {"FOCUSED": ["VISIBLE", "SYNCHRONIZED"], "VISIBLE": ["SYNCHRONIZED"]}.get(last, [])
        self.exit_requested = True
        self.queue(*down, "STOPPING")

    def request_exit_session(self, session):
        self._session_entry(session, "xrRequestExitSession")
        self._check_running("xrRequestExitSession")
        self._stop()

    def runtime_exit(self) -> None:
        """The runtime asks the application to exit (the user quit from the headset's menu)."""
        self._stop()

    def end_session(self, session):
        self._session_entry(session, "xrEndSession")
        super().end_session(session)
        self.queue("IDLE", *(["EXITING"] if self.exit_requested else []))

    # -- frames -------------------------------------------------------------------------------------

    def _next_display_time(self) -> int:
        now = to_xr(self.clock.now_ns())
        if self._frames_in_session == 0:  # the first frame: the first refresh a period from now
            periods = -(-(now + self.period_ns - self.grid_ns) // self.period_ns)
            candidate = self.grid_ns + periods * self.period_ns
        else:
            candidate = self.predicted_ns + self.period_ns
            while candidate - self.period_ns < now:  # its wake-up passed: the application is late, the refresh is lost
                candidate += self.period_ns
                self.skipped_display_times += 1
        self._frames_in_session += 1
        return candidate

    def wait_frame(self, session, frame_wait_info=None):
        self._session_entry(session, "xrWaitFrame")
        if self.headless:  # Monado: returns at once, time 0, nothing to render
            self._check_running("xrWaitFrame")
            self._log("wait_frame")
            return xr.FrameState(predicted_display_time=0, predicted_display_period=self.period_ns, should_render=False)
        state = super().wait_frame(session, frame_wait_info)
        self.clock.sleep_until_ns(from_xr(self.predicted_ns - self.period_ns))  # a runtime that blocks to its display
        return state

    def begin_frame(self, session, frame_begin_info=None):
        self._session_entry(session, "xrBeginFrame")
        if self.headless:
            raise xr.CallOrderInvalidError("xrBeginFrame in a headless session")  # Monado's quirk
        super().begin_frame(session, frame_begin_info)

    def end_frame(self, session, frame_end_info):
        self._session_entry(session, "xrEndFrame")
        if self.headless:
            raise xr.CallOrderInvalidError("xrEndFrame in a headless session")
        margin = int(frame_end_info.display_time) - to_xr(self.clock.now_ns())
        super().end_frame(session, frame_end_info)
        self.end_margins_ns.append(margin)
        if margin < 0:
            self.late_frames += 1

    def locate_views(self, session, view_locate_info):
        self._session_entry(session, "xrLocateViews")
        self._check_running("xrLocateViews")
        return super().locate_views(session, view_locate_info)

    def enumerate_view_configuration_views(self, instance, system_id, view_configuration_type):
        self._system(instance, system_id, "xrEnumerateViewConfigurationViews")
        return super().enumerate_view_configuration_views(instance, system_id, view_configuration_type)

    def create_swapchain(self, session, create_info):
        entry = self._session_entry(session, "xrCreateSwapchain")
        if entry["headless"]:
            raise xr.FunctionUnsupportedError("xrCreateSwapchain in a headless session")
        width, height = self.max_image_size
        if create_info.width > width or create_info.height > height:
            raise xr.SizeInsufficientError(f"xrCreateSwapchain {create_info.width}x{create_info.height}")
        return super().create_swapchain(session, create_info)

    # -- spaces, hand trackers ----------------------------------------------------------------------

    def create_reference_space(self, session, create_info):
        self._session_entry(session, "xrCreateReferenceSpace")
        kind = xr.ReferenceSpaceType(create_info.reference_space_type)
        space = handle(xr.Space, self._new("space", session, reference=kind.name))
        if kind == xr.ReferenceSpaceType.VIEW:
            self.view_space = space
        else:
            self.space = space
        return space

    def destroy_space(self, space):
        self._destroy(space, "space", "xrDestroySpace")

    def create_action_set(self, instance, create_info):  # pyopenxr's ContextObject makes one
        return handle(xr.ActionSet, self._new("action_set", instance))

    def destroy_action_set(self, action_set):
        self._destroy(action_set, "action_set", "xrDestroyActionSet")

    def create_hand_tracker_ext(self, session, create_info):
        entry = self._session_entry(session, "xrCreateHandTrackerEXT")
        if "XR_EXT_hand_tracking" not in self._handles[entry["parent"]]["extensions"]:
            raise xr.FunctionUnsupportedError("xrCreateHandTrackerEXT needs XR_EXT_hand_tracking")
        if not self.hand_tracking:
            raise xr.FeatureUnsupportedError("xrCreateHandTrackerEXT: the system does not support hand tracking")
        value = self._new("hand_tracker", session, hand=int(create_info.hand))
        self.trackers.append(value)
        return handle(xr.HandTrackerEXT, value)

    def destroy_hand_tracker_ext(self, tracker):
        self._destroy(tracker, "hand_tracker", "xrDestroyHandTrackerEXT")
        self.destroyed_trackers.append(address(tracker))

    # -- time ---------------------------------------------------------------------------------------

    def convert_timespec_time_to_time_khr(self, instance, spec):
        self._needs(instance, "XR_KHR_convert_timespec_time", "xrConvertTimespecTimeToTimeKHR")
        return to_xr(spec.tv_sec * NS_PER_S + spec.tv_nsec)

    def convert_time_to_timespec_time_khr(self, instance, xr_time):
        self._needs(instance, "XR_KHR_convert_timespec_time", "xrConvertTimeToTimespecTimeKHR")
        ns = from_xr(xr_time)
        return xr.timespec(tv_sec=ns // NS_PER_S, tv_nsec=ns % NS_PER_S)

    # -- tracking -----------------------------------------------------------------------------------

    def _check_time(self, what: str, xr_time: int) -> None:
        if int(xr_time) <= 0:
            raise xr.TimeInvalidError(f"{what} at XrTime {int(xr_time)}")
        if self.headless:
            return
        if self.frame != "begun":
            raise AssertionError(f"{what} outside a frame (frame {self.frame})")
        if int(xr_time) != self.predicted_ns:
            raise AssertionError(f"{what} at XrTime {int(xr_time)}, not the frame's predicted display time "
                                 f"{self.predicted_ns}")

    def _posef(self, x: float, bad: bool) -> xr.Posef:
        position = xr.Vector3f(float("nan") if bad else x, 1.6, -0.3)
        return xr.Posef(orientation=xr.Quaternionf(0.0, 0.0, 0.0, 1.0), position=position)

    def locate_space(self, space, base_space, time):
        self._entry(space, "space", "xrLocateSpace")
        self._entry(base_space, "space", "xrLocateSpace")
        assert address(space) == address(self.view_space) and address(base_space) == address(self.space), \
            "the head is the VIEW space located in the reference space"
        self._check_time("xrLocateSpace", time)
        moved = (int(time) % NS_PER_S) / NS_PER_S  # the head moves with time
        location = xr.SpaceLocation(pose=self._posef(0.1 * moved, self.bad_poses))
        location.location_flags = self.head_flags
        return location

    def _locate_hand_joints(self, tracker, info, locations) -> None:
        info, locations = info.contents, locations.contents
        self._entry(tracker, "hand_tracker", "xrLocateHandJointsEXT")
        self._entry(info.base_space, "space", "xrLocateHandJointsEXT")
        assert address(info.base_space) == address(self.space), "hands located in the reference space"
        self._check_time("xrLocateHandJointsEXT", info.time)
        if locations.joint_count != HAND_JOINT_COUNT:
            raise xr.ValidationFailureError(f"xrLocateHandJointsEXT with {locations.joint_count} joints")
        if not locations._joint_locations:
            raise xr.ValidationFailureError("xrLocateHandJointsEXT: jointLocations == NULL")  # what Monado says
        locations.is_active = True
        for index in range(HAND_JOINT_COUNT):
            joint = locations._joint_locations[index]
            joint.pose = self._posef(0.01 * index, self.bad_poses and index == BAD_JOINT)
            joint.radius = 0.01
            joint.location_flags = FULLY_LOCATED


class XrFunctions:
    """The ``xr`` module as the code under test sees it: pyopenxr's structs, enums and exceptions,
    and every runtime function (:data:`RUNTIME_FUNCTIONS`) answered by ``runtime`` - raising
    ``runtime.fail[name]`` where set. A runtime function the fake does not implement, or
    ``raw_functions``, is an AttributeError: no real runtime is ever called with fake handles."""

    def __init__(self, runtime: TrackingRuntime) -> None:
        self._runtime = runtime

    def __getattr__(self, name: str):
        if name == "raw_functions":
            raise AttributeError("xr.raw_functions would call the real loader: use xr.get_instance_proc_addr")
        if name not in RUNTIME_FUNCTIONS:
            return getattr(xr, name)
        runtime = self._runtime
        if not hasattr(runtime, name):
            raise AttributeError(f"the fake runtime does not implement xr.{name}")
        method = getattr(runtime, name)

        def call(*args, **kwargs):
            runtime.called.append(name)
            if name in runtime.fail:
                raise runtime.fail[name]
            return method(*args, **kwargs)

        return call


class FakeGL:
    """Stands for the EGL context and its graphics binding (an ``XrGraphicsBindingEGLMNDX``)."""

    def __init__(self) -> None:
        self.binding = xr.GraphicsBindingEGLMNDX()
        self.pointer = ctypes.cast(ctypes.pointer(self.binding), ctypes.c_void_p)
        self.made_current = 0
        self.destroyed = 0

    def make_current(self) -> None:
        self.made_current += 1

    def destroy(self) -> None:
        self.destroyed += 1


class FakeOpenXRSource(OpenXRSource):
    """The real :class:`OpenXRSource` - entering, the frame cycle, tracking, leaving - on ``runtime``
    through :class:`XrFunctions`; only the EGL context is a stand-in (:class:`FakeGL`)."""

    def __init__(self, runtime: TrackingRuntime, **kwargs) -> None:
        super().__init__(**kwargs)
        self.runtime = runtime
        self.gl_contexts: list[FakeGL] = []

    def _load_xr(self):
        return XrFunctions(self.runtime)

    def _gl_binding(self):
        gl = FakeGL()
        self.gl_contexts.append(gl)
        return gl, gl


class FakeHeadsetSource(FakeOpenXRSource):
    """:class:`FakeOpenXRSource` asking for a graphics session (a headset), as ``genxr demo`` does."""

    def __init__(self, runtime: TrackingRuntime, **kwargs) -> None:
        kwargs.setdefault("prefer_headless", False)
        super().__init__(runtime, **kwargs)


class Uploads:
    """Records what the sink would upload (texture, image, format)."""

    def __init__(self) -> None:
        self.done: list[tuple[int, np.ndarray, int]] = []

    def __call__(self, texture: int, image: np.ndarray, swapchain_format: int) -> None:
        self.done.append((texture, image, swapchain_format))


def headset(view_flags: int = VALID, size=(32, 24)):
    runtime = FakeRuntime(view_flags)
    cycle = OpenXRFrameCycle(runtime, instance=runtime.instance, session=runtime.session,
                             reference_space=runtime.space, view_configuration="PRIMARY_STEREO")
    uploads = Uploads()
    sink = OpenXRSwapchainSink(cycle, system_id=1, width=size[0], height=size[1], upload=uploads)
    return runtime, cycle, sink, uploads


def stereo_frame(frame_id: int, size=(32, 24), views: int = 2) -> DisplayFrame:
    images = [np.full((size[1], size[0], 3), 10 * frame_id + eye, np.uint8) for eye in range(views)]
    return DisplayFrame(frame_id=frame_id, display_time_ns=0, image=images[0], view_images=images)

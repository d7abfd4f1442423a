"""A spec-enforcing fake OpenXR runtime for the graphics path (frame cycle, swapchains, views),
built on pyopenxr's real structs; it raises where a real runtime would (call order, sizes, formats).

Used by the OpenXR sink and source tests and the tracking-source contract suite.
"""

from __future__ import annotations

import ctypes

import numpy as np
import xr

from genxr.platform.messages import DisplayFrame
from genxr.xr_runtime.openxr.frames import OpenXRFrameCycle
from genxr.xr_runtime.openxr.sink import (
    GL_RGBA8,
    GL_RGBA16F,
    GL_SRGB8_ALPHA8,
    OpenXRSwapchainSink,
)

PERIOD_NS = 11_111_111
LEFT_FOV = (-0.9, 0.7, 0.8, -0.85)
RIGHT_FOV = (-0.7, 0.9, 0.8, -0.85)
VALID = int(xr.ViewStateFlags.POSITION_VALID_BIT | xr.ViewStateFlags.ORIENTATION_VALID_BIT)


def handle(kind, value: int):
    return ctypes.cast(ctypes.c_void_p(value), kind)


def address(pointer) -> int:
    return ctypes.cast(pointer, ctypes.c_void_p).value


class CallOrderError(AssertionError):
    """The application broke an OpenXR call-order rule."""


class FakeRuntime:
    """The OpenXR runtime side of a two-eye headset session, as far as frames and swapchains go."""

    def __init__(self, view_flags: int = VALID) -> None:
        self.instance, self.session = handle(xr.Instance, 0x10), handle(xr.Session, 0x20)
        self.space = handle(xr.Space, 0x30)
        self.state = "IDLE"
        self.events: list[str] = []
        self.calls: list[tuple] = []
        self.should_render: list[bool] = []
        """Per wait_frame, popped from the front; True when empty."""
        self.view_flags = view_flags
        self.frame = "none"  # none -> waited -> begun -> none
        self.predicted_ns = 0
        self.swapchains: dict[int, dict] = {}
        self.layers: list[list[dict]] = []
        """Per end_frame, the decoded layers."""
        self.destroyed: list[int] = []

    def queue(self, *states: str) -> None:
        self.events.extend(states)

    def _log(self, *call) -> None:
        self.calls.append(call)

    # -- events and session -------------------------------------------------------------------------

    def poll_event(self, instance):
        assert address(instance) == address(self.instance)
        if not self.events:
            raise xr.EventUnavailable()
        self.state = self.events.pop(0)
        event = xr.EventDataSessionStateChanged(session=self.session, state=getattr(xr.SessionState, self.state))
        buffer = xr.EventDataBuffer()
        ctypes.memmove(ctypes.byref(buffer), ctypes.byref(event), ctypes.sizeof(event))
        return buffer

    def begin_session(self, session, begin_info):
        if self.state != "READY":
            raise CallOrderError(f"xrBeginSession in state {self.state}")
        assert begin_info.primary_view_configuration_type == xr.ViewConfigurationType.PRIMARY_STEREO
        self._log("begin_session")

    def end_session(self, session):
        if self.state != "STOPPING" or self.frame != "none":
            raise CallOrderError(f"xrEndSession in state {self.state} with frame {self.frame}")
        self._log("end_session")

    # -- frames -------------------------------------------------------------------------------------

    def wait_frame(self, session, frame_wait_info=None):
        if self.frame != "none":
            raise CallOrderError(f"xrWaitFrame with a frame {self.frame}")
        self.frame = "waited"
        self.predicted_ns += PERIOD_NS
        render = self.should_render.pop(0) if self.should_render else True
        self._log("wait_frame")
        return xr.FrameState(predicted_display_time=self.predicted_ns, predicted_display_period=PERIOD_NS,
                             should_render=render)

    def begin_frame(self, session, frame_begin_info=None):
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
        return [xr.ViewConfigurationView(recommended_image_rect_width=1832, max_image_rect_width=4096,
                                         recommended_image_rect_height=1920, max_image_rect_height=4096,
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

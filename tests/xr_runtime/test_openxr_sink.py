"""The headset path's OpenXR call sequence, with pyopenxr's real structs, against a fake
runtime behind the frame cycle's :class:`OpenXRCalls` interface (no runtime or headset can
exist on a CI machine; this fake is the one stand-in). The fake enforces the spec's
call-order rules - one begin and one end per wait, the predicted display time at end,
acquire -> wait -> release before a swapchain is used in a layer, xrEndSession only while
STOPPING with no frame open - and decodes every submitted layer from its C structs.

The GL upload itself runs with real Mesa GL in a child process (test_openxr_gl.py)."""

from __future__ import annotations

import ctypes
import math

import numpy as np
import pytest
import xr

from genxr.platform.messages import DisplayFrame
from genxr.xr_runtime.openxr_frames import OpenXRFrameCycle, views_from_xr
from genxr.xr_runtime.openxr_sink import (
    GL_RGB10_A2,
    GL_RGBA8,
    GL_RGBA16F,
    GL_SRGB8_ALPHA8,
    SRGB_TO_LINEAR,
    OpenXRSwapchainSink,
    SwapchainError,
    choose_swapchain_format,
    texture_pixels,
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


def test_stereo_frames_acquire_upload_release_each_view_then_end_with_one_projection_layer():
    runtime, cycle, sink, uploads = headset()
    runtime.queue("READY")
    for frame_id in (1, 2, 3):
        frame = cycle.begin(frame_id)
        assert frame is not None and len(frame.views) == 2
        assert frame.views[0].fov.angle_left == pytest.approx(LEFT_FOV[0])
        assert frame.views[1].pose.position == pytest.approx((0.032, 1.6, 0.0))
        sink.submit(stereo_frame(frame_id))
    left, right = sorted(runtime.swapchains)
    per_frame = [("wait_frame",), ("begin_frame",), ("locate_views",), ("acquire", left), ("wait", left),
                 ("release", left), ("acquire", right), ("wait", right), ("release", right), ("end_frame", 1)]
    assert runtime.calls == [("begin_session",)] + per_frame * 3
    assert [info["info"] for info in runtime.swapchains.values()] == [(32, 24, GL_SRGB8_ALPHA8, 1)] * 2
    # Each view's image went into the texture of the image acquired for it, round-robin over three.
    assert [texture for texture, _, _ in uploads.done] == [left * 10, right * 10, left * 10 + 1, right * 10 + 1,
                                                           left * 10 + 2, right * 10 + 2]
    assert [int(image[0, 0, 0]) for _, image, _ in uploads.done] == [10, 11, 20, 21, 30, 31]
    layer = runtime.layers[-1][0]
    assert layer["space"] == address(runtime.space)
    assert [view["swapchain"] for view in layer["views"]] == [left, right]
    assert [view["rect"] for view in layer["views"]] == [(0, 0, 32, 24)] * 2
    assert layer["views"][0]["fov"] == pytest.approx(LEFT_FOV) and layer["views"][1]["fov"] == pytest.approx(RIGHT_FOV)
    assert layer["views"][0]["position"] == pytest.approx((-0.032, 1.6, 0.0))
    assert sink.frames_with_layers == 3 and cycle.frames_begun == cycle.frames_ended == 3


def test_a_frame_the_runtime_does_not_want_rendered_ends_with_no_layers():
    runtime, cycle, sink, uploads = headset()
    runtime.queue("READY")
    runtime.should_render = [False, True]
    frame = cycle.begin(1)
    assert frame.views == () and not frame.state.should_render
    sink.submit(stereo_frame(1))
    sink.submit_count = None
    cycle.begin(2)
    sink.submit(stereo_frame(2))
    assert runtime.calls[1:4] == [("wait_frame",), ("begin_frame",), ("end_frame", 0)], "no views located, no acquire"
    assert runtime.layers[0] == [] and len(runtime.layers[1]) == 1
    assert len(uploads.done) == 2 and sink.frames_without_layers == 1


def test_views_without_valid_poses_end_the_frame_with_no_layers():
    runtime, cycle, sink, uploads = headset(view_flags=int(xr.ViewStateFlags.ORIENTATION_VALID_BIT))
    runtime.queue("READY")
    assert cycle.begin(1).views == ()
    sink.submit(stereo_frame(1))
    assert runtime.layers == [[]] and not uploads.done


def test_session_stopping_mid_run_ends_the_open_frame_then_the_session_and_stops_waiting():
    runtime, cycle, sink, _ = headset()
    runtime.queue("READY", "SYNCHRONIZED", "VISIBLE", "FOCUSED")
    cycle.begin(1)
    sink.submit(stereo_frame(1))
    cycle.begin(2)  # no sink submits this one: the cycle must still end it before xrEndSession
    runtime.queue("VISIBLE", "SYNCHRONIZED", "STOPPING")
    assert cycle.begin(3) is None and not cycle.running
    assert runtime.calls[-3:] == [("locate_views",), ("end_frame", 0), ("end_session",)]
    assert cycle.begin(4) is None and runtime.calls[-1] == ("end_session",), "no xrWaitFrame once stopped"
    sink.submit(stereo_frame(4))  # nothing open: nothing submitted
    runtime.queue("IDLE", "EXITING")
    assert cycle.begin(5) is None and cycle.ended
    assert runtime.calls.count(("wait_frame",)) == cycle.frames_begun == cycle.frames_ended == 2


def test_an_image_that_does_not_match_its_swapchain_is_refused_naming_both_sizes():
    runtime, cycle, sink, uploads = headset(size=(32, 24))
    runtime.queue("READY")
    cycle.begin(1)
    with pytest.raises(SwapchainError, match=r"view 0: the display image is 32x20 \(width x height\) but its "
                                             r"swapchain is 32x24"):
        sink.submit(stereo_frame(1, size=(32, 20)))
    assert runtime.calls[-1] == ("end_frame", 0) and not uploads.done, "the frame is still ended, nothing acquired"
    cycle.begin(2)
    with pytest.raises(SwapchainError, match=r"has 1 view image\(s\) but the OpenXR session has 2 views"):
        sink.submit(stereo_frame(2, views=1))
    assert cycle.frames_begun == cycle.frames_ended == 2


def test_closing_ends_an_open_frame_and_destroys_the_swapchains():
    runtime, cycle, sink, _ = headset()
    runtime.queue("READY")
    cycle.begin(1)
    sink.close()
    assert runtime.calls[-1] == ("end_frame", 0) and sorted(runtime.destroyed) == sorted(runtime.swapchains)


def test_a_display_larger_than_the_runtime_allows_is_refused():
    runtime = FakeRuntime()
    cycle = OpenXRFrameCycle(runtime, instance=runtime.instance, session=runtime.session,
                             reference_space=runtime.space, view_configuration="PRIMARY_STEREO")
    with pytest.raises(SwapchainError, match=r"view 0: the display size 8192x256 .* exceeds the runtime's maximum "
                                             r"4096x4096"):
        OpenXRSwapchainSink(cycle, system_id=1, width=8192, height=256, upload=Uploads())


def test_swapchain_format_prefers_srgb_and_names_what_it_accepts():
    assert choose_swapchain_format([GL_RGB10_A2, GL_RGBA8, GL_SRGB8_ALPHA8]) == GL_SRGB8_ALPHA8
    assert choose_swapchain_format([GL_RGBA8, GL_RGBA16F]) == GL_RGBA16F
    with pytest.raises(SwapchainError, match=r"offers no usable colour swapchain format: got \['0x8d62'\].*GL_SRGB8_ALPHA8"):
        choose_swapchain_format([0x8D62])


def test_texture_pixels_flip_rows_and_linearise_for_linear_formats():
    image = np.zeros((2, 3, 3), np.uint8)
    image[0] = (255, 128, 0)  # top row
    srgb = texture_pixels(image, GL_SRGB8_ALPHA8)
    np.testing.assert_array_equal(srgb[1], image[0])  # GL rows go up: the top row is uploaded last
    linear = texture_pixels(image, GL_RGBA16F)
    assert linear.dtype == np.float32 and linear[1, 0] == pytest.approx([1.0, 0.2158605, 0.0], abs=1e-6)
    assert texture_pixels(image, GL_RGBA8)[1, 0].tolist() == [255, 55, 0]
    assert SRGB_TO_LINEAR[10] == pytest.approx(10 / 255 / 12.92)
    with pytest.raises(SwapchainError, match=r"must be \(H, W, 3\) uint8, got \(2, 3\) uint8"):
        texture_pixels(np.zeros((2, 3), np.uint8), GL_SRGB8_ALPHA8)


def test_views_from_a_runtime_with_nan_poses_or_impossible_fields_of_view_are_not_used():
    views = (xr.View * 2)()
    for view in views:
        view.pose = xr.Posef(orientation=xr.Quaternionf(0.0, 0.0, 0.0, 1.0), position=xr.Vector3f(0.0, 1.6, 0.0))
        view.fov = xr.Fovf(*LEFT_FOV)
    state = xr.ViewState(view_state_flags=VALID)
    assert len(views_from_xr(xr, state, views)) == 2
    views[1].pose.position.x = math.nan
    assert views_from_xr(xr, state, views) == ()
    views[1].pose.position.x = 0.0
    views[0].fov = xr.Fovf(0.5, -0.5, 0.8, -0.8)
    assert views_from_xr(xr, state, views) == ()


def test_the_graphics_source_opens_frames_with_their_views_and_paces_itself_until_ready():
    from genxr.platform.clock import MONOTONIC
    from genxr.xr_runtime.openxr_source import OpenXRSource

    runtime, cycle, sink, _ = headset()
    source = OpenXRSource(clock=MONOTONIC, fallback_rate_hz=1000.0)
    source._xr, source._gl_context, source.frame_cycle = xr, "a graphics session", cycle  # entered, minus a runtime
    source.state_machine = cycle.state_machine
    source._genxr_time = lambda xr_time: int(xr_time)  # the fake's XrTime is already genxr nanoseconds
    before = source.wait_frame()
    assert not before.should_render and before.views == () and runtime.calls == []
    runtime.queue("READY")
    timing = source.wait_frame()
    assert timing.frame_id == before.frame_id + 1 and timing.predicted_display_time_ns == PERIOD_NS
    assert [view.fov.angle_right for view in timing.views] == pytest.approx([LEFT_FOV[1], RIGHT_FOV[1]])
    sink.submit(stereo_frame(timing.frame_id))
    assert runtime.calls[-1] == ("end_frame", 1)


def test_only_an_openxr_graphics_session_gets_a_headset_sink():
    from genxr.xr_runtime.openxr_sink import headset_sink
    from genxr.xr_runtime.openxr_source import OpenXRSource
    from genxr.xr_runtime.sim_source import SimulatedSource

    with headset_sink(SimulatedSource(seed=0), 32, 24) as sink:
        assert sink is None
    headless = OpenXRSource()  # never entered: no graphics session
    with headset_sink(headless, 32, 24) as sink:
        assert sink is None
    _, cycle, _, _ = headset()
    graphics = OpenXRSource()
    graphics._gl_context, graphics.frame_cycle, graphics.system_id = "a graphics session", cycle, 1
    with headset_sink(graphics, 32, 24) as sink:
        assert isinstance(sink, OpenXRSwapchainSink) and sink.cycle is cycle


def test_a_session_with_a_headset_submits_every_frame_to_it_with_both_eyes(tmp_path):
    from genxr.platform.clock import MONOTONIC
    from genxr.platform.config import load_config
    from genxr.platform.messages import Pose, TrackingFrame, WorldFrame
    from genxr.xr_runtime.openxr_source import OpenXRSource
    from genxr.xr_runtime.session import run_session

    runtime = FakeRuntime()

    class Headset(OpenXRSource):
        """The real OpenXRSource frame path over the fake runtime; tracking is a still head."""

        def __enter__(self):
            self._xr, self._gl_context, self.system_id = xr, "a graphics session", 1
            self.frame_cycle = OpenXRFrameCycle(runtime, instance=runtime.instance, session=runtime.session,
                                                reference_space=runtime.space, view_configuration="PRIMARY_STEREO",
                                                state_machine=self.state_machine)
            runtime.queue("READY")
            return self

        def __exit__(self, *exc):
            self.frame_cycle.close()

        def _genxr_time(self, xr_time) -> int:
            return MONOTONIC.now_ns() + PERIOD_NS

        def read(self, timing):
            now = MONOTONIC.now_ns()
            return TrackingFrame(frame_id=timing.frame_id, sample_time_ns=now,
                                 predicted_display_time_ns=max(now, timing.predicted_display_time_ns),
                                 head=Pose(position=(0.0, 1.6, 0.0)), head_tracked=True)

    def still_world(request):
        last = request.tracking[-1]
        return WorldFrame(session_id=request.session_id, request_id=request.request_id, frame_id=last.frame_id,
                          head=last.head, generated_for_time_ns=last.predicted_display_time_ns, vertical_fov_deg=90.0,
                          image=np.full((16, 16, 3), 90, np.uint8))

    config = load_config("quick", session={"avatar": False}, display={"width": 32, "height": 24})
    result = run_session(config, tmp_path / "headset", max_frames=12, source=Headset(clock=MONOTONIC),
                         world=("still", still_world))
    assert result.metrics["frames"] == 12
    assert runtime.calls.count(("wait_frame",)) == runtime.calls.count(("begin_frame",)) == 12
    assert [len(layers) for layers in runtime.layers] == [1] * 12, "one projection layer every frame"
    assert all(len(layers[0]["views"]) == 2 for layers in runtime.layers)
    assert sorted(runtime.destroyed) == sorted(runtime.swapchains), "swapchains go before the session"

"""The headset path's OpenXR call sequence, with pyopenxr's real structs, against a fake
runtime behind the frame cycle's :class:`OpenXRCalls` interface (no runtime or headset can
exist on a CI machine; this fake is the one stand-in). The fake enforces the spec's
call-order rules - one begin and one end per wait, the predicted display time at end,
acquire -> wait -> release before a swapchain is used in a layer, xrEndSession only while
STOPPING with no frame open - and decodes every submitted layer from its C structs.

The GL upload itself runs with real Mesa GL in a child process (test_openxr_gl.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xr

from genxr.xr_runtime.openxr.frames import OpenXRFrameCycle, views_from_xr
from genxr.xr_runtime.openxr.sink import (
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
from tests.helpers.fake_openxr import (
    LEFT_FOV,
    PERIOD_NS,
    RIGHT_FOV,
    VALID,
    FakeRuntime,
    Uploads,
    address,
    headset,
    stereo_frame,
)


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
    from genxr.xr_runtime.openxr.source import OpenXRSource

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
    from genxr.xr_runtime.openxr.sink import headset_sink
    from genxr.xr_runtime.openxr.source import OpenXRSource
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
    from genxr.xr_runtime.openxr.source import OpenXRSource
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

"""The latency HUD: its patch sits in the configured corner, shows the loop's numbers (and
changes when they do), re-renders only a few times a second, leaves frames untouched when
off, and is a span of its own in the trace."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.platform.bus import InProcessBus
from genxr.platform.clock import ManualClock
from genxr.platform.config import ConfigError, load_config
from genxr.platform.messages import DisplayFrame
from genxr.platform.tracing import Tracer
from genxr.xr_runtime.hud import Hud, HudConfig, HudStats, hud_lines, render_patch
from genxr.xr_runtime.metrics import LoopMetrics
from tests.helpers.frame_loop import WORLD, TurningHead, answer, make_loop

FRAME_NS = 11_111_111  # 90 Hz


def grey_frame(frame_id: int = 0, display_time_ns: int = FRAME_NS, size: int = 256, **fields) -> DisplayFrame:
    return DisplayFrame(frame_id=frame_id, display_time_ns=display_time_ns,
                        image=np.full((size, size, 3), 128, np.uint8), **fields)


def metrics_with(frame_time_ms: float, frames: int = 90, world_updates: int = 30) -> LoopMetrics:
    metrics = LoopMetrics()
    metrics.frames = frames
    metrics.frame_time_ns = [round(frame_time_ms * 1e6)] * frames
    metrics.rotational_m2p_ns = [FRAME_NS] * frames
    metrics.world_updates = world_updates
    return metrics


def changed_box(before: np.ndarray, after: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), exclusive, of the pixels that differ."""
    rows, cols = np.nonzero(np.any(before != after, axis=2))
    return rows.min(), cols.min(), rows.max() + 1, cols.max() + 1


@pytest.mark.parametrize("corner", ["top_left", "top_right", "bottom_left", "bottom_right"])
def test_the_patch_is_drawn_in_the_configured_corner_and_nowhere_else(corner):
    frame, metrics, hud = grey_frame(), metrics_with(5.0), Hud(HudConfig(corner=corner))
    shown = hud.apply(frame, metrics, tracking_lost=False)
    top, left, bottom, right = changed_box(frame.image, shown.image)
    assert (top == 0) == corner.startswith("top") and (bottom == 256) == corner.startswith("bottom")
    assert (left == 0) == corner.endswith("left") and (right == 256) == corner.endswith("right")
    shown_stats = hud.stats(metrics, frame.display_time_ns, frame.content_age_ns, frame.stale, tracking_lost=False)
    patch = render_patch(hud_lines(shown_stats, hud.config.items))
    assert (bottom - top, right - left) == patch.shape[:2], "exactly the patch of what it shows, not the whole frame"
    assert np.array_equal(frame.image, np.full((256, 256, 3), 128, np.uint8)), "the input frame is not modified"


def hud_after_one_second(frame_time_ms: float, config: HudConfig = HudConfig()) -> np.ndarray:
    """The HUD's image a second into a run whose frames took ``frame_time_ms``."""
    hud = Hud(config)
    hud.apply(grey_frame(0, FRAME_NS), LoopMetrics(), tracking_lost=False)
    return hud.apply(grey_frame(90, 91 * FRAME_NS), metrics_with(frame_time_ms), tracking_lost=False).image


def test_numbers_rendered_change_when_the_stats_change():
    slow, slow_again, fast = hud_after_one_second(5.0), hud_after_one_second(5.0), hud_after_one_second(9.0)
    assert np.array_equal(slow, slow_again), "same numbers, same pixels"
    assert not np.array_equal(slow, fast)
    top, left, bottom, right = changed_box(slow, fast)
    # Where the frame-time line alone is drawn: a HUD showing only that line, on the same frame.
    line_top, line_left, line_bottom, line_right = changed_box(
        grey_frame().image, hud_after_one_second(9.0, HudConfig(items=("frame_time",))))
    assert line_top <= top and bottom <= line_bottom and right <= line_right, "only the frame-time line differs"
    assert left > line_left, "its label is the same: only the numbers after it differ"


def test_lines_say_the_numbers_and_markers():
    stats = HudStats(frame_time_ms_p50=6.4, frame_time_ms_p99=17.4, missed_refreshes=2, refreshes=90,
                     motion_to_photon_ms_p99=11.1, content_age_ms=178.0, world_hz=3.6, avatar_hz=6.9,
                     stale=True, tracking_lost=True)
    text = [line for line, _ in hud_lines(stats, HudConfig().items)]
    assert text == ["frame 6.4/17.4 ms p50/p99", "missed 2/90 (2%)", "m2p 11.1 ms p99", "content age 178.0 ms",
                    "world 3.6 Hz", "avatar 6.9 Hz", "STALE  TRACKING LOST"]
    assert [line for line, _ in hud_lines(stats, ("world_hz",))] == ["world 3.6 Hz"]


def test_the_window_is_the_last_second_of_display_time():
    hud, metrics = Hud(), LoopMetrics()
    for frame_id in range(300):  # 90 frames/s; the first 200 take 20 ms, then 4 ms; one world update a frame
        metrics.frames += 1
        metrics.frame_time_ns.append(20_000_000 if frame_id < 200 else 4_000_000)
        metrics.rotational_m2p_ns.append(FRAME_NS)
        metrics.world_updates += 1
        hud.observe(metrics, (frame_id + 1) * FRAME_NS)
    stats = hud.stats(metrics, 300 * FRAME_NS, None, stale=False, tracking_lost=False)
    assert stats.frame_time_ms_p50 == pytest.approx(4.0) and stats.frame_time_ms_p99 == pytest.approx(4.0)
    assert stats.world_hz == pytest.approx(90.0, rel=0.02) and stats.refreshes == 90


def test_the_patch_is_rendered_a_few_times_a_second_and_markers_show_at_once():
    hud, metrics = Hud(HudConfig(refresh_hz=4.0)), LoopMetrics()
    shown = None
    for frame_id in range(90):  # one second at 90 Hz, every frame slower than the one before
        shown = hud.apply(grey_frame(frame_id, (frame_id + 1) * FRAME_NS), metrics, tracking_lost=False)
        metrics.frames += 1
        metrics.frame_time_ns.append(3_000_000 + frame_id * 100_000)
    assert hud.renders == 4
    lost = hud.apply(grey_frame(90, 91 * FRAME_NS), metrics, tracking_lost=True)
    assert hud.renders == 5, "TRACKING LOST is drawn on the frame it starts"
    assert not np.array_equal(lost.image, shown.image)


def test_a_display_smaller_than_the_patch_keeps_the_corner():
    frame = grey_frame(size=32)
    shown = Hud(HudConfig(corner="bottom_right")).apply(frame, metrics_with(5.0), tracking_lost=False)
    assert shown.image.shape == (32, 32, 3) and not np.array_equal(shown.image, frame.image)


def test_bad_hud_settings_are_refused_with_the_field_and_value():
    with pytest.raises(ValueError, match="'middle'"):
        HudConfig(corner="middle")
    with pytest.raises(ValueError, match="fps"):
        HudConfig(items=("frame_time", "fps"))
    with pytest.raises(ConfigError, match=r"display\.hud_corner = 'middle'"):
        load_config(display={"hud": True, "hud_corner": "middle"})
    assert load_config().display.hud is False, "off unless asked for"


class RecordingCompositor:
    """The loop's compositor, remembering every image it produced."""

    def __init__(self, inner):
        self.inner, self.images = inner, []

    def composite(self, *args, **kwargs):
        shown = self.inner.composite(*args, **kwargs)
        self.images.append(shown.image)
        return shown


class RecordingSink:
    name = "recorder"

    def __init__(self):
        self.images = []

    def submit(self, frame):
        self.images.append(frame.image)

    def close(self):
        pass


@pytest.mark.parametrize("with_hud", [False, True])
def test_the_loop_draws_the_hud_between_compositor_and_sinks_as_its_own_span(with_hud):
    clock = ManualClock()
    tracer = Tracer(clock=clock)
    sink = RecordingSink()
    with InProcessBus(workers=1) as bus:
        bus.serve(WORLD, answer)
        loop, _ = make_loop(TurningHead(clock), bus, clock, tracer=tracer, hud=Hud() if with_hud else None)
        loop.compositor = RecordingCompositor(loop.compositor)
        loop.sinks.append(sink)
        loop.run(max_frames=12)
    composited = loop.compositor.images
    assert len(sink.images) == len(composited) == 12
    spans = [span for span in tracer.spans() if span.name == "hud"]
    if not with_hud:
        assert all(np.array_equal(a, b) for a, b in zip(composited, sink.images, strict=True)), "bit-identical"
        assert spans == []
    else:
        assert all(not np.array_equal(a, b) for a, b in zip(composited, sink.images, strict=True))
        assert len(spans) == 12 and {span.track for span in spans} == {"compositor"}
        assert [span.frame_id for span in spans] == list(range(12))


def test_every_view_of_a_stereo_frame_gets_the_hud():
    left, right = np.full((64, 64, 3), 50, np.uint8), np.full((64, 64, 3), 200, np.uint8)
    frame = DisplayFrame(frame_id=0, display_time_ns=FRAME_NS, image=left, view_images=[left, right])
    shown = Hud(HudConfig(corner="top_right")).apply(frame, metrics_with(5.0), tracking_lost=False)
    assert shown.image is shown.view_images[0]
    for before, after in zip((left, right), shown.view_images, strict=True):
        top, _, _, right_edge = changed_box(before, after)
        assert top == 0 and right_edge == 64


def test_a_session_with_display_hud_shows_it_in_the_video(tmp_path):
    import av

    from genxr.xr_runtime.session import run_session

    config = load_config("quick", display={"hud": True}, session={"world": "ground_truth", "avatar": False})
    result = run_session(config, tmp_path / "hud", seconds=60.0, max_frames=12)
    assert result.metrics["stages"]["hud"]["count"] == result.metrics["frames"] == 12
    with av.open(str(tmp_path / "hud" / "session.mp4")) as video:
        first = next(video.decode(video=0)).to_ndarray(format="rgb24")  # no world yet: a black frame
    assert first[:60, :100].max() > 150, "the HUD's white text, top left"
    assert first[128:, 128:].max() < 20, "the rest of the frame is untouched"

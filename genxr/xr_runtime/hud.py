"""Latency HUD: the frame loop's live numbers drawn into a corner of every display frame.

What a researcher watching the preview (or the mp4) needs to see while a session runs, like
SteamVR's or Oculus' performance HUDs: display frame time p50/p99 and missed refreshes over
the last second, rotational motion-to-photon (tracking sample -> display time), the age of
the world content on screen (the frame's ``DisplayFrame.content_age_ns``: in a frame loop,
display time minus the sample time of the tracking the content was generated from, the
``content_age_ms`` of :mod:`genxr.xr_runtime.metrics`), the world-model and avatar update
rates, and STALE / TRACKING LOST markers.

Cost model (the compositor has ~3 ms per frame at 256x256 on 2 cores): the text is laid out
with Pillow into a small RGBA patch only when what it says changes - the numbers are
refreshed ``refresh_hz`` times a second (4 by default), the markers on the frame they change
- and each frame only alpha-blends that patch into its corner with numpy (a few tens of
microseconds, measured in docs/xr_runtime.md). Numbers come from the loop's
:class:`~genxr.xr_runtime.frame_loop.LoopMetrics` as of the previous frame (the current
frame's time is known only after the sinks ran); the window is measured on display time,
so a test clock drives it exactly.

The HUD is drawn before the sinks: the mp4, PNG frames, the preview window and a headset's
swapchain all show it when ``display.hud`` is on; with a headset's views it is drawn into
every view, in the same corner of each.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, get_args

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from genxr.platform.config import HudCorner, HudItem
from genxr.platform.messages import DisplayFrame
from genxr.platform.stats import percentile
from genxr.platform.units import NS_PER_MS, NS_PER_S

if TYPE_CHECKING:
    from genxr.xr_runtime.metrics import LoopMetrics

HUD_ITEMS: tuple[str, ...] = get_args(HudItem)
HUD_CORNERS: tuple[str, ...] = get_args(HudCorner)

TEXT_COLOUR = (255, 255, 255, 255)
WARNING_COLOUR = (255, 80, 60, 255)
BACKGROUND = (0, 0, 0, 160)
"""Semi-transparent black behind the text: readable over any world content."""


@dataclass(frozen=True)
class HudConfig:
    """Where the HUD sits and what it shows (``display.hud_corner`` / ``display.hud_items``)."""

    corner: HudCorner = "top_left"
    items: tuple[HudItem, ...] = HUD_ITEMS
    """Which lines to show, in this order (``markers``: STALE / TRACKING LOST when they apply)."""
    refresh_hz: float = 4.0
    """How often the numbers are recomputed and the patch re-rendered (markers change at once)."""
    window_s: float = 1.0
    """The numbers describe the last ``window_s`` seconds of display time."""
    scale: int | None = None
    """Integer enlargement of the 11 px text lines; None: display height // 256, at least 1."""

    def __post_init__(self) -> None:
        if self.corner not in HUD_CORNERS:
            raise ValueError(f"hud corner must be one of {', '.join(HUD_CORNERS)}, got {self.corner!r}")
        unknown = [item for item in self.items if item not in HUD_ITEMS]
        if unknown or not self.items:
            raise ValueError(f"hud items must be a non-empty selection of {', '.join(HUD_ITEMS)}, "
                             f"got {list(self.items)!r}")
        if self.refresh_hz <= 0 or self.window_s <= 0:
            raise ValueError(f"hud refresh_hz and window_s must be > 0, got {self.refresh_hz} and {self.window_s}")
        if self.scale is not None and self.scale < 1:
            raise ValueError(f"hud scale must be >= 1, got {self.scale}")


@dataclass(frozen=True)
class HudStats:
    """What the HUD shows; times in milliseconds, rates in Hz, over the last ``window_s``."""

    frame_time_ms_p50: float | None
    frame_time_ms_p99: float | None
    missed_refreshes: int
    refreshes: int
    motion_to_photon_ms_p99: float | None
    content_age_ms: float | None
    """Of the frame the numbers were refreshed on (``DisplayFrame.content_age_ns``); None without content."""
    world_hz: float
    avatar_hz: float
    stale: bool
    tracking_lost: bool


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def hud_lines(stats: HudStats, items: tuple[str, ...]) -> list[tuple[str, tuple[int, int, int, int]]]:
    """(text, RGBA colour) of each line the HUD shows for ``stats``, in ``items`` order."""
    lines = []
    for item in items:
        if item == "frame_time":
            lines.append(f"frame {_ms(stats.frame_time_ms_p50)}/{_ms(stats.frame_time_ms_p99)} ms p50/p99")
        elif item == "deadline_misses":
            share = stats.missed_refreshes / stats.refreshes if stats.refreshes else 0.0
            lines.append(f"missed {stats.missed_refreshes}/{stats.refreshes} ({share:.0%})")
        elif item == "motion_to_photon":
            lines.append(f"m2p {_ms(stats.motion_to_photon_ms_p99)} ms p99")
        elif item == "content_age":
            lines.append(f"content age {_ms(stats.content_age_ms)} ms")
        elif item == "world_hz":
            lines.append(f"world {stats.world_hz:.1f} Hz")
        elif item == "avatar_hz":
            lines.append(f"avatar {stats.avatar_hz:.1f} Hz")
    coloured = [(line, TEXT_COLOUR) for line in lines]
    if "markers" in items:
        markers = [name for name, on in (("STALE", stats.stale), ("TRACKING LOST", stats.tracking_lost)) if on]
        if markers:
            coloured.append(("  ".join(markers), WARNING_COLOUR))
    return coloured


@lru_cache(maxsize=1)
def hud_font() -> ImageFont.ImageFont:
    """Pillow's bundled bitmap font (6 px wide, 11 px lines). Its FreeType font was rejected as
    far slower per line (docs/xr_runtime.md, "Latency HUD and preview window")."""
    return ImageFont.load_default_imagefont()


def render_patch(lines: list[tuple[str, tuple[int, int, int, int]]], scale: int = 1) -> np.ndarray:
    """(h, w, 4) uint8 RGBA patch: ``lines`` over the semi-transparent background, enlarged
    ``scale`` times (nearest neighbour: the bitmap font stays crisp)."""
    font = hud_font()
    pad, line_h = 3, 11
    width = max(round(font.getlength(text)) for text, _ in lines) + 2 * pad
    patch = Image.new("RGBA", (width, len(lines) * line_h + 2 * pad), BACKGROUND)
    draw = ImageDraw.Draw(patch)
    for row, (text, colour) in enumerate(lines):
        draw.text((pad, pad + row * line_h), text, font=font, fill=colour)
    if scale > 1:
        patch = patch.resize((patch.width * scale, patch.height * scale), Image.Resampling.NEAREST)
    return np.asarray(patch)


class Hud:
    """Draws :class:`HudStats` of the running loop into each display frame (module docstring)."""

    def __init__(self, config: HudConfig = HudConfig()) -> None:
        self.config = config
        self.renders = 0
        """How many times the patch was laid out (the expensive part), for tests and benchmarks."""
        self._history: deque[tuple[int, int, int, int, int]] = deque()
        """(display time ns, frames, missed refreshes, world updates, avatar updates) per frame."""
        self._refresh_ns = round(NS_PER_S / config.refresh_hz)
        self._next_refresh_ns: int | None = None
        self._numbers: HudStats | None = None
        self._lines: list[tuple[str, tuple[int, int, int, int]]] | None = None
        self._premultiplied: np.ndarray | None = None  # (h, w, 3) uint16: rgb * alpha
        self._keep: np.ndarray | None = None  # (h, w, 3) uint16: 255 - alpha

    def observe(self, metrics: LoopMetrics, display_time_ns: int) -> None:
        """Remembers this frame's counters, dropping those older than the window (cheap, every frame)."""
        history = self._history
        history.append((display_time_ns, metrics.frames, metrics.missed_frames, metrics.world_updates,
                        metrics.avatar_updates))
        window_ns = round(self.config.window_s * NS_PER_S)
        while len(history) > 1 and history[0][0] < display_time_ns - window_ns:
            history.popleft()

    def stats(self, metrics: LoopMetrics, display_time_ns: int, content_age_ns: int | None,
              stale: bool, tracking_lost: bool) -> HudStats:
        """The numbers over the window ending at ``display_time_ns`` (``metrics`` as of the last
        frame; call after this frame was observed)."""
        start_ns, frames0, missed0, world0, avatar0 = self._history[0]
        span_s = max(display_time_ns - start_ns, 1) / NS_PER_S
        frames = metrics.frames - frames0

        def recent_ms(values: list[int], q: float) -> float | None:
            return percentile(values[-frames:] if frames else [], q, per=NS_PER_MS)

        return HudStats(
            frame_time_ms_p50=recent_ms(metrics.frame_time_ns, 50),
            frame_time_ms_p99=recent_ms(metrics.frame_time_ns, 99),
            missed_refreshes=metrics.missed_frames - missed0, refreshes=frames + metrics.missed_frames - missed0,
            motion_to_photon_ms_p99=recent_ms(metrics.rotational_m2p_ns, 99),
            content_age_ms=None if content_age_ns is None else content_age_ns / NS_PER_MS,
            world_hz=(metrics.world_updates - world0) / span_s if frames else 0.0,
            avatar_hz=(metrics.avatar_updates - avatar0) / span_s if frames else 0.0,
            stale=stale, tracking_lost=tracking_lost)

    def apply(self, shown: DisplayFrame, metrics: LoopMetrics, tracking_lost: bool) -> DisplayFrame:
        """``shown`` with the HUD blended into its corner; a new frame (the input is not modified)."""
        now = shown.display_time_ns
        self.observe(metrics, now)
        numbers = self._numbers
        if numbers is None or self._next_refresh_ns is None or now >= self._next_refresh_ns:
            numbers = self.stats(metrics, now, shown.content_age_ns, shown.stale, tracking_lost)
            self._next_refresh_ns = now + self._refresh_ns
        elif (numbers.stale, numbers.tracking_lost) != (shown.stale, tracking_lost):  # markers show at once
            numbers = replace(numbers, stale=shown.stale, tracking_lost=tracking_lost)
        if numbers is not self._numbers:
            self._numbers = numbers
            lines = hud_lines(numbers, self.config.items)
            if lines != self._lines:
                self._render(lines, shown.image.shape[0])
        if shown.view_images is None:
            return shown.model_copy(update={"image": self._blend(shown.image)})
        views = [self._blend(view) for view in shown.view_images]  # every eye, same corner
        return shown.model_copy(update={"image": views[0], "view_images": views})

    def _render(self, lines: list[tuple[str, tuple[int, int, int, int]]], display_height: int) -> None:
        scale = self.config.scale or max(1, display_height // 256)
        patch = render_patch(lines, scale).astype(np.uint16)
        alpha = patch[:, :, 3:]
        self._premultiplied = patch[:, :, :3] * alpha
        self._keep = np.repeat(255 - alpha, 3, axis=2)  # (h, w, 3): cheaper than a broadcast multiply
        self._lines = lines
        self.renders += 1

    def _blend(self, image: np.ndarray) -> np.ndarray:
        """A copy of ``image`` (H, W, 3) uint8 with the patch alpha-blended into the configured corner."""
        out = image.copy()
        height, width = out.shape[:2]
        h, w = min(self._premultiplied.shape[0], height), min(self._premultiplied.shape[1], width)
        top = 0 if self.config.corner.startswith("top") else height - h
        left = 0 if self.config.corner.endswith("left") else width - w
        region = out[top:top + h, left:left + w]
        # Corner-anchored crop of the patch when the display is smaller than it.
        patch_top = 0 if self.config.corner.startswith("top") else self._premultiplied.shape[0] - h
        patch_left = 0 if self.config.corner.endswith("left") else self._premultiplied.shape[1] - w
        crop = np.s_[patch_top:patch_top + h, patch_left:patch_left + w]
        blended = region * self._keep[crop]  # (h, w, 3) uint16; plus the patch, at most 255 * 255
        blended += self._premultiplied[crop]
        blended += 128  # x / 255 rounded, exact for x <= 255 * 255, as two shifts (cheaper than numpy's //)
        blended += blended >> 8
        blended >>= 8
        region[...] = blended
        return out

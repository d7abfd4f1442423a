"""The headset sink: composited views uploaded into OpenXR GL swapchains, one projection layer a frame.

In a graphics session (:class:`~genxr.xr_runtime.openxr.source.OpenXRSource` with a
headset) every display frame was opened by the source's
:class:`~genxr.xr_runtime.openxr.frames.OpenXRFrameCycle`. :meth:`OpenXRSwapchainSink.submit`
closes it:

* ``should_render`` False, or no valid view poses: ``xrEndFrame`` with no layers;
* otherwise, for each view ``i``: ``xrAcquireSwapchainImage`` / ``xrWaitSwapchainImage`` on
  view ``i``'s swapchain, upload ``DisplayFrame.view_images[i]`` (``image`` for a one-view
  frame) into that swapchain image's GL texture (:func:`upload_rgb`), and
  ``xrReleaseSwapchainImage``; then ``xrEndFrame`` with one ``XrCompositionLayerProjection``
  in the reference space whose views carry the poses and fields of view the images were
  rendered for.

Swapchains: one per view, created here at the compositor's per-view size (``width`` x
``height``, e.g. 256x256 - a CPU compositor cannot fill the 2k x 2k a headset recommends;
the runtime scales the image over the view's field of view), one sample, usable as a
transfer destination. (pyopenxr's ``ContextObject``, which genxr does not use, creates its
own at the recommended size and sample count - a multisampled texture cannot be uploaded
into - and its ``view_loop`` binds a framebuffer for rendering: neither fits uploading
finished images.) A display size above the runtime's maximum, or a runtime without a
usable format, stops the session before it starts (:func:`headset_sink`).

Colour: the images are sRGB-encoded 8-bit RGB. An sRGB swapchain format
(``GL_SRGB8_ALPHA8``, ``GL_SRGB8``) stores them as they are (the runtime decodes); for a
linear format the values are decoded to linear light first (a 256-entry table), as floats
for ``GL_RGB10_A2`` / ``GL_RGBA16F`` and rounded to 8 bits for ``GL_RGBA8`` (banding: last
resort). :func:`choose_swapchain_format` prefers sRGB for that reason; pyopenxr's
``select_color_swapchain_format`` prefers linear formats (right for a renderer writing
linear light, wrong for uploading sRGB bytes) and is not used. GL's texture origin is the
bottom-left corner, so rows are uploaded bottom first.

OpenGL is imported only when an image is uploaded: PyOpenGL fixes its platform (EGL/GLX)
at the first import, which the graphics session's EGL context must decide.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np

from genxr.platform.messages import DisplayFrame
from genxr.xr_runtime.openxr.convert import source_lost_on
from genxr.xr_runtime.openxr.frames import OpenXRCalls, OpenXRFrameCycle

GL_RGBA8 = 0x8058
GL_RGB10_A2 = 0x8059
GL_RGBA16F = 0x881A
GL_SRGB8 = 0x8C41
GL_SRGB8_ALPHA8 = 0x8C43
"""GL internal formats (values from the OpenGL registry) a runtime may offer for colour swapchains."""

SWAPCHAIN_FORMAT_PREFERENCE = (GL_SRGB8_ALPHA8, GL_SRGB8, GL_RGB10_A2, GL_RGBA16F, GL_RGBA8)
SRGB_FORMATS = frozenset({GL_SRGB8_ALPHA8, GL_SRGB8})
FORMAT_NAMES = {GL_RGBA8: "GL_RGBA8", GL_RGB10_A2: "GL_RGB10_A2", GL_RGBA16F: "GL_RGBA16F", GL_SRGB8: "GL_SRGB8",
                GL_SRGB8_ALPHA8: "GL_SRGB8_ALPHA8"}


class SwapchainError(ValueError):
    """A display frame that does not fit the session's swapchains, or a runtime without a usable format."""


def _srgb_to_linear_table() -> np.ndarray:
    """(256,) float32: the sRGB transfer function's inverse (IEC 61966-2-1) for every 8-bit code."""
    codes = np.arange(256, dtype=np.float64) / 255.0
    linear = np.where(codes <= 0.04045, codes / 12.92, ((codes + 0.055) / 1.055) ** 2.4)
    return linear.astype(np.float32)


SRGB_TO_LINEAR = _srgb_to_linear_table()


def choose_swapchain_format(offered: list[int] | tuple[int, ...]) -> int:
    """The first of :data:`SWAPCHAIN_FORMAT_PREFERENCE` the runtime offers (see module docstring)."""
    for candidate in SWAPCHAIN_FORMAT_PREFERENCE:
        if candidate in offered:
            return candidate
    raise SwapchainError(f"the OpenXR runtime offers no usable colour swapchain format: got "
                         f"{[hex(int(f)) for f in offered]}, genxr uploads into one of "
                         f"{[FORMAT_NAMES[f] for f in SWAPCHAIN_FORMAT_PREFERENCE]}")


def texture_pixels(image: np.ndarray, swapchain_format: int) -> np.ndarray:
    """The (H, W, 3) pixel array to upload for ``image`` (H, W, 3) uint8 sRGB, rows flipped to
    GL's bottom-left origin: uint8 as is for sRGB formats, uint8 linear for ``GL_RGBA8``,
    float32 linear for the deeper formats. Contiguous, ready for ``glTexSubImage2D``."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise SwapchainError(f"a view image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    bottom_up = image[::-1]
    if swapchain_format in SRGB_FORMATS:
        return np.ascontiguousarray(bottom_up)
    if swapchain_format == GL_RGBA8:
        return np.round(SRGB_TO_LINEAR * 255.0).astype(np.uint8)[bottom_up]
    if swapchain_format in (GL_RGB10_A2, GL_RGBA16F):
        return SRGB_TO_LINEAR[bottom_up]
    raise SwapchainError(f"swapchain format {hex(swapchain_format)} is not one genxr uploads into")


def upload_rgb(texture: int, image: np.ndarray, swapchain_format: int) -> None:
    """Uploads ``image`` (H, W, 3) uint8 sRGB into level 0 of the GL 2D ``texture`` (at least
    H x W, internal format ``swapchain_format``) with ``glTexSubImage2D``, origin bottom-left.
    Needs a current GL context."""
    from OpenGL import GL

    pixels = texture_pixels(image, swapchain_format)
    height, width = image.shape[:2]
    pixel_type = GL.GL_UNSIGNED_BYTE if pixels.dtype == np.uint8 else GL.GL_FLOAT
    GL.glBindTexture(GL.GL_TEXTURE_2D, texture)
    GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)  # rows of 3 * W bytes are not 4-byte aligned in general
    GL.glTexSubImage2D(GL.GL_TEXTURE_2D, 0, 0, 0, width, height, GL.GL_RGB, pixel_type, pixels)
    GL.glBindTexture(GL.GL_TEXTURE_2D, 0)


@dataclass
class ViewSwapchain:
    """One view's swapchain: its handle, size (pixels) and the GL texture of each image."""

    handle: object
    width: int
    height: int
    textures: list[int]


class OpenXRSwapchainSink:
    """Submits display frames to a headset (see module docstring). ``calls`` is pyopenxr's
    ``xr`` module in a session; ``upload`` the GL upload (:func:`upload_rgb`)."""

    name = "openxr"

    def __init__(self, cycle: OpenXRFrameCycle, *, system_id, width: int, height: int,
                 calls: OpenXRCalls | None = None,
                 upload: Callable[[int, np.ndarray, int], None] = upload_rgb) -> None:
        import xr

        self._xr = xr
        self.cycle = cycle
        self.calls = calls if calls is not None else cycle.calls
        self.upload = upload
        self.frames_with_layers = 0
        self.frames_without_layers = 0
        config_views = self.calls.enumerate_view_configuration_views(cycle.instance, system_id,
                                                                     cycle.view_configuration)
        for index, view in enumerate(config_views):
            if width > view.max_image_rect_width or height > view.max_image_rect_height:
                raise SwapchainError(f"view {index}: the display size {width}x{height} (display.width x "
                                     f"display.height) exceeds the runtime's maximum "
                                     f"{view.max_image_rect_width}x{view.max_image_rect_height}; set "
                                     f"display.width and display.height at most that")
        self.format = choose_swapchain_format(list(self.calls.enumerate_swapchain_formats(cycle.session)))
        self.swapchains: list[ViewSwapchain] = []
        try:
            for _ in config_views:
                self.swapchains.append(self._create_swapchain(width, height))
        except BaseException:
            self.close()
            raise

    def _create_swapchain(self, width: int, height: int) -> ViewSwapchain:
        xr = self._xr
        usage = (xr.SwapchainUsageFlags.COLOR_ATTACHMENT_BIT | xr.SwapchainUsageFlags.TRANSFER_DST_BIT
                 | xr.SwapchainUsageFlags.SAMPLED_BIT)
        handle = self.calls.create_swapchain(self.cycle.session, xr.SwapchainCreateInfo(
            usage_flags=usage, format=self.format, sample_count=1, width=width, height=height,
            face_count=1, array_size=1, mip_count=1))
        images = self.calls.enumerate_swapchain_images(handle, xr.SwapchainImageOpenGLKHR)
        return ViewSwapchain(handle=handle, width=width, height=height, textures=[int(image.image) for image in images])

    def __enter__(self) -> OpenXRSwapchainSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, frame: DisplayFrame) -> None:
        """Ends the open OpenXR frame with ``frame``'s views (see module docstring); a runtime gone
        mid-session is :class:`~genxr.xr_runtime.sources.TrackingSourceLost`."""
        import xr

        with source_lost_on(xr):
            self._submit(frame)

    def _submit(self, frame: DisplayFrame) -> None:
        open_frame = self.cycle.open_frame
        if open_frame is None:
            return  # the session is not running: the runtime shows nothing of this application
        if open_frame.frame_id != frame.frame_id:
            self.cycle.end()
            raise RuntimeError(f"display frame {frame.frame_id} submitted while OpenXR frame "
                               f"{open_frame.frame_id} is open")
        if not open_frame.state.should_render or not open_frame.views:
            self.cycle.end()
            self.frames_without_layers += 1
            return
        images = frame.view_images if frame.view_images is not None else [frame.image]
        try:
            self._check(images)
        except SwapchainError:
            self.cycle.end()
            raise
        xr = self._xr
        projection_views = []  # built through the constructors, which set each struct's type
        for image, swapchain, located in zip(images, self.swapchains, open_frame.located):
            self._upload_view(swapchain, image)
            projection_views.append(xr.CompositionLayerProjectionView(
                pose=located.pose, fov=located.fov, sub_image=xr.SwapchainSubImage(
                    swapchain=swapchain.handle, image_rect=xr.Rect2Di(
                        offset=xr.Offset2Di(0, 0), extent=xr.Extent2Di(swapchain.width, swapchain.height)))))
        layer = xr.CompositionLayerProjection(space=self.cycle.reference_space, views=projection_views)
        self.cycle.end([layer])
        self.frames_with_layers += 1

    def _check(self, images: list[np.ndarray]) -> None:
        if len(images) != len(self.swapchains):
            raise SwapchainError(f"the display frame has {len(images)} view image(s) but the OpenXR session has "
                                 f"{len(self.swapchains)} views (swapchains)")
        for index, (image, swapchain) in enumerate(zip(images, self.swapchains)):
            height, width = image.shape[:2]
            if (width, height) != (swapchain.width, swapchain.height):
                raise SwapchainError(f"view {index}: the display image is {width}x{height} (width x height) but its "
                                     f"swapchain is {swapchain.width}x{swapchain.height}; the compositor must render "
                                     f"at the swapchain size (display.width, display.height)")

    def _upload_view(self, swapchain: ViewSwapchain, image: np.ndarray) -> None:
        xr, calls = self._xr, self.calls
        index = calls.acquire_swapchain_image(swapchain.handle, xr.SwapchainImageAcquireInfo())
        calls.wait_swapchain_image(swapchain.handle, xr.SwapchainImageWaitInfo(timeout=xr.INFINITE_DURATION))
        try:
            self.upload(swapchain.textures[index], image, self.format)
        finally:
            calls.release_swapchain_image(swapchain.handle, xr.SwapchainImageReleaseInfo())

    def close(self) -> None:
        """Ends a frame left open and destroys the swapchains (before the session goes)."""
        self.cycle.end()
        while self.swapchains:
            self.calls.destroy_swapchain(self.swapchains.pop().handle)


def headset_sink(source: object, width: int, height: int) -> AbstractContextManager[OpenXRSwapchainSink | None]:
    """The swapchain sink for ``source`` when it is an entered OpenXR graphics session (a headset),
    rendering ``width`` x ``height`` per view; otherwise a context that yields None.

    A headset that cannot take the display (a size above the runtime's maximum, no usable
    swapchain format, a runtime refusing the swapchains) is an
    :class:`~genxr.xr_runtime.openxr.source.OpenXRUnavailableError` with a one-line message
    saying what to change: the session stops before it starts (``genxr demo`` exits 2)."""
    import xr

    from genxr.xr_runtime.openxr.source import OpenXRSource, OpenXRUnavailableError

    if not (isinstance(source, OpenXRSource) and source.graphics):
        return nullcontext()
    try:
        return OpenXRSwapchainSink(source.frame_cycle, system_id=source.system_id, width=width, height=height)
    except SwapchainError as err:
        raise OpenXRUnavailableError(f"the headset cannot show this session's display: {err}") from err
    except xr.XrException as err:
        raise OpenXRUnavailableError(f"the headset's swapchains ({width}x{height} per eye) could not be created: "
                                     f"{type(err).__name__}: {' '.join(str(err).split())}") from err

"""Preview window: the display frames in a window on the lab PC's screen (GLFW + OpenGL).

The researcher sees what the participant sees (with the latency HUD when ``display.hud``
is on). Drawing a frame uploads it into one RGB texture (``glTexSubImage2D``), blits it
scaled into the window with ``glBlitFramebuffer`` (letterboxed, aspect kept, rows flipped:
images go down, GL goes up) and swaps without waiting for the monitor (swap interval 0).

Threads: GLFW wants its windows and events on the thread that made them, the frame loop's
(``submit`` polls events there: microseconds). The drawing runs on a render thread that
holds the GL context and always draws the newest submitted frame, skipping any it had no
time for (latest value, as the bus does), so ``submit`` never waits for the GPU. On Mesa's
llvmpipe (GL on the CPU) drawing a frame costs milliseconds, which on the frame loop's thread
would take the compositor's whole budget again (docs/xr_runtime.md, "Latency HUD and preview
window"). The render thread runs niced (default +5); llvmpipe's own
rasteriser threads, started with the context on the loop's thread, are not, so on a
small machine with GL on the CPU the drawing still takes CPU from the loop and the models:
``display.preview_max_hz`` caps the redraws.

The window is resizable. Closing it **ends the session** as Ctrl-C does (every file
complete); the session's ``stopped`` event says ``preview window closed``.

No display (neither ``DISPLAY`` nor ``WAYLAND_DISPLAY`` set) or a display GLFW cannot open
raises :class:`PreviewUnavailableError` saying what is missing: run without ``--preview``,
or under a virtual X server (``xvfb-run -a genxr demo --preview``).

glfw and PyOpenGL are imported when a window opens, never when genxr is imported: PyOpenGL
fixes its platform (GLX or EGL) at its first import in a process. The window's context
is created with the API PyOpenGL chose (GLX, or EGL when ``PYOPENGL_PLATFORM=egl`` or
Wayland), so both agree about the current context.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import Self

import numpy as np

from genxr.platform.bus import lower_thread_priority
from genxr.platform.messages import DisplayFrame
from genxr.platform.units import NS_PER_S
from genxr.xr_runtime.sinks import SinkError

PREVIEW_HINT = "run without --preview, or under a virtual X server: xvfb-run -a genxr demo --preview"


class PreviewUnavailableError(RuntimeError):
    """No display to open the preview window on; the message says what is missing."""


def display_name() -> str | None:
    """The display a window would open on (``WAYLAND_DISPLAY`` or ``DISPLAY``), None without one."""
    return os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY") or None


class PreviewWindowSink:
    """Shows the display frames in a resizable window (module docstring).

    ``width`` x ``height``: the frames' size, which sets the window's initial size (times
    ``scale``); frames of another size are shown too (a runtime's views), letterboxed.
    ``max_hz`` caps the redraws per second (frames in between are skipped): with GL on the
    CPU (llvmpipe) each redraw takes CPU time the loop and the models share. ``closed`` is
    True once the user closed the window; later frames are not shown. ``frames_drawn``
    counts frames the render thread drew (fewer than submitted when it fell behind).
    """

    name = "preview"

    def __init__(self, width: int, height: int, *, title: str = "genxr preview", scale: int = 2,
                 nice: int = 5, max_hz: float | None = None) -> None:
        if width < 1 or height < 1 or scale < 1:
            raise ValueError(f"preview size and scale must be positive, got {width}x{height} scale {scale}")
        if max_hz is not None and max_hz <= 0:
            raise ValueError(f"preview max_hz must be > 0 (or None for no cap), got {max_hz}")
        where = display_name()
        if where is None:
            raise PreviewUnavailableError(f"no display for the preview window: neither DISPLAY nor WAYLAND_DISPLAY is "
                                          f"set; {PREVIEW_HINT}")
        import glfw

        self._glfw = glfw
        self._errors: list[str] = []
        self._previous_error_callback = glfw.set_error_callback(self._glfw_error)
        if not glfw.init():
            glfw.set_error_callback(self._previous_error_callback)
            raise PreviewUnavailableError(f"GLFW cannot open display {where!r}: "
                                          f"{'; '.join(self._errors) or 'unknown error'}; {PREVIEW_HINT}")
        self._glfw_running = True
        self.width, self.height, self.nice = width, height, nice
        self.min_interval_ns = 0 if max_hz is None else round(NS_PER_S / max_hz)
        self.frames_submitted = self.frames_drawn = 0
        self.draw_ns: deque[int] = deque(maxlen=4096)
        """Render-thread time of each recent draw (upload + blit + swap), ns: what drawing on the
        loop's thread would cost it."""
        self.closed = False
        self.renderer = ""
        """The OpenGL renderer drawing the window (``llvmpipe ...`` for Mesa on the CPU)."""
        self._window = None
        self._thread: threading.Thread | None = None
        self._texture_size = (width, height)
        self._wake = threading.Condition()
        self._pending: tuple[np.ndarray, tuple[int, int]] | None = None  # newest frame and framebuffer size
        self._readback: list[np.ndarray] | None = None  # asked for by read_window, filled by the render thread
        self._stopping = False
        self._failure: BaseException | None = None
        self._ready = threading.Event()
        try:
            self._open(title, scale)
        except BaseException:
            self.close()
            raise

    def _glfw_error(self, code: int, description: bytes | str) -> None:
        text = description.decode(errors="replace") if isinstance(description, bytes) else description
        self._errors.append(f"{text} (GLFW error {code:#x})")

    def _open(self, title: str, scale: int) -> None:
        glfw = self._glfw
        import OpenGL.GL as gl
        from OpenGL import platform as gl_platform

        self._gl = gl
        glfw.default_window_hints()
        glfw.window_hint(glfw.RESIZABLE, glfw.TRUE)
        if type(gl_platform.PLATFORM).__name__.startswith("EGL"):
            glfw.window_hint(glfw.CONTEXT_CREATION_API, glfw.EGL_CONTEXT_API)
        self._window = glfw.create_window(self.width * scale, self.height * scale, title, None, None)
        if not self._window:
            raise PreviewUnavailableError(f"GLFW cannot create an OpenGL window on {display_name()!r}: "
                                          f"{'; '.join(self._errors) or 'unknown error'}; {PREVIEW_HINT}")
        self._thread = threading.Thread(target=self._render_thread, name="preview-render", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise PreviewUnavailableError(f"cannot draw into the preview window: {self._failure}; "
                                          f"{PREVIEW_HINT}") from self._failure

    def framebuffer_size(self) -> tuple[int, int]:
        """(width, height) of the window's framebuffer, pixels (changes when the window is resized)."""
        return tuple(self._glfw.get_framebuffer_size(self._window))

    @staticmethod
    def image_rect(image_size: tuple[int, int], framebuffer_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of an image of ``image_size`` (width, height) in a framebuffer of
        ``framebuffer_size``, GL pixels (origin bottom left): as large as fits with the image's
        aspect ratio, centred."""
        (width, height), (fb_w, fb_h) = image_size, framebuffer_size
        zoom = min(fb_w / width, fb_h / height)
        w, h = round(width * zoom), round(height * zoom)
        x0, y0 = (fb_w - w) // 2, (fb_h - h) // 2
        return x0, y0, x0 + w, y0 + h

    def submit(self, frame: DisplayFrame) -> None:
        """Hands ``frame.image`` (H, W, 3) uint8 (the first view of a stereo frame) to the render
        thread, replacing a frame it has not drawn yet; polls the window's events."""
        if self._failure is not None:
            raise SinkError(f"preview window failed: {type(self._failure).__name__}: {self._failure}") \
                from self._failure
        if self.closed:
            return
        self._glfw.poll_events()
        if self._glfw.window_should_close(self._window):
            self.closed = True
            return
        with self._wake:
            self._pending = (frame.image, self.framebuffer_size())
            self._wake.notify()
        self.frames_submitted += 1

    def read_window(self, timeout_s: float = 10.0) -> np.ndarray:
        """(fb_h, fb_w, 3) uint8, rows going down: the window's framebuffer (``glReadPixels``) as
        the render thread drew the newest submitted frame into it, read just before the swap."""
        if self.frames_submitted == 0:
            raise ValueError("nothing to read back: no frame was submitted to the preview window yet")
        with self._wake:
            self._readback = []
            self._wake.notify()
            if not self._wake.wait_for(lambda: self._readback or self._failure is not None, timeout_s):
                raise TimeoutError(f"the preview's render thread did not answer within {timeout_s} s")
            if self._failure is not None:
                raise SinkError(f"preview window failed: {self._failure}") from self._failure
            pixels, self._readback = self._readback[0], None
        return pixels

    def _render_thread(self) -> None:
        glfw = self._glfw
        try:
            lower_thread_priority(self.nice)
            glfw.make_context_current(self._window)
            glfw.swap_interval(0)  # never wait for the monitor's vertical blank: the loop sets the pace
            resources = self._create_resources()
        except Exception as err:  # reported by _open on the loop's thread
            self._failure = err
            self._ready.set()
            return
        self._ready.set()
        newest: tuple[np.ndarray, tuple[int, int]] | None = None  # what the window shows
        try:
            while True:
                with self._wake:  # a read-back redraws the newest frame (submit made sure there is one)
                    self._wake.wait_for(lambda: self._stopping or self._pending is not None or self._readback == [])
                    if self._stopping:
                        break
                    job, self._pending = self._pending, None
                    read_back = self._readback == []
                newest = job or newest
                started_ns = time.perf_counter_ns()
                self._draw(*newest, *resources)
                pixels = self._read_back_buffer(newest[1]) if read_back else None
                glfw.swap_buffers(self._window)
                if job is not None:
                    self.draw_ns.append(time.perf_counter_ns() - started_ns)
                    self.frames_drawn += 1
                if read_back:
                    with self._wake:
                        self._readback = [pixels]
                        self._wake.notify_all()
                if job is not None and self.min_interval_ns:  # at most max_hz redraws; newer frames keep
                    with self._wake:                          # replacing the pending one meanwhile
                        self._wake.wait_for(lambda: self._stopping or self._readback == [],
                                            (self.min_interval_ns - (time.perf_counter_ns() - started_ns)) / NS_PER_S)
        except Exception as err:  # reported to the loop by the next submit
            with self._wake:
                self._failure = err
                self._wake.notify_all()
        finally:
            gl = self._gl
            gl.glDeleteFramebuffers(1, [resources[1]])
            gl.glDeleteTextures(1, [resources[0]])
            glfw.make_context_current(None)

    def _create_resources(self) -> tuple[int, int]:
        """(texture, read framebuffer): the frame's RGB texture, attached to a framebuffer to blit from."""
        gl = self._gl
        texture = gl.glGenTextures(1)
        gl.glBindTexture(gl.GL_TEXTURE_2D, texture)
        gl.glTexImage2D(gl.GL_TEXTURE_2D, 0, gl.GL_RGB8, self.width, self.height, 0, gl.GL_RGB, gl.GL_UNSIGNED_BYTE,
                        None)
        framebuffer = gl.glGenFramebuffers(1)
        gl.glBindFramebuffer(gl.GL_READ_FRAMEBUFFER, framebuffer)
        gl.glFramebufferTexture2D(gl.GL_READ_FRAMEBUFFER, gl.GL_COLOR_ATTACHMENT0, gl.GL_TEXTURE_2D, texture, 0)
        status = gl.glCheckFramebufferStatus(gl.GL_READ_FRAMEBUFFER)
        if status != gl.GL_FRAMEBUFFER_COMPLETE:
            raise RuntimeError(f"the preview's framebuffer is incomplete (status {status:#x}) with "
                               f"{gl.glGetString(gl.GL_RENDERER)!r}")
        gl.glPixelStorei(gl.GL_UNPACK_ALIGNMENT, 1)
        gl.glPixelStorei(gl.GL_PACK_ALIGNMENT, 1)
        gl.glClearColor(0.0, 0.0, 0.0, 1.0)
        self.renderer = gl.glGetString(gl.GL_RENDERER).decode()
        return texture, framebuffer

    def _draw(self, image: np.ndarray, framebuffer_size: tuple[int, int], texture: int, framebuffer: int) -> None:
        gl = self._gl
        height, width = image.shape[:2]
        gl.glBindTexture(gl.GL_TEXTURE_2D, texture)
        if (width, height) != self._texture_size:  # a runtime's views may differ from the configured display size
            gl.glTexImage2D(gl.GL_TEXTURE_2D, 0, gl.GL_RGB8, width, height, 0, gl.GL_RGB, gl.GL_UNSIGNED_BYTE, None)
            self._texture_size = (width, height)
        gl.glTexSubImage2D(gl.GL_TEXTURE_2D, 0, 0, 0, width, height, gl.GL_RGB, gl.GL_UNSIGNED_BYTE,
                           np.ascontiguousarray(image))
        x0, y0, x1, y1 = self.image_rect((width, height), framebuffer_size)
        gl.glViewport(0, 0, *framebuffer_size)
        gl.glBindFramebuffer(gl.GL_DRAW_FRAMEBUFFER, 0)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT)
        gl.glBindFramebuffer(gl.GL_READ_FRAMEBUFFER, framebuffer)
        # Texture row 0 is the image's top row: blitting it to the top (y1) shows the image upright.
        gl.glBlitFramebuffer(0, 0, width, height, x0, y1, x1, y0, gl.GL_COLOR_BUFFER_BIT, gl.GL_LINEAR)

    def _read_back_buffer(self, framebuffer_size: tuple[int, int]) -> np.ndarray:
        gl = self._gl
        fb_w, fb_h = framebuffer_size
        gl.glBindFramebuffer(gl.GL_READ_FRAMEBUFFER, 0)
        gl.glReadBuffer(gl.GL_BACK)
        pixels = gl.glReadPixels(0, 0, fb_w, fb_h, gl.GL_RGB, gl.GL_UNSIGNED_BYTE)
        return np.frombuffer(pixels, np.uint8).reshape(fb_h, fb_w, 3)[::-1].copy()

    def close(self) -> None:
        """Stops the render thread, destroys the window and ends GLFW; safe to call twice."""
        glfw = self._glfw
        if self._thread is not None:
            with self._wake:
                self._stopping = True
                self._wake.notify_all()
            self._thread.join()
            self._thread = None
        if self._window is not None:
            glfw.destroy_window(self._window)
            self._window = None
        if self._glfw_running:
            glfw.terminate()
            glfw.set_error_callback(self._previous_error_callback)
            self._glfw_running = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

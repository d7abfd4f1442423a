"""The preview window on a virtual X screen (Xvfb, Mesa's llvmpipe): it opens, shows the
submitted frames (read back from its framebuffer and from the X screen), follows a resize,
ends the session when closed, and without a display says what is missing.

Every window-touching check runs in a child process: PyOpenGL fixes its platform (GLX or
EGL) once per process, and other tests use EGL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from genxr.platform.config import load_config
from genxr.xr_runtime.session import SessionError, run_session

REPO = Path(__file__).resolve().parents[2]
XVFB = shutil.which("Xvfb")


@pytest.fixture(scope="module")
def x_display():
    """A virtual X screen on a free display number (Xvfb picks it: -displayfd), killed after.
    ``-noreset``: by default an X server resets when its last client disconnects, and a window
    opened during the reset fails with "cannot open display"."""
    if XVFB is None:
        pytest.skip("Xvfb is not installed (apt install xvfb); the preview window needs an X screen")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen([XVFB, "-displayfd", str(write_fd), "-screen", "0", "640x480x24", "-nolisten", "tcp",
                               "-noreset"],
                              pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as numbers:
        number = numbers.readline().strip()
    if not number:
        server.kill()
        pytest.fail("Xvfb did not report a display number")
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def run_child(code: str, env: dict[str, str], timeout_s: float = 120) -> dict:
    """Runs ``code`` in a fresh Python with ``env``; returns the JSON it prints last."""
    child = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=timeout_s, check=False)
    assert child.returncode == 0, f"child failed:\n{child.stdout}\n{child.stderr}"
    return json.loads(child.stdout.strip().splitlines()[-1])


def display_env(display: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DISPLAY", "WAYLAND_DISPLAY", "PYOPENGL_PLATFORM")}
    if display is not None:
        env["DISPLAY"] = display
    return env


WINDOW_CHECKS = """
import json, os, time
import numpy as np
import glfw
from PIL import ImageGrab
from genxr.platform.messages import DisplayFrame
from genxr.xr_runtime.preview import PreviewWindowSink

def quadrants(h, w, shade):  # four solid blocks: interior pixels survive any scaling filter exactly
    image = np.zeros((h, w, 3), np.uint8)
    image[: h // 2, : w // 2] = (255, 0, 0)
    image[: h // 2, w // 2 :] = (0, 255, 0)
    image[h // 2 :, : w // 2] = (0, 0, 255)
    image[h // 2 :, w // 2 :] = (shade, shade, shade)
    return image

out = {}
rng = np.random.default_rng(0)
noise = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
with PreviewWindowSink(64, 48, scale=1) as sink:  # 1:1 - every pixel must come through unchanged
    for frame_id in range(5):
        sink.submit(DisplayFrame(frame_id=frame_id, display_time_ns=frame_id, image=noise))
    window = sink.read_window()
    out["renderer"] = sink.renderer
    out["one_to_one_equal"] = bool(np.array_equal(window, noise))
    x, y = glfw.get_window_pos(sink._window)
    for _ in range(100):  # the X server shows the swapped image asynchronously (another client's request)
        screen = np.asarray(ImageGrab.grab(bbox=(x, y, x + 64, y + 48), xdisplay=os.environ["DISPLAY"]))
        out["screen_equal"] = bool(np.array_equal(screen[:, :, :3], noise))
        if out["screen_equal"]:
            break
        time.sleep(0.05)
    out["submitted"], out["drawn"] = sink.frames_submitted, sink.frames_drawn

with PreviewWindowSink(64, 48, scale=2) as sink:  # scaled, then resized to a wide window: letterboxed
    sink.submit(DisplayFrame(frame_id=0, display_time_ns=0, image=quadrants(48, 64, 40)))
    scaled = sink.read_window()
    out["scaled_shape"] = list(scaled.shape)
    out["scaled_corners"] = [scaled[20, 30].tolist(), scaled[20, 100].tolist(), scaled[70, 30].tolist(),
                             scaled[70, 100].tolist()]
    sink.submit(DisplayFrame(frame_id=1, display_time_ns=1, image=quadrants(48, 64, 200)))
    out["changed_shade"] = sink.read_window()[70, 100].tolist()
    glfw.set_window_size(sink._window, 256, 96)
    for _ in range(200):  # the X server answers the resize asynchronously
        glfw.wait_events_timeout(0.05)
        if tuple(glfw.get_framebuffer_size(sink._window)) == (256, 96):
            break
    sink.submit(DisplayFrame(frame_id=2, display_time_ns=2, image=quadrants(48, 64, 200)))
    wide = sink.read_window()
    out["wide_shape"] = list(wide.shape)
    out["wide_rect"] = list(sink.image_rect((64, 48), (256, 96)))
    out["wide_border"] = wide[48, 10].tolist()
    out["wide_inside"] = [wide[20, 100].tolist(), wide[70, 150].tolist()]
    glfw.set_window_should_close(sink._window, True)  # what the window's close button does
    sink.submit(DisplayFrame(frame_id=3, display_time_ns=3, image=noise))
    out["closed"], out["submitted_after_close"] = sink.closed, sink.frames_submitted

with PreviewWindowSink(64, 48, max_hz=20) as sink:  # redraws capped: frames in between are skipped
    start = time.perf_counter()
    for frame_id in range(45):
        sink.submit(DisplayFrame(frame_id=frame_id, display_time_ns=frame_id, image=noise))
        time.sleep(1 / 90)
    sink.read_window()
    out["capped_drawn"], out["capped_seconds"] = sink.frames_drawn, time.perf_counter() - start
print(json.dumps(out))
"""


def test_the_window_shows_the_submitted_frames(x_display):
    out = run_child(WINDOW_CHECKS, display_env(x_display))
    assert out["renderer"], "an OpenGL renderer drew the window"
    assert out["one_to_one_equal"], "glReadPixels of the window's framebuffer equals the submitted frame"
    assert out["screen_equal"], "the X screen shows the frame"
    assert out["submitted"] == 5 and 1 <= out["drawn"] <= 5, "the render thread draws the newest, skipping none or some"
    assert out["scaled_shape"] == [96, 128, 3]
    assert out["scaled_corners"] == [[255, 0, 0], [0, 255, 0], [0, 0, 255], [40, 40, 40]], "upright, not mirrored"
    assert out["changed_shade"] == [200, 200, 200], "a new frame replaces the old one"
    assert out["wide_shape"] == [96, 256, 3] and out["wide_rect"] == [64, 0, 192, 96]
    assert out["wide_border"] == [0, 0, 0], "letterboxed: black beside the frame, aspect kept"
    assert out["wide_inside"] == [[255, 0, 0], [200, 200, 200]]
    assert out["closed"] and out["submitted_after_close"] == 3, "frames after the window closed are not shown"
    # at most max_hz redraws a second, plus the first one and the read-back's (it draws the pending frame at once)
    assert 1 <= out["capped_drawn"] <= out["capped_seconds"] * 20 + 2


SESSION_CLOSED_BY_WINDOW = """
import json, sys
import glfw
from genxr.platform.clock import MONOTONIC
from genxr.platform.config import load_config
from genxr.xr_runtime import preview
from genxr.xr_runtime.recording.reader import read_recording
from genxr.xr_runtime.session import run_session
from genxr.xr_runtime.sim_source import SimulatedSource

windows = []

class Recorded(preview.PreviewWindowSink):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        windows.append(self)

preview.PreviewWindowSink = Recorded

closed_at = []

class ClosesTheWindow(SimulatedSource):
    def read(self, timing):
        if timing.frame_id >= 15 and not closed_at:  # (a loaded machine may skip refresh 15 itself)
            glfw.set_window_should_close(windows[0]._window, True)  # the researcher clicks the close button
            closed_at.append(timing.frame_id)
        return super().read(timing)

config = load_config("quick", display={"width": 64, "height": 64, "preview": True, "hud": True},
                     session={"world": "ground_truth", "avatar": False})
result = run_session(config, sys.argv[1], seconds=60.0, max_frames=200, source=ClosesTheWindow(seed=0, clock=MONOTONIC))
recording = read_recording(result.folder / "recording")
print(json.dumps({"frames": result.metrics["frames"], "drawn": windows[0].frames_drawn,
                  "stopped": recording.events[-1].detail, "complete": recording.complete,
                  "recorded": len(recording.frames), "last_frame_id": recording.frames[-1].frame_id, "closed_at": closed_at[0], "hud_spans": result.metrics["stages"]["hud"]["count"],
                  "submit_preview": "submit preview" in result.metrics["stages"]}))
"""


def test_closing_the_window_ends_the_session_with_every_file_complete(x_display, tmp_path):
    code = SESSION_CLOSED_BY_WINDOW.replace("sys.argv[1]", repr(str(tmp_path / "closed")))
    out = run_child(code, display_env(x_display), timeout_s=300)
    assert out["last_frame_id"] == out["closed_at"], "the frame that saw the window close was the last"
    assert out["drawn"] >= 1 and out["submit_preview"] and out["hud_spans"] == out["frames"]
    assert out["stopped"] == "preview window closed" and out["complete"] and out["recorded"] == out["frames"]
    import av

    with av.open(str(tmp_path / "closed" / "session.mp4")) as video:
        assert sum(1 for _ in video.decode(video=0)) >= 1, "the mp4 was finished"


NO_WINDOW = """
import json
from genxr.xr_runtime.preview import PreviewUnavailableError, PreviewWindowSink
try:
    PreviewWindowSink(64, 64)
except PreviewUnavailableError as err:
    print(json.dumps({"error": str(err)}))
"""


def test_without_a_display_the_error_says_what_is_missing():
    message = run_child(NO_WINDOW, display_env(None))["error"]
    assert "neither DISPLAY nor WAYLAND_DISPLAY is set" in message
    assert "without --preview" in message and "xvfb-run" in message


def test_a_display_glfw_cannot_open_is_named():
    message = run_child(NO_WINDOW, display_env(":4242"))["error"]  # no X server listens there
    assert "':4242'" in message and "without --preview" in message


def test_a_session_with_a_preview_and_no_display_stops_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    config = load_config("quick", display={"preview": True})
    with pytest.raises(SessionError, match="--preview needs a display"):
        run_session(config, tmp_path / "s", seconds=1.0)
    assert list((tmp_path / "s").iterdir()) == [], "no recording was started"


def test_genxr_demo_preview_without_a_display_exits_2_saying_what_to_do(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from genxr.cli.app import app
    from tests.helpers.cli import said

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = CliRunner().invoke(app, ["demo", "--preview", "--hud", "--preset", "quick", "--out", str(tmp_path / "d")])
    assert result.exit_code == 2
    message = said(result.stderr)
    assert "--preview needs a display" in message and "xvfb-run" in message

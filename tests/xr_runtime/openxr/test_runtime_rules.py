"""What a real runtime (Monado) did to genxr, reproduced on the spec-enforcing fake runtime
(:mod:`tests.helpers.fake_openxr`) and fixed (issue #17).

The fake refuses what a runtime refused, with the runtime's error: ``xrCreateSession`` for an
OpenGL session without ``xrGetOpenGLGraphicsRequirementsKHR`` on that instance
(``GraphicsRequirementsCallMissingError``), ``xrEndSession`` outside STOPPING
(``SessionNotStoppingError``), ``xrRequestExitSession`` on a session that is not running; it
paces ``xrWaitFrame`` on a vsync grid and skips the refreshes a late application missed; any
call can fail as it does without a headset or a runtime service. The real
:class:`~genxr.xr_runtime.openxr.source.OpenXRSource` runs on it (only the EGL context is a
stand-in), so every test here goes through the code a headset session runs.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import xr

from genxr.platform.clock import MONOTONIC, NS_PER_S, ManualClock
from genxr.platform.messages import LocationFlags, WorldFrame
from genxr.xr_runtime.openxr.convert import head_from_xr
from genxr.xr_runtime.openxr.source import OpenXRCloseWarning, OpenXRUnavailableError
from genxr.xr_runtime.timing import skipped_refreshes
from tests.helpers.fake_openxr import (
    ALL_EXTENSIONS,
    HEAD_3DOF,
    PERIOD_NS,
    FakeGL,
    FakeHeadsetSource,
    FakeOpenXRSource,
    TrackingRuntime,
    XrFunctions,
)

ROOT = Path(__file__).resolve().parents[3]
START_NS = 10 * NS_PER_S


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start_ns=START_NS)


def frames(source, count: int, *, late: dict[int, int] | None = None) -> list:
    """``count`` frames as the frame loop runs them (wait, read, end); after frame ``i`` in ``late``
    the application takes that many extra nanoseconds before ending it."""
    late = late or {}
    out = []
    for index in range(count):
        timing = source.wait_frame()
        frame = source.read(timing)
        assert frame is not None
        if index in late:
            source.clock.sleep_until_ns(source.clock.now_ns() + late[index])
        if source.graphics:
            source.frame_cycle.end()
        out.append((timing, frame))
    return out


# -- the fake's own rules ------------------------------------------------------------------------


def gl_instance(runtime):
    fake = XrFunctions(runtime)
    instance = fake.create_instance(xr.InstanceCreateInfo(enabled_extension_names=[
        "XR_KHR_opengl_enable", "XR_MNDX_egl_enable"]))
    system_id = fake.get_system(instance, xr.SystemGetInfo(form_factor=xr.FormFactor.HEAD_MOUNTED_DISPLAY))
    return fake, instance, system_id


def test_the_fake_refuses_an_opengl_session_without_the_requirements_call_on_that_instance(clock):
    runtime = TrackingRuntime(clock)
    fake, instance, system_id = gl_instance(runtime)
    gl = FakeGL()
    info = xr.SessionCreateInfo(system_id=system_id)
    info.next = gl.pointer
    with pytest.raises(xr.GraphicsRequirementsCallMissingError):
        fake.create_session(instance, info)
    requirements = ctypes.cast(fake.get_instance_proc_addr(instance, "xrGetOpenGLGraphicsRequirementsKHR"),
                               xr.PFN_xrGetOpenGLGraphicsRequirementsKHR)
    assert requirements(instance, system_id, ctypes.byref(xr.GraphicsRequirementsOpenGLKHR())) == 0
    session = fake.create_session(instance, info)
    fake.destroy_session(session)
    fake.destroy_instance(instance)
    _, other, other_system = gl_instance(runtime)  # a second instance: the call counts per instance
    with pytest.raises(xr.GraphicsRequirementsCallMissingError):
        fake.create_session(other, info)
    with pytest.raises(xr.HandleInvalidError):
        fake.create_session(instance, info)  # destroyed


def test_the_fake_refuses_xr_end_session_outside_stopping_and_exit_requests_when_not_running(clock):
    runtime = TrackingRuntime(clock)
    fake = XrFunctions(runtime)
    instance = fake.create_instance(xr.InstanceCreateInfo(enabled_extension_names=["XR_MND_headless"]))
    session = fake.create_session(instance, xr.SessionCreateInfo(system_id=fake.get_system(
        instance, xr.SystemGetInfo(form_factor=xr.FormFactor.HEAD_MOUNTED_DISPLAY))))
    with pytest.raises(xr.SessionNotRunningError):
        fake.request_exit_session(session)
    fake.poll_event(instance), fake.poll_event(instance)  # IDLE, READY
    fake.begin_session(session, xr.SessionBeginInfo(primary_view_configuration_type=xr.ViewConfigurationType.PRIMARY_MONO))
    with pytest.raises(xr.SessionNotStoppingError):
        fake.end_session(session)  # READY, running: what genxr did when leaving a headless session
    with pytest.raises(xr.CallOrderInvalidError):
        fake.begin_frame(session)  # Monado's headless quirk


def test_the_fake_paces_on_a_vsync_grid_and_skips_the_refreshes_a_late_application_missed(clock):
    runtime = TrackingRuntime(clock)
    with FakeHeadsetSource(runtime, clock=clock) as source:
        timings = [timing for timing, _ in frames(source, 8, late={3: 25_000_000})]
    displays = [t.predicted_display_time_ns for t in timings]
    gaps = [b - a for a, b in zip(displays, displays[1:])]
    assert gaps == [PERIOD_NS] * 3 + [3 * PERIOD_NS] + [PERIOD_NS] * 3, "25 ms late at 90 Hz: two refreshes lost"
    assert runtime.skipped_display_times == 2 and runtime.late_frames == 1


# -- 1. a second graphics session in one process -------------------------------------------------


def test_a_second_graphics_session_in_one_process_calls_the_requirements_again(clock):
    runtime = TrackingRuntime(clock)
    for trial in range(3):  # a study's trials, one session each
        with FakeHeadsetSource(runtime, clock=clock) as source:
            assert source.graphics and source.capabilities.hand_tracking
            frames(source, 3)
        assert runtime.live() == [], f"trial {trial}: everything destroyed"
    assert runtime.sessions_created == 3
    assert len(runtime.gl_requirements_calls) == 3 and len(set(runtime.gl_requirements_calls)) == 3, \
        "the requirements were asked for on each instance"


PYOPENXR_CONTEXT_OBJECT_TWICE = textwrap.dedent("""
    import json
    from types import SimpleNamespace
    import xr
    import xr.utils.gl as gl_module
    import xr.utils.gl.context_object as context_module
    from genxr.platform.clock import ManualClock
    from tests.helpers.fake_openxr import FakeGL, TrackingRuntime, XrFunctions

    runtime = TrackingRuntime(ManualClock(start_ns=10**10))
    fake = XrFunctions(runtime)
    gl_module.xr = context_module.xr = fake  # pyopenxr's ContextObject and OpenGLGraphics call the fake
    gl_module.create_graphics_binding = lambda provider: provider
    real_gl = gl_module.GL
    gl_module.GL = SimpleNamespace(glGenFramebuffers=lambda n: 1, glBindFramebuffer=lambda *a: None,
                                   glDeleteFramebuffers=lambda *a: None,
                                   GL_RGB10_A2=real_gl.GL_RGB10_A2, GL_RGBA16F=real_gl.GL_RGBA16F,
                                   GL_RGBA8=real_gl.GL_RGBA8, GL_RGBA8_SNORM=real_gl.GL_RGBA8_SNORM,
                                   GL_SRGB8=real_gl.GL_SRGB8, GL_SRGB8_ALPHA8=real_gl.GL_SRGB8_ALPHA8,
                                   GL_FRAMEBUFFER=real_gl.GL_FRAMEBUFFER)
    info = lambda: xr.InstanceCreateInfo(enabled_extension_names=["XR_KHR_opengl_enable", "XR_MNDX_egl_enable"])
    out = {}
    with gl_module.ContextObject(context_provider=FakeGL(), instance_create_info=info()):
        out["first"] = "opened"
    second = gl_module.ContextObject(context_provider=FakeGL(), instance_create_info=info())
    try:
        second.__enter__()
        out["second"] = "opened"
    except Exception as err:
        out["second"] = f"{type(err).__name__}: {err}"
        try:
            second.__exit__(None, None, None)
        except Exception as cleanup:
            out["cleanup"] = f"{type(cleanup).__name__}: {cleanup}"
    print(json.dumps(out))
""")


def test_the_fake_refuses_pyopenxrs_context_object_the_second_time_as_monado_did():
    """pyopenxr's ContextObject (which genxr used) has a shared default ``XrSessionCreateInfo``: the
    second one skips the requirements call. On the fake, as on Monado, its session is refused, and
    its cleanup hides that behind an AttributeError. (A child process: the patches are global.)"""
    done = subprocess.run([sys.executable, "-c", PYOPENXR_CONTEXT_OBJECT_TWICE], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "PYOPENGL_PLATFORM": "egl", "EGL_PLATFORM": "surfaceless"})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["first"] == "opened"
    assert result["second"].startswith("GraphicsRequirementsCallMissingError: Has not called "
                                       "xrGetOpenGL[ES]GraphicsRequirementsKHR")
    assert "default_action_set" in result["cleanup"]


# -- 2. deadline misses and xrEndFrame margins from the runtime ------------------------------------


def test_skipped_refreshes_count_whole_periods_between_predicted_display_times():
    assert skipped_refreshes(None, 100, 10) == 0
    assert skipped_refreshes(100, 110, 10) == 0
    assert skipped_refreshes(100, 130, 10) == 2
    assert skipped_refreshes(100, 111, 10) == 0, "jitter is not a miss"
    assert skipped_refreshes(100, 100, 0) == 0


def test_a_late_application_is_counted_from_the_runtimes_display_times_and_its_end_margins(clock):
    runtime = TrackingRuntime(clock)
    late = {2: 2 * PERIOD_NS + PERIOD_NS // 2, 6: PERIOD_NS + PERIOD_NS // 3}
    with FakeHeadsetSource(runtime, clock=clock) as source:
        timings = [timing for timing, _ in frames(source, 10, late=late)]
        after = source.wait_frame()  # carries the last frame's margin
    missed = [t.missed_frames for t in timings]
    assert sum(missed) == runtime.skipped_display_times == 2 + 1, "the refreshes the runtime skipped, each counted"
    assert missed[3] == 2 and missed[7] == 1, "2.5 periods late: two refreshes lost; 1.3 periods: one"
    margins = [t.previous_end_margin_ns for t in timings[1:]] + [after.previous_end_margin_ns]
    assert timings[0].previous_end_margin_ns is None
    assert margins == runtime.end_margins_ns[:10], "each frame's xrEndFrame margin, as the runtime saw it"
    assert [i for i, m in enumerate(margins) if m < 0] == [2, 6] and runtime.late_frames == 2
    assert margins[2] == PERIOD_NS - late[2] and margins[0] == PERIOD_NS


def _still_world(request):
    """A world service answering at once with a grey frame at the request's newest head pose."""
    last = request.tracking[-1]
    return WorldFrame(session_id=request.session_id, request_id=request.request_id, frame_id=last.frame_id,
                      head=last.head, generated_for_time_ns=last.predicted_display_time_ns, vertical_fov_deg=90.0,
                      image=np.full((16, 16, 3), 90, np.uint8))


def test_a_session_on_a_pacing_runtime_reports_the_misses_and_late_frames_the_runtime_saw(tmp_path):
    from genxr.platform.config import load_config
    from genxr.xr_runtime.session import run_session

    runtime = TrackingRuntime(MONOTONIC)

    def slow_every_tenth(frame_id: int) -> None:  # the loop overruns: the app is late for its frame
        if frame_id % 10 == 5:
            MONOTONIC.sleep_until_ns(MONOTONIC.now_ns() + 3 * PERIOD_NS)

    config = load_config("quick", session={"avatar": False}, display={"width": 32, "height": 24})
    result = run_session(config, tmp_path / "late", max_frames=40, source=FakeHeadsetSource(runtime, clock=MONOTONIC),
                         world=("still", _still_world), on_progress=slow_every_tenth)
    metrics = result.metrics
    refreshes = metrics["frames"] + runtime.skipped_display_times
    assert runtime.skipped_display_times >= 4, "each slow frame lost refreshes"
    assert metrics["deadline_miss_rate"] == pytest.approx(runtime.skipped_display_times / refreshes)
    assert metrics["frames_ended_late"] == runtime.late_frames >= 4
    assert metrics["end_frame_margin_ms_p01"] < 0, "the late frames show as negative margins"
    runtime_p50_ms = float(np.percentile(runtime.end_margins_ns, 50)) / 1e6
    assert metrics["end_frame_margin_ms_p50"] == pytest.approx(runtime_p50_ms, abs=1.0), "the margins the runtime saw"
    assert runtime.live() == []


def test_the_last_frame_of_a_session_is_counted_when_it_ends_late(tmp_path):
    """Each frame's xrEndFrame margin is reported with the next frame's wait; the session's final
    frame has no next frame, so the loop asks the source for it when it stops."""
    from genxr.platform.config import load_config
    from genxr.xr_runtime.session import run_session

    runtime = TrackingRuntime(MONOTONIC)

    frames = 12

    def slow_last(frame_id: int) -> None:  # the headset source numbers frames from 1
        if frame_id == frames:
            MONOTONIC.sleep_until_ns(MONOTONIC.now_ns() + 3 * PERIOD_NS)

    config = load_config("quick", session={"avatar": False}, display={"width": 32, "height": 24})
    result = run_session(config, tmp_path / "late-last", max_frames=frames,
                         source=FakeHeadsetSource(runtime, clock=MONOTONIC), world=("still", _still_world),
                         on_progress=slow_last)
    assert runtime.end_margins_ns[-1] < 0, "the last frame was ended after its display time"
    assert result.metrics["frames_ended_late"] == runtime.late_frames >= 1


def test_the_mp4_and_the_manifest_follow_the_runtimes_display_rate_not_the_configs(tmp_path):
    """Issue #17, 3: a runtime pacing at 20 Hz (Monado's null compositor) gave a 90 Hz mp4 a
    fifth as long as the session, and a manifest saying 90 Hz."""
    import av

    from genxr.platform.config import load_config
    from genxr.xr_runtime.recording.reader import read_recording
    from genxr.xr_runtime.session import run_session

    runtime = TrackingRuntime(MONOTONIC)
    runtime.period_ns = NS_PER_S // 20
    frames = 24
    config = load_config("quick", session={"avatar": False, "display_rate_hz": 90.0},
                         display={"width": 32, "height": 24})
    result = run_session(config, tmp_path / "slow", max_frames=frames, source=FakeHeadsetSource(runtime, clock=MONOTONIC),
                         world=("still", _still_world))
    assert result.metrics["display_rate_hz"] == pytest.approx(20.0)
    recording = read_recording(tmp_path / "slow" / "recording")
    assert recording.manifest["display_rate_hz"] == pytest.approx(20.0)
    with av.open(str(tmp_path / "slow" / "session.mp4")) as container:
        stream = container.streams.video[0]
        times = [float(frame.time) for frame in container.decode(stream)]
    assert len(times) == frames
    displayed = np.array([frame.predicted_display_time_ns for frame in recording.frames]) / NS_PER_S
    assert np.median(np.diff(times)) == pytest.approx(1 / 20, abs=1e-3), "one frame per 50 ms refresh"
    assert np.diff(times) == pytest.approx(np.diff(displayed), abs=1e-3), "a refresh the runtime skipped is a gap"
    from genxr.evaluation.dashboard.data import load_session

    assert load_session(tmp_path / "slow")["deadline_ms"] == pytest.approx(50.0), "the dashboard's frame budget"


# -- 5. failures while opening -------------------------------------------------------------------


@pytest.mark.parametrize("headless", [False, True], ids=["graphics", "headless"])
@pytest.mark.parametrize("function, error, named", [
    ("create_instance", xr.RuntimeFailureError("the service is not running"), "xrCreateInstance"),
    ("get_system", xr.FormFactorUnavailableError("no headset"), "xrGetSystem"),
    ("create_session", xr.RuntimeFailureError("the compositor failed"), "xrCreateSession"),
    ("xrGetSystemProperties", xr.RuntimeFailureError(), "xrGetSystemProperties"),
    ("create_reference_space", xr.RuntimeFailureError(), "xrCreateReferenceSpace"),
    ("create_hand_tracker_ext", xr.RuntimeFailureError(), "xrCreateHandTrackerEXT"),
])
def test_every_failure_while_opening_names_the_runtimes_error_and_leaves_nothing(clock, headless, function, error,
                                                                                 named):
    runtime = TrackingRuntime(clock)
    runtime.fail[function] = error
    source = FakeOpenXRSource(runtime, clock=clock, prefer_headless=headless)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(OpenXRUnavailableError) as excinfo:
            source.__enter__()
    message = str(excinfo.value)
    assert named in message and type(error).__name__ in message, message
    assert "--source sim" in message and "\n" not in message
    assert not isinstance(excinfo.value.__cause__, AttributeError)
    assert runtime.live() == [], "whatever was created was destroyed"
    assert all(gl.destroyed == 1 for gl in source.gl_contexts)
    if function == "get_system":
        assert "connect it and switch it on" in message


def test_the_graphics_requirements_failing_is_raised_not_ignored(clock):
    runtime = TrackingRuntime(clock)
    runtime.fail["xrGetOpenGLGraphicsRequirementsKHR"] = xr.RuntimeFailureError()
    with pytest.raises(OpenXRUnavailableError, match="xrGetOpenGLGraphicsRequirementsKHR: RuntimeFailureError"):
        FakeHeadsetSource(runtime, clock=clock).__enter__()
    assert runtime.sessions_created == 0 and runtime.live() == []


def test_no_runtime_at_all_says_what_to_install(clock):
    runtime = TrackingRuntime(clock)
    runtime.fail["enumerate_instance_extension_properties"] = xr.RuntimeUnavailableError("no runtime")
    with pytest.raises(OpenXRUnavailableError, match="No OpenXR runtime is available.*XR_RUNTIME_JSON"):
        FakeHeadsetSource(runtime, clock=clock).__enter__()


def test_demo_with_a_runtime_whose_session_fails_exits_2_naming_the_error(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from genxr.cli.app import app
    from genxr.xr_runtime import session as session_module

    runtime = TrackingRuntime(MONOTONIC)
    runtime.fail["create_session"] = xr.RuntimeFailureError("compositor failed to start")
    monkeypatch.setattr(session_module, "make_source", lambda config, clock: FakeHeadsetSource(runtime, clock=clock))
    result = CliRunner().invoke(app, ["demo", "--source", "openxr", "--seconds", "1", "--out", str(tmp_path / "xr")])
    said = " ".join(result.stderr.split())
    assert result.exit_code == 2, result.output
    assert "xrCreateSession (OpenGL): RuntimeFailureError: compositor failed to start" in said
    assert "AttributeError" not in said and "Traceback" not in said
    assert runtime.live() == []


# -- 7. leaving a session, headless sessions ------------------------------------------------------


def test_leaving_a_headless_session_requests_exit_and_ends_it_only_in_stopping(clock):
    runtime = TrackingRuntime(clock)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OpenXRCloseWarning)
        with FakeOpenXRSource(runtime, clock=clock, prefer_headless=True) as source:
            assert not source.graphics and source.capabilities.headless
            frames(source, 5)
            assert source.state_machine.running
    called = runtime.called
    assert called.index("request_exit_session") < called.index("end_session") < called.index("destroy_session") \
        < called.index("destroy_instance")
    assert runtime.live() == [] and source.close_errors == []


def test_leaving_a_session_that_never_began_does_not_end_it(clock):
    runtime = TrackingRuntime(clock)
    for headless in (True, False):
        with FakeOpenXRSource(runtime, clock=clock, prefer_headless=headless) as source:
            assert not source.state_machine.running  # READY is queued, not yet polled
        assert "end_session" not in runtime.called and "request_exit_session" not in runtime.called
        assert runtime.live() == [] and source.close_errors == []


def test_leaving_a_running_graphics_session_mid_frame_ends_frames_until_stopping(clock):
    runtime = TrackingRuntime(clock)
    with FakeHeadsetSource(runtime, clock=clock) as source:
        frames(source, 3)
        source.wait_frame()  # the loop stops with a frame open
    called = runtime.called
    assert called.index("request_exit_session") < called.index("end_session")
    assert runtime.frame == "none" and runtime.live() == [] and source.close_errors == []
    assert source.gl_contexts[0].destroyed == 1


def test_leaving_after_the_runtime_vanished_still_destroys_everything_and_warns(clock):
    runtime = TrackingRuntime(clock)
    with pytest.warns(OpenXRCloseWarning, match="xrRequestExitSession|InstanceLostError"):
        with FakeOpenXRSource(runtime, clock=clock, prefer_headless=True) as source:
            frames(source, 2)
            runtime.fail["request_exit_session"] = xr.InstanceLostError("the runtime went away")
    assert runtime.live() == [] and "InstanceLostError" in source.close_errors[0]


def test_the_loops_error_is_not_replaced_by_a_failing_exit(clock):
    runtime = TrackingRuntime(clock)
    with pytest.raises(RuntimeError, match="the loop failed"), pytest.warns(OpenXRCloseWarning):
        with FakeHeadsetSource(runtime, clock=clock) as source:
            frames(source, 2)
            runtime.fail["end_session"] = xr.SessionLostError()
            raise RuntimeError("the loop failed")
    assert runtime.live() == []


def test_session_openxr_headless_asks_the_source_for_a_headless_session():
    from genxr.platform.config import load_config
    from genxr.xr_runtime.session import make_source

    assert make_source(load_config(session={"source": "openxr"}), MONOTONIC).prefer_headless is False
    asked = make_source(load_config(session={"source": "openxr", "openxr_headless": True}), MONOTONIC)
    assert asked.prefer_headless is True


NO_EGL_DISPLAY = textwrap.dedent("""
    import json
    from genxr.platform.clock import ManualClock
    from genxr.xr_runtime.openxr.source import OpenXRSource, OpenXRUnavailableError
    from tests.helpers.fake_openxr import FakeHeadsetSource, TrackingRuntime

    class RealEGL(FakeHeadsetSource):
        _gl_binding = OpenXRSource._gl_binding  # pyopenxr's EGL context, for real

    runtime = TrackingRuntime(ManualClock(start_ns=10**10))
    try:
        with RealEGL(runtime, clock=runtime.clock):
            print(json.dumps({"opened": True}))
    except OpenXRUnavailableError as err:
        print(json.dumps({"opened": False, "message": str(err), "live": runtime.live()}))
""")


def test_no_egl_display_is_a_clear_error_saying_to_set_egl_platform():
    env = {key: value for key, value in os.environ.items()
           if key not in ("DISPLAY", "WAYLAND_DISPLAY", "EGL_PLATFORM")}
    env["PYOPENGL_PLATFORM"] = "egl"
    done = subprocess.run([sys.executable, "-c", NO_EGL_DISPLAY], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["opened"]:
        pytest.skip("EGL has a default display on this machine")
    assert "EGL_PLATFORM=surfaceless" in result["message"] and "session.openxr_headless" in result["message"]
    assert "Traceback" not in result["message"] and "\n" not in result["message"]
    assert result["live"] == [], "the instance was destroyed"


# -- 8. a 3DoF or simulated HMD; a system without hand tracking ------------------------------------


def test_a_head_with_tracked_orientation_and_valid_position_is_tracked():
    location = xr.SpaceLocation(pose=xr.Posef(orientation=xr.Quaternionf(0.0, 0.0, 0.0, 1.0),
                                              position=xr.Vector3f(0.0, 1.6, 0.0)))
    location.location_flags = HEAD_3DOF
    assert head_from_xr(location)[1], "3DoF: orientation tracked, position modelled"
    location.location_flags = int(LocationFlags.ORIENTATION_VALID | LocationFlags.POSITION_VALID
                                  | LocationFlags.POSITION_TRACKED)
    assert not head_from_xr(location)[1], "the orientation only valid (dead reckoning) is not tracked"
    location.location_flags = int(LocationFlags.ORIENTATION_VALID | LocationFlags.ORIENTATION_TRACKED)
    assert not head_from_xr(location)[1], "no valid position: no head pose"


def test_a_3dof_headset_is_never_counted_as_tracking_lost(clock):
    runtime = TrackingRuntime(clock, head_flags=HEAD_3DOF)
    with FakeHeadsetSource(runtime, clock=clock) as source:
        got = [frame for _, frame in frames(source, 6)]
    assert all(frame.head_tracked for frame in got)
    assert source.head_position_untracked_frames == 6


def test_a_system_without_hand_tracking_gets_no_hand_trackers(clock):
    runtime = TrackingRuntime(clock, hand_tracking=False)  # XR_EXT_hand_tracking offered, no hand device
    with FakeHeadsetSource(runtime, clock=clock) as source:
        assert not source.capabilities.hand_tracking
        _, frame = frames(source, 1)[0]
    assert frame.left_hand is None and frame.right_hand is None and runtime.trackers == []


def test_a_raw_call_that_fails_is_raised_not_ignored(clock):
    runtime = TrackingRuntime(clock)
    with FakeHeadsetSource(runtime, clock=clock) as source:
        timing = source.wait_frame()
        runtime.fail["xrLocateHandJointsEXT"] = xr.ValidationFailureError()
        with pytest.raises(xr.ValidationFailureError, match="xrLocateHandJointsEXT"):
            source.read(timing)
    assert runtime.live() == []


# -- doctor ----------------------------------------------------------------------------------------


def test_doctor_probe_finds_the_headset_and_its_hand_tracking(clock):
    from genxr.platform.doctor import openxr_check, openxr_probe

    runtime = TrackingRuntime(clock)
    probe = openxr_probe(XrFunctions(runtime))
    assert probe["system"] and probe["hand_tracking"] and probe["system_name"] == "genxr fake headset"
    check = openxr_check(probe, "XR_RUNTIME_JSON unset")
    assert check.ok and "hand tracking supported" in check.detail
    assert runtime.live() == [], "the probe's instance is destroyed"


@pytest.mark.parametrize("function, error", [
    ("get_system", xr.FormFactorUnavailableError()), ("create_instance", xr.RuntimeFailureError()),
])
def test_doctor_is_not_ok_without_a_headset_or_runtime_service(clock, function, error):
    from genxr.platform.doctor import openxr_check, openxr_probe

    runtime = TrackingRuntime(clock)
    runtime.fail[function] = error
    check = openxr_check(openxr_probe(XrFunctions(runtime)), "XR_RUNTIME_JSON=/x.json")
    assert not check.ok and type(error).__name__ in check.detail
    assert "monado-service" in check.hint and "simulated user" in check.hint
    assert runtime.live() == []


def test_doctor_does_not_say_hand_tracking_when_the_system_has_none(clock):
    from genxr.platform.doctor import openxr_check, openxr_probe

    check = openxr_check(openxr_probe(XrFunctions(TrackingRuntime(clock, hand_tracking=False))), "unset")
    assert check.ok and "NOT supported by the system" in check.detail and "head-only" in check.hint
    extensions = tuple(e for e in ALL_EXTENSIONS if e != "XR_EXT_hand_tracking")
    check = openxr_check(openxr_probe(XrFunctions(TrackingRuntime(clock, extensions=extensions))), "unset")
    assert check.ok and "hand tracking NOT offered" in check.detail


# -- 9. a display the headset cannot take ----------------------------------------------------------


def test_a_display_above_the_runtimes_maximum_stops_the_session_with_one_clear_line(tmp_path):
    from genxr.platform.config import load_config
    from genxr.xr_runtime.session import run_session

    runtime = TrackingRuntime(MONOTONIC, max_image_size=(1024, 1024))
    config = load_config("quick", session={"avatar": False}, display={"width": 2048, "height": 256})
    with pytest.raises(OpenXRUnavailableError) as excinfo:
        run_session(config, tmp_path / "big", max_frames=3, source=FakeHeadsetSource(runtime, clock=MONOTONIC),
                    world=("still", lambda request: None))
    message = str(excinfo.value)
    assert "2048x256" in message and "1024x1024" in message and "display.width" in message and "\n" not in message
    assert runtime.live() == [], "the session was left and destroyed"


def test_demo_with_a_display_the_headset_cannot_take_exits_2_with_the_message(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from genxr.cli.app import app
    from genxr.xr_runtime import session as session_module

    runtime = TrackingRuntime(MONOTONIC, max_image_size=(128, 128))
    monkeypatch.setattr(session_module, "make_source", lambda config, clock: FakeHeadsetSource(runtime, clock=clock))
    monkeypatch.setenv("GENXR_DISPLAY__WIDTH", "512")
    result = CliRunner().invoke(app, ["demo", "--source", "openxr", "--seconds", "1", "--out", str(tmp_path / "xr")])
    said = " ".join(result.stderr.split())
    assert result.exit_code == 2, result.output
    assert "exceeds the runtime's maximum 128x128" in said and "Traceback" not in said
    assert runtime.live() == []


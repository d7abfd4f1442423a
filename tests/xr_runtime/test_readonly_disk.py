"""A read-only disk (a real read-only tmpfs mount: root sees no permission errors, so chmod
cannot stand in) stops a session before it starts, naming the folder; a disk that turns
read-only between sessions keeps what was already recorded readable."""

from __future__ import annotations

import subprocess

import pytest

from genxr.platform.config import load_config
from genxr.xr_runtime.recording.reader import read_recording
from genxr.xr_runtime.recording.writer import Recorder
from genxr.xr_runtime.session import SessionError, run_session
from tests.helpers.tracking import paced_frames


@pytest.fixture
def disk(tmp_path):
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")

    def remount(mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(mount_point)], check=True)

    yield mount_point, remount
    subprocess.run(["umount", str(mount_point)], check=True)


def test_a_session_on_a_read_only_disk_fails_before_it_starts(disk):
    mount_point, remount = disk
    remount("ro")
    with pytest.raises(SessionError, match=r"cannot write the session folder .*Read-only file system"):
        run_session(load_config("quick"), mount_point / "session")


def test_a_disk_turning_read_only_keeps_earlier_recordings_and_refuses_new_ones(disk):
    mount_point, remount = disk
    recorded = paced_frames(12)
    with Recorder(mount_point / "first") as recorder:
        for frame in recorded:
            recorder.add_frame(frame)
    remount("ro")
    with pytest.raises(OSError, match="cannot write the recording folder"):
        with Recorder(mount_point / "second"):
            pass
    again = read_recording(mount_point / "first")
    assert again.complete and [f.frame_id for f in again.frames] == [f.frame_id for f in recorded]

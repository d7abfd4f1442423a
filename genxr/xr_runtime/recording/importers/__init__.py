"""``genxr import``: recorded human motion from other tools into a recording ``--source replay`` plays.

Each importer reads one format, checks it (a :class:`TrackingImportError` names the file, the
line or row, the field and the value), converts it into genxr's frames and units (the OpenXR
reference space: metres, +Y up, -Z forward; integer nanoseconds; the 26 joints of
``XR_EXT_hand_tracking``) and writes a recording folder with the session's recorder - frames
and the events a session writes - into a hidden folder it renames into place only when
complete, so a failed import leaves nothing behind. The result plays with
``genxr demo --source replay --replay DIR`` (config ``session.replay_path``) and passes
``genxr study verify``.

* ``study-csv`` (:mod:`.study_csv`): the ``tracking.csv`` / ``events.csv`` that
  ``genxr study export`` writes, imported exactly.
* ``hot3d`` (:mod:`.hot3d`): a HOT3D sequence (Aria or Quest 3 headset trajectory and UmeTrack
  hand poses), hands through the sequence's UmeTrack hand model (:mod:`.umetrack`).
"""

from __future__ import annotations

from genxr.xr_runtime.recording.importers.common import ImportReport, TrackingImportError
from genxr.xr_runtime.recording.importers.hot3d import import_hot3d
from genxr.xr_runtime.recording.importers.study_csv import import_study_csv

FORMATS = {"study-csv": import_study_csv, "hot3d": import_hot3d}
"""Each format's importer: ``importer(source, out, on_progress=...) -> ImportReport``."""

__all__ = ["FORMATS", "ImportReport", "TrackingImportError", "import_hot3d", "import_study_csv"]

"""A disk that fills up while a participant's step is logged: a clear error, the records
already there stay intact, and the torn record is handled on the next append."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from genxr.evaluation.study.store import LOG_FILE, create_study, open_study

PROTOCOL = Path(__file__).parents[3] / "genxr" / "evaluation" / "study" / "protocols" / "synthetic.yaml"

APPEND_ON_A_FULL_DISK = textwrap.dedent("""
    import resource, signal, sys
    from genxr.evaluation.study.store import StudyError, open_study
    study = open_study(sys.argv[1])
    size = int(sys.argv[2])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 10, size + 10))  # the disk fills 10 bytes on
    try:
        study.append("P01", {"type": "trial", "step": "fast_world/carry/1", "success": True})
    except StudyError as err:
        print(err)
        sys.exit(3)
""")


def test_a_full_disk_while_logging_fails_clearly_and_keeps_earlier_records(tmp_path):
    study = open_study(create_study(PROTOCOL, tmp_path / "study"))
    study.enrol("P01")
    study.append("P01", {"type": "trial", "step": "fast_world/press/1", "success": True})
    log = study.participant_folder("P01") / LOG_FILE
    before = log.read_bytes()
    child = subprocess.run([sys.executable, "-c", APPEND_ON_A_FULL_DISK, str(study.folder), str(len(before))],
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == 3, child.stderr
    assert "cannot append to" in child.stdout and "records already there are intact" in child.stdout
    assert log.read_bytes().startswith(before)
    records, notes = study.log("P01")
    assert [r["step"] for r in records] == ["fast_world/press/1"] and "torn last line" in notes[0]
    assert [s.key for s in study.pending("P01")][0] == "fast_world/carry/1", "the step runs again on resume"
    study.append("P01", {"type": "trial", "step": "fast_world/carry/1", "success": True})
    assert [r["step"] for r in study.log("P01")[0] if r["type"] == "trial"] == ["fast_world/press/1",
                                                                                "fast_world/carry/1"]

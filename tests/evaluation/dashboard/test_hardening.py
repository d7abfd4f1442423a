"""The dashboard against hostile or broken input: requests naming another host (DNS
rebinding) are refused, a session file that cannot be read or parsed is a JSON error naming
the file, and /openapi.json describes the routes."""

from __future__ import annotations

import json
import pathlib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from genxr.evaluation.dashboard.server import allowed_hosts, create_app
from tests.helpers.dashboard import RunningServer


def session_folder(root: Path, name: str = "session") -> Path:
    """A small finished session: two spans in trace.json and a metrics.json."""
    folder = root / name
    folder.mkdir()
    spans = [{"name": "read tracking", "cat": "tracking", "ph": "X", "ts": 1000 + 11111 * i, "dur": 300,
              "pid": 1, "tid": 1, "args": {"frame_id": i}} for i in range(2)]
    (folder / "trace.json").write_text(json.dumps({"traceEvents": spans, "displayTimeUnit": "ms"}))
    (folder / "metrics.json").write_text(json.dumps({"frames": 2, "world_model_hz": 30.0}))
    return folder


def get(url: str, host: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={} if host is None else {"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_requests_naming_another_host_are_refused(tmp_path):
    with RunningServer(create_app([session_folder(tmp_path)])) as url:
        port = url.rsplit(":", 1)[1]
        for host in ("localhost", f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST:1"):
            status, body = get(f"{url}/api/sessions", host)
            assert status == 200 and json.loads(body)["sessions"][0]["name"] == "session", host
        for host in (f"attacker.example:{port}", "attacker.example", "localhost.attacker.example", "127.0.0.2",
                     "192.0.2.7", "[::1", "a:b:c"):
            status, body = get(f"{url}/api/sessions/0/trace.json", host)
            assert status == 400, host
            detail = json.loads(body)["detail"]
            assert "is not allowed" in detail and "DNS rebinding" in detail and "--allow-remote" in detail, host


def test_allow_remote_adds_the_configured_host_and_only_that(tmp_path):
    names, any_ip = allowed_hosts()
    assert names == {"localhost", "127.0.0.1", "::1"} and not any_ip
    assert allowed_hosts("labpc.example", allow_remote=False) == (names, False), "refused by check_bind anyway"
    named = create_app([session_folder(tmp_path)], host="LabPC.example", allow_remote=True)
    with RunningServer(named) as url:
        assert get(f"{url}/api/sessions", "labpc.example:8050")[0] == 200
        assert get(f"{url}/api/sessions", "localhost")[0] == 200
        assert get(f"{url}/api/sessions", "attacker.example")[0] == 400
        assert get(f"{url}/api/sessions", "192.0.2.7:8050")[0] == 400
    everywhere = create_app([tmp_path / "session"], host="0.0.0.0", allow_remote=True)
    with RunningServer(everywhere) as url:  # still served on 127.0.0.1: only the Host header differs
        assert get(f"{url}/api/sessions", "192.0.2.7:8050")[0] == 200, "an IP literal cannot be rebound"
        assert get(f"{url}/api/sessions", "[2001:db8::7]:8050")[0] == 200
        assert get(f"{url}/api/sessions", "attacker.example")[0] == 400, "names other than this machine's are not"


def error_of(url: str) -> dict:
    status, body = get(url)
    assert status == 500, body
    error = json.loads(body)
    assert set(error) == {"detail", "file"}
    return error


@pytest.mark.parametrize(("content", "problem", "download_fails"), [
    (b'{"traceEvents": [{"ph": "X", "na', "is not valid JSON", True),
    (b"\xff\xfe\x00garbage", "is not UTF-8 text", True),
    # valid JSON: the download hands it over as it is, the dashboard's views cannot use it
    (b'{"events": []}', "is not a Chrome trace (no traceEvents list)", False),
    (b'{"traceEvents": [{"ph": "X", "name": "read tracking", "ts": 5}]}', "has a span without a numeric ts and dur",
     False),
])
def test_a_corrupt_trace_is_a_json_error_naming_the_file(tmp_path, content, problem, download_fails):
    folder = session_folder(tmp_path)
    (folder / "trace.json").write_bytes(content)
    with RunningServer(create_app([folder])) as url:
        if not download_fails:
            assert get(f"{url}/api/sessions/0/trace.json")[0] == 200
        for route in ("/api/sessions/0", "/api/sessions/0/trace.json")[:2 if download_fails else 1]:
            error = error_of(url + route)
            assert error["file"] == str(folder / "trace.json"), route
            assert error["detail"].startswith(f"{folder / 'trace.json'}: {problem}"), (route, error)
        status, body = get(f"{url}/api/sessions/0/live")
        assert status == 200
        event, data = body.decode().strip().split("\n")
        assert event == "event: failed" and json.loads(data.removeprefix("data: ")) == error, body


def test_an_unreadable_trace_or_corrupt_metrics_is_a_json_error_naming_the_file(tmp_path, monkeypatch):
    folder = session_folder(tmp_path)
    trace = folder / "trace.json"
    read_bytes, read_text = pathlib.Path.read_bytes, pathlib.Path.read_text

    def refuse(original):
        def read(self, *args, **kwargs):
            if self == trace:  # as the permission bits would for another user (tests may run as root)
                raise PermissionError(13, "Permission denied", str(self))
            return original(self, *args, **kwargs)
        return read

    monkeypatch.setattr(pathlib.Path, "read_bytes", refuse(read_bytes))
    monkeypatch.setattr(pathlib.Path, "read_text", refuse(read_text))
    with RunningServer(create_app([folder])) as url:
        error = error_of(f"{url}/api/sessions/0")
        assert error == {"detail": f"{trace}: cannot be read (Permission denied)", "file": str(trace)}
        assert error_of(f"{url}/api/sessions/0/trace.json") == error
    monkeypatch.undo()
    (folder / "metrics.json").write_text("[1, 2")
    with RunningServer(create_app([folder])) as url:
        error = error_of(f"{url}/api/sessions/0")
        assert error["file"] == str(folder / "metrics.json") and "is not valid JSON" in error["detail"]
        status, body = get(f"{url}/api/sessions/0/trace.json")
        assert status == 200 and len(json.loads(body)["traceEvents"]) == 2, "the trace itself is fine"


def test_openapi_describes_the_routes_and_the_cdn_docs_pages_stay_off(tmp_path):
    with RunningServer(create_app([session_folder(tmp_path)])) as url:
        status, body = get(f"{url}/openapi.json")
        assert status == 200, body[:500]
        schema = json.loads(body)
        assert schema["info"]["title"] == "genxr latency dashboard"
        assert set(schema["paths"]) == {"/", "/plotly.min.js", "/api/sessions", "/api/sessions/{index}",
                                        "/api/sessions/{index}/trace.json", "/api/sessions/{index}/live"}
        assert get(f"{url}/docs")[0] == 404 and get(f"{url}/redoc")[0] == 404
        status, body = get(f"{url}/api/sessions/0")
        assert status == 200 and json.loads(body)["stages"]["read tracking"]["count"] == 2

"""``genxr dashboard``: a FastAPI app serving the latency dashboard of session folders.

Routes (JSON unless noted):

* ``/`` - the page (``page.html``), ``/plotly.min.js`` - Plotly.js from the installed
  ``plotly`` Python package (no CDN, works offline);
* ``/api/sessions`` - the sessions given on the command line, ``/api/sessions/{i}`` - one
  session's data (:func:`genxr.evaluation.dashboard.data.load_session`);
* ``/api/sessions/{i}/trace.json`` - download of the Perfetto / chrome://tracing trace;
* ``/api/sessions/{i}/live`` - server-sent events: the session's data every
  ``poll_s`` seconds while it runs (with ``--live``), ending with an ``event: finished``
  once its ``trace.json`` exists.

It binds to loopback by default; :func:`check_bind` refuses any other address unless
``--allow-remote`` is given, because the dashboard serves session data without
authentication. It also answers only requests whose ``Host`` header names it
(:func:`allowed_hosts`: localhost, 127.0.0.1 or [::1], any port; with ``--allow-remote`` the
configured host too), so a web page cannot read traces through DNS rebinding (a name of
the attacker's that turns into 127.0.0.1 after the page has loaded). A session file that
cannot be read or parsed is a 500 with JSON ``{"detail": ..., "file": ...}`` naming the
file and what is wrong with it (an ``event: failed`` with the same data on the live
stream). ``/openapi.json`` describes the routes; the Swagger and ReDoc pages are off (they
load their scripts from a CDN).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from genxr.evaluation.dashboard.data import is_session_folder, load_session, perfetto_trace

PAGE = Path(__file__).with_name("page.html")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
"""``Host`` header names (any port) the dashboard answers by default."""
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


class DashboardError(ValueError):
    """A dashboard that cannot start as asked; the message says why and what to do."""


def is_loopback(host: str) -> bool:
    """True when every address ``host`` resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def check_bind(host: str, allow_remote: bool) -> None:
    """Raises :class:`DashboardError` for a non-loopback ``host`` without ``allow_remote``."""
    if not is_loopback(host) and not allow_remote:
        raise DashboardError(
            f"refusing to bind the dashboard to {host!r}: it is not a loopback address, and the dashboard serves "
            "session traces and recordings without any authentication, so anyone who can reach that address "
            "could read them. Keep --host 127.0.0.1 (use an SSH tunnel to view it from elsewhere), or pass "
            "--allow-remote if this network is trusted.")


def allowed_hosts(host: str = "127.0.0.1", allow_remote: bool = False) -> tuple[frozenset[str], bool]:
    """The ``Host`` header names the dashboard bound to ``host`` answers (any port, IPv6 without
    brackets, lower case), and whether it also answers any IP address literal.

    Loopback names always; with ``allow_remote`` also ``host``, and where ``host`` is every
    interface (0.0.0.0, ::) this machine's name and any IP literal - a literal address cannot
    be rebound, DNS rebinding needs a name the attacker controls."""
    names = set(LOOPBACK_HOSTS)
    any_ip = False
    if allow_remote:
        bare = host.strip("[]").lower()
        if bare in WILDCARD_HOSTS:
            names.add(socket.gethostname().lower())
            any_ip = True
        else:
            names.add(bare)
    return frozenset(names), any_ip


def host_of(header: str) -> str | None:
    """The host name of a ``Host`` header (no port, no brackets, lower case); None if malformed."""
    if not header or any(c in header for c in "/?#@\\ \t"):
        return None
    try:
        split = urlsplit(f"//{header}")
        split.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        return None
    return split.hostname


class HostCheck:
    """ASGI middleware refusing (400, JSON) requests whose ``Host`` is not one of
    :func:`allowed_hosts`. Starlette's TrustedHostMiddleware matches names only; this one
    also accepts any IP literal when the dashboard is bound to every interface."""

    def __init__(self, app: Callable, names: frozenset[str], any_ip: bool = False) -> None:
        self.app, self.names, self.any_ip = app, names, any_ip

    def allows(self, host: str | None) -> bool:
        if host is None:
            return False
        if host in self.names:
            return True
        if not self.any_ip:
            return False
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return False
        return True

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"host"), None)
        if self.allows(host_of(header) if header else None):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        from starlette.responses import JSONResponse

        allowed = ", ".join(sorted(self.names)) + (" or any IP address" if self.any_ip else "")
        await JSONResponse(status_code=400, content={
            "detail": f"Host header {header!r} is not allowed: the dashboard answers requests for {allowed} "
                      "(any port) only, so pages of other sites cannot read it through DNS rebinding; "
                      "bind it elsewhere with --host and --allow-remote"})(scope, receive, send)


class SessionFileError(DashboardError):
    """A file of a session folder that cannot be read or parsed; ``path`` names it."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


def _json_problem(path: Path, shape: Callable[[Any], str | None]) -> str | None:
    """What is wrong with JSON file ``path`` (None if it reads, parses and has the right shape)."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    except UnicodeDecodeError as err:
        return f"is not UTF-8 text (byte {err.start})"
    except json.JSONDecodeError as err:
        return f"is not valid JSON ({err.msg} at line {err.lineno} column {err.colno}; torn or overwritten?)"
    return shape(data)


def _trace_shape(data: Any) -> str | None:
    if not isinstance(data, dict) or not isinstance(data.get("traceEvents"), list):
        return "is not a Chrome trace (no traceEvents list)"
    for event in data["traceEvents"]:
        if not isinstance(event, dict):
            return f"has a trace event that is not an object: {str(event)[:80]}"
        if event.get("ph") == "X" and not all(isinstance(event.get(k), int | float) for k in ("ts", "dur")):
            return f"has a span without a numeric ts and dur: {json.dumps(event)[:120]}"
    return None


def _object_shape(data: Any) -> str | None:
    return None if isinstance(data, dict) else f"is not a JSON object but {type(data).__name__}"


def diagnose(folder: Path, err: Exception) -> SessionFileError:
    """The session file behind ``err`` (raised reading ``folder``) and what is wrong with it."""
    for name, shape in (("trace.json", _trace_shape), ("metrics.json", _object_shape)):
        path = folder / name
        if path.exists():
            problem = _json_problem(path, shape)
            if problem is not None:
                return SessionFileError(path, problem)
    return SessionFileError(folder, f"cannot be read as a session: {type(err).__name__}: {err}")


def read_session_file(folder: Path, read: Callable[[Path], Any]) -> Any:
    """``read(folder)``, or :class:`SessionFileError` naming the file that broke it."""
    try:
        return read(folder)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        raise diagnose(folder, err) from err


def plotly_js() -> Path:
    """plotly.min.js shipped inside the plotly Python package."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise DashboardError(f"plotly.min.js is missing from the plotly package ({path}); reinstall plotly")
    return path


def create_app(sessions: list[Path], *, live: bool = False, poll_s: float = 0.5, host: str = "127.0.0.1",
               allow_remote: bool = False):
    """The FastAPI app for ``sessions`` (session folders), answering the ``Host`` names of
    :func:`allowed_hosts` for ``host`` and ``allow_remote``."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse

    folders = [Path(s) for s in sessions]
    for folder in folders:
        if not is_session_folder(folder):
            raise DashboardError(f"{folder} is not a genxr session folder (no trace.json, spans.jsonl, metrics.json "
                                 "or recording/)")
    script = plotly_js()
    app = FastAPI(title="genxr latency dashboard", docs_url=None, redoc_url=None)
    app.add_middleware(HostCheck, *allowed_hosts(host, allow_remote))

    @app.exception_handler(SessionFileError)
    async def session_file_error(request: Request, err: SessionFileError) -> JSONResponse:
        return JSONResponse(status_code=500, content={"detail": str(err), "file": str(err.path)})

    def folder_of(index: int) -> Path:
        if not 0 <= index < len(folders):
            raise HTTPException(404, f"no session {index}; there are {len(folders)}")
        return folders[index]

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text()

    # response_model=None: these return responses, and their annotations (strings, the classes
    # imported here) would otherwise send FastAPI looking for a response model, failing /openapi.json
    @app.get("/plotly.min.js", response_model=None)
    def plotly_script() -> FileResponse:
        return FileResponse(script, media_type="application/javascript")

    @app.get("/api/sessions")
    def list_sessions() -> dict[str, Any]:
        return {"live": live, "sessions": [{"id": i, "name": f.name, "path": str(f)} for i, f in enumerate(folders)]}

    @app.get("/api/sessions/{index}", response_model=None)
    def session(index: int) -> JSONResponse:
        return JSONResponse(read_session_file(folder_of(index), load_session))

    @app.get("/api/sessions/{index}/trace.json", response_model=None)
    def trace(index: int) -> JSONResponse:
        folder = folder_of(index)
        return JSONResponse(read_session_file(folder, perfetto_trace),
                            headers={"Content-Disposition": f'attachment; filename="{folder.name}-trace.json"'})

    @app.get("/api/sessions/{index}/live", response_model=None)
    async def follow(index: int) -> StreamingResponse:
        folder = folder_of(index)

        async def events():
            while True:
                try:
                    data = await asyncio.to_thread(read_session_file, folder, load_session)
                except SessionFileError as err:
                    yield f"event: failed\ndata: {json.dumps({'detail': str(err), 'file': str(err.path)})}\n\n"
                    return
                yield f"data: {json.dumps(data)}\n\n"
                if data["finished"] or not live:
                    yield "event: finished\ndata: {}\n\n"
                    return
                await asyncio.sleep(poll_s)

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


def serve(sessions: list[Path], *, host: str = "127.0.0.1", port: int = 8050, live: bool = False,
          allow_remote: bool = False, console=None) -> None:
    """Runs the dashboard until Ctrl-C."""
    import uvicorn

    check_bind(host, allow_remote)
    if not sessions:
        raise DashboardError("give at least one session folder, e.g. genxr dashboard runs/demo")
    app = create_app(sessions, live=live, host=host, allow_remote=allow_remote)
    if console is not None:
        console.print(f"genxr dashboard on http://{host}:{port}/ ({len(sessions)} sessions"
                      f"{', following live' if live else ''}); Ctrl-C stops it")
    uvicorn.run(app, host=host, port=port, log_level="warning")

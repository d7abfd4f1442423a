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
authentication.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from pathlib import Path
from typing import Any

from genxr.evaluation.dashboard.data import is_session_folder, load_session, perfetto_trace

PAGE = Path(__file__).with_name("page.html")


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


def plotly_js() -> Path:
    """plotly.min.js shipped inside the plotly Python package."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise DashboardError(f"plotly.min.js is missing from the plotly package ({path}); reinstall plotly")
    return path


def create_app(sessions: list[Path], *, live: bool = False, poll_s: float = 0.5):
    """The FastAPI app for ``sessions`` (session folders)."""
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse

    folders = [Path(s) for s in sessions]
    for folder in folders:
        if not is_session_folder(folder):
            raise DashboardError(f"{folder} is not a genxr session folder (no trace.json, spans.jsonl, metrics.json "
                                 "or recording/)")
    script = plotly_js()
    app = FastAPI(title="genxr latency dashboard", docs_url=None, redoc_url=None)

    def folder_of(index: int) -> Path:
        if not 0 <= index < len(folders):
            raise HTTPException(404, f"no session {index}; there are {len(folders)}")
        return folders[index]

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text()

    @app.get("/plotly.min.js")
    def plotly_script() -> FileResponse:
        return FileResponse(script, media_type="application/javascript")

    @app.get("/api/sessions")
    def list_sessions() -> dict[str, Any]:
        return {"live": live, "sessions": [{"id": i, "name": f.name, "path": str(f)} for i, f in enumerate(folders)]}

    @app.get("/api/sessions/{index}")
    def session(index: int) -> JSONResponse:
        return JSONResponse(load_session(folder_of(index)))

    @app.get("/api/sessions/{index}/trace.json")
    def trace(index: int) -> JSONResponse:
        folder = folder_of(index)
        return JSONResponse(perfetto_trace(folder),
                            headers={"Content-Disposition": f'attachment; filename="{folder.name}-trace.json"'})

    @app.get("/api/sessions/{index}/live")
    async def follow(index: int) -> StreamingResponse:
        folder = folder_of(index)

        async def events():
            while True:
                data = await asyncio.to_thread(load_session, folder)
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
    app = create_app(sessions, live=live)
    if console is not None:
        console.print(f"genxr dashboard on http://{host}:{port}/ ({len(sessions)} sessions"
                      f"{', following live' if live else ''}); Ctrl-C stops it")
    uvicorn.run(app, host=host, port=port, log_level="warning")

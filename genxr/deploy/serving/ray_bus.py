"""The bus over Ray Serve: the same :class:`~genxr.platform.bus.Bus` interface, requests to
model services go to DeploymentHandles.

Streams (topics) stay in the frame loop's process - they connect the loop's own stages -
so ``publish``/``subscribe`` are the in-process bus's. ``attach(service, handle, params)``
routes a service to a deployment, opens this session on it and returns the replica's
description of what serves it (``attached``); ``request_async`` sends the
message (Ray pickles it) and returns a :class:`PendingResponse` at once. Replies are
type-checked against the service; failures keep their types:

* the deadline passes -> :class:`RequestTimeoutError` (the Serve request is cancelled);
* the replica raised -> :class:`ServiceFailedError` with the cause;
* the replica died or none is reachable -> :class:`ServiceUnavailableError`;
* the replica no longer holds this session (it restarted, or evicted it) -> the bus
  re-opens the session with the parameters it was opened with, retries once, and reports
  a ``model_ready`` event ("state re-created") through ``on_event``.

Hand-written over ``ray.serve.handle`` because Serve has no notion of a caller-side deadline
with typed errors, nor of session state that survives a replica restart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from genxr.deploy.serving.sessions import UnknownSessionError
from genxr.platform.bus import (
    Bus,
    InProcessBus,
    Mailbox,
    PendingResponse,
    Service,
    ServiceFailedError,
    ServiceUnavailableError,
    Topic,
    check_type,
    frame_ids_of,
)
from genxr.platform.clock import MONOTONIC, Clock
from genxr.platform.messages import Message
from genxr.platform.tracing import Tracer


class RayBus(Bus):
    """See the module docstring. ``session_id`` names this session on every replica."""

    def __init__(self, session_id: str, *, clock: Clock = MONOTONIC, tracer: Tracer | None = None,
                 workers: int = 4, on_event: Callable[[str, str], None] | None = None) -> None:
        self.session_id = session_id
        self.clock = clock
        self.tracer = tracer
        self.on_event = on_event
        self._local = InProcessBus(clock=clock, tracer=tracer, workers=workers)
        self.stats = self._local.stats
        self._handles: dict[str, tuple[Service, Any, dict[str, Any]]] = {}
        self.attached: dict[str, dict[str, Any]] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genxr-raybus")
        self._lock = threading.Lock()
        self._closed = False

    # streams stay local ------------------------------------------------------------------------------

    def publish(self, topic: Topic, message: Message) -> None:
        self._local.publish(topic, message)

    def subscribe(self, topic: Topic) -> Mailbox:
        return self._local.subscribe(topic)

    def serve(self, service: Service, handler: Callable[[Any], Any]) -> None:
        """Serves ``service`` in this process, replacing any earlier handler - an attached
        deployment too (this session's state on its replica is closed)."""
        self._detach(service.name)
        self._local.serve(service, handler)

    def unserve(self, service: Service) -> None:
        self._local.unserve(service)
        self._detach(service.name)

    def _detach(self, name: str) -> None:
        """Stops routing ``name`` to its deployment and closes this session there (best effort:
        the replica may be gone, and its state with it)."""
        with self._lock:
            deployed = self._handles.pop(name, None)
            self.attached.pop(name, None)
        if deployed is not None:
            _close_remote_session(deployed[1], self.session_id)

    # deployed services -------------------------------------------------------------------------------

    def attach(self, service: Service, handle: Any, params: dict[str, Any], timeout_s: float = 120.0
               ) -> dict[str, Any]:
        """Routes ``service`` to the deployment behind ``handle`` and opens this session there;
        returns what the replica says serves it (model, engine and providers, rate), also kept
        in :attr:`attached` under the service's name."""
        try:
            description = handle.open_session.remote(self.session_id, params).result(timeout_s=timeout_s)
        except Exception as err:
            raise ServiceUnavailableError(f"cannot open session {self.session_id!r} on {service.name!r}: "
                                          f"{type(err).__name__}: {err}") from err
        with self._lock:
            self._handles[service.name] = (service, handle, dict(params))
            self.attached[service.name] = dict(description or {})
        return self.attached[service.name]

    def _call(self, service: Service, handle: Any, params: dict[str, Any], request: Message, timeout_s: float):
        try:
            response = self._remote(handle, request, timeout_s)
        except UnknownSessionError:
            description = handle.open_session.remote(self.session_id, params).result(timeout_s=timeout_s)
            with self._lock:
                self.attached[service.name] = dict(description or {})
            if self.on_event is not None:
                self.on_event("model_ready", f"{service.name}: session state re-created on a new replica")
            response = self._remote(handle, request, timeout_s)
        check_type(response, service.response_type, f"response of service {service.name!r}")
        return response

    def _remote(self, handle: Any, request: Message, timeout_s: float) -> Message:
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayTaskError

        response = handle.remote(request)
        try:
            return response.result(timeout_s=timeout_s)
        except TimeoutError:
            response.cancel()
            raise
        except UnknownSessionError:
            raise
        except (ActorDiedError, ActorUnavailableError) as err:
            raise ServiceUnavailableError(f"the replica died: {type(err).__name__}") from err
        except RayTaskError as err:
            raise ServiceFailedError(f"replica raised {err.cause!r}" if hasattr(err, "cause") else str(err)) from err

    def request_async(self, service: Service, request: Message, timeout_s: float) -> PendingResponse:
        self._check_request(service, request, timeout_s)
        with self._lock:
            deployed = self._handles.get(service.name)
        if deployed is None:
            return self._local.request_async(service, request, timeout_s)
        _, handle, params = deployed
        self.stats.requests += 1
        frame_id, sources = frame_ids_of(request)

        def call():
            try:
                if self.tracer is None:
                    return self._call(service, handle, params, request, timeout_s)
                with self.tracer.span(f"serve {service.name}", track=service.name, frame_id=frame_id,
                                      source_frame_ids=sources, backend="ray"):
                    return self._call(service, handle, params, request, timeout_s)
            except (ServiceUnavailableError, ServiceFailedError):
                self._count("failed_requests")
                raise

        future: Future = self._pool.submit(call)
        return PendingResponse(service, future, timeout_s, self.clock,
                               on_timeout=lambda: self._count("timed_out_requests"),
                               on_late=lambda: self._count("late_responses"))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            deployed = list(self._handles.values())
            self._handles.clear()
        for _, handle, _ in deployed:
            _close_remote_session(handle, self.session_id)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._local.close()


CLOSE_SESSION_TIMEOUT_S = 5.0
"""How long closing a session on a replica may take before it is left to the replica's idle eviction."""


def _close_remote_session(handle: Any, session_id: str) -> None:
    try:
        handle.close_session.remote(session_id).result(timeout_s=CLOSE_SESSION_TIMEOUT_S)
    except Exception:  # the replica may be gone; its state goes with it (or is evicted when idle)
        pass

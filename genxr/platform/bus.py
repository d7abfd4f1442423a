"""The message bus: typed topics with latest-value mailboxes, and request/response with deadlines.

Two kinds of traffic cross it:

* **Streams** (tracking frames, generated frames, avatar motion) go over a :class:`Topic`.
  Each subscriber has a :class:`Mailbox` that holds only the newest message: publishing
  never blocks, a slow consumer simply misses intermediate messages, and every message
  overwritten before it was taken is counted. Real-time consumers want the newest state,
  not a backlog.
* **Requests** (ask the world model for a chunk, the avatar for motion) go to a
  :class:`Service`. :meth:`Bus.request_async` returns at once with a
  :class:`PendingResponse`; the frame loop polls it and never waits. :meth:`Bus.request`
  waits up to a deadline. Failures are typed: :class:`RequestTimeoutError`,
  :class:`ServiceUnavailableError` (no replica), :class:`ServiceFailedError` (the handler
  raised; the cause is chained).

:class:`Bus` is the interface; :class:`InProcessBus` runs handlers on a thread pool in
this process; the Ray Serve backend (``genxr.deploy``) implements the same interface over
DeploymentHandles. Every message is type-checked against its topic or service, and every
hop is a span in the bus's :class:`~genxr.platform.tracing.Tracer` when it has one.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from genxr.platform.clock import MONOTONIC, Clock
from genxr.platform.messages import Message
from genxr.platform.tracing import Tracer
from genxr.platform.units import MS_PER_S, NS_PER_S

M = TypeVar("M", bound=Message)
Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


@dataclass(frozen=True)
class Topic(Generic[M]):
    """A named stream of one message type."""

    name: str
    message_type: type[M]


@dataclass(frozen=True)
class Service(Generic[Req, Resp]):
    """A named request/response endpoint: ``request_type`` in, ``response_type`` out."""

    name: str
    request_type: type[Req]
    response_type: type[Resp]


class BusError(Exception):
    """Base of the bus's errors."""


class MessageTypeError(BusError, TypeError):
    """A message of the wrong type was sent on a topic or to or from a service."""


class RequestTimeoutError(BusError, TimeoutError):
    """A request's deadline passed before its response arrived."""

    def __init__(self, service: str, timeout_s: float) -> None:
        super().__init__(f"request to service {service!r} got no response within {timeout_s * MS_PER_S:.1f} ms")
        self.service = service
        self.timeout_s = timeout_s


class ServiceUnavailableError(BusError):
    """No replica serves the named service (never registered, closed, or dead)."""


class ServiceFailedError(BusError):
    """The service's handler raised; the original exception is ``__cause__``."""


def frame_ids_of(message: Message) -> tuple[int | None, tuple[int, ...]]:
    """The (frame_id, source_frame_ids) a message carries, for tagging spans."""
    tracking = getattr(message, "tracking", None)
    if isinstance(tracking, list):
        ids = tuple(frame.frame_id for frame in tracking)
        return (ids[-1] if ids else None), ids
    return getattr(message, "frame_id", None), ()


class Mailbox(Generic[M]):
    """Latest-value slot of one subscriber. Thread-safe; never blocks the publisher."""

    def __init__(self, topic: Topic[M]) -> None:
        self.topic = topic
        self._message: M | None = None
        self._fresh = False
        self._cond = threading.Condition(threading.Lock())
        self.delivered = 0
        """Messages put into this mailbox."""
        self.overwritten = 0
        """Messages replaced by a newer one before anyone took them."""

    def put(self, message: M) -> None:
        with self._cond:
            if self._fresh:
                self.overwritten += 1
            self._message = message
            self._fresh = True
            self.delivered += 1
            self._cond.notify_all()

    def take(self) -> M | None:
        """The newest message not taken yet, or None if nothing new arrived."""
        with self._cond:
            if not self._fresh:
                return None
            self._fresh = False
            return self._message

    def peek(self) -> M | None:
        """The newest message ever received (taken or not), without marking it taken."""
        return self._message

    def wait(self, timeout_s: float) -> M | None:
        """Like :meth:`take`, but waits up to ``timeout_s`` seconds for a new message."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._fresh, timeout=timeout_s):
                return None
            self._fresh = False
            return self._message


class PendingResponse(Generic[Resp]):
    """A response on its way. ``done()`` never blocks; ``result()`` waits up to the deadline."""

    def __init__(self, service: Service[Any, Resp], future: Future, timeout_s: float, clock: Clock,
                 on_timeout: Callable[[], None] | None = None, on_late: Callable[[], None] | None = None) -> None:
        """``on_timeout`` runs once when the deadline is first found passed; ``on_late`` once if the
        response still arrives afterwards (it is discarded)."""
        self.service = service
        self.timeout_s = timeout_s
        self.sent_ns = clock.now_ns()
        self.deadline_ns = self.sent_ns + int(timeout_s * NS_PER_S)
        self._future = future
        self._clock = clock
        self._on_timeout = on_timeout
        self._on_late = on_late
        self._timed_out = False

    def done(self) -> bool:
        """True once the response (or the handler's failure) arrived, or the deadline passed."""
        return self._future.done() or self._clock.now_ns() >= self.deadline_ns

    def expired(self) -> bool:
        return not self._future.done() and self._clock.now_ns() >= self.deadline_ns

    def result(self) -> Resp:
        """The response; raises :class:`RequestTimeoutError` once the deadline passed without one."""
        remaining_s = max(0.0, (self.deadline_ns - self._clock.now_ns()) / NS_PER_S)
        try:
            return self._future.result(timeout=remaining_s)
        except TimeoutError:
            if not self._timed_out:
                self._timed_out = True
                if self._on_timeout is not None:
                    self._on_timeout()
                if self._on_late is not None:
                    on_late = self._on_late
                    self._future.add_done_callback(lambda _: on_late())
            raise RequestTimeoutError(self.service.name, self.timeout_s) from None


@dataclass
class BusStats:
    """Counters since the bus started."""

    published: int = 0
    requests: int = 0
    failed_requests: int = 0
    timed_out_requests: int = 0
    late_responses: int = 0
    """Responses that arrived after their request had already timed out (discarded)."""


class Bus(ABC):
    """The interface every backend implements (in-process here; Ray Serve in ``genxr.deploy``)."""

    stats: BusStats

    @abstractmethod
    def publish(self, topic: Topic[M], message: M) -> None:
        """Delivers ``message`` to every mailbox of ``topic``; never blocks."""

    @abstractmethod
    def subscribe(self, topic: Topic[M]) -> Mailbox[M]:
        """A new latest-value mailbox on ``topic``."""

    @abstractmethod
    def serve(self, service: Service[Req, Resp], handler: Callable[[Req], Resp]) -> None:
        """Makes ``handler`` answer requests to ``service`` (replacing any earlier handler)."""

    @abstractmethod
    def unserve(self, service: Service[Any, Any]) -> None:
        """Stops serving ``service``; later requests raise :class:`ServiceUnavailableError`."""

    @abstractmethod
    def request_async(self, service: Service[Req, Resp], request: Req, timeout_s: float) -> PendingResponse[Resp]:
        """Sends ``request`` and returns at once; the deadline is ``timeout_s`` from now."""

    def request(self, service: Service[Req, Resp], request: Req, timeout_s: float) -> Resp:
        """Sends ``request`` and waits for the response up to ``timeout_s`` seconds."""
        return self.request_async(service, request, timeout_s).result()

    @abstractmethod
    def close(self) -> None:
        """Releases the backend's resources; requests afterwards raise :class:`ServiceUnavailableError`."""

    def _count(self, counter: str) -> None:
        """Adds one to ``stats.<counter>`` (backends hold ``_lock``)."""
        with self._lock:
            setattr(self.stats, counter, getattr(self.stats, counter) + 1)

    def _check_request(self, service: Service[Req, Resp], request: Req, timeout_s: float) -> None:
        """What every backend checks before sending: a positive deadline, the request's type, an open bus."""
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        check_type(request, service.request_type, f"request to service {service.name!r}")
        if self._closed:
            raise ServiceUnavailableError(f"the bus is closed; cannot reach service {service.name!r}")

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_type(message: Any, expected: type, where: str) -> None:
    if not isinstance(message, expected):
        raise MessageTypeError(f"{where} carries {expected.__name__}, got {type(message).__name__}")


def lower_thread_priority(nice: int) -> None:
    """Raises the calling thread's nice value by ``nice`` (Linux schedules threads individually).

    Model handlers run niced so that on a small machine the frame loop, which must never wait,
    wins the CPU when both want it (what that buys on 2 loaded cores: docs/architecture.md,
    "Measured").
    """
    if nice and hasattr(os, "setpriority"):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + nice)


class InProcessBus(Bus):
    """All topics and services in this process; handlers run on a pool of ``workers`` threads
    whose priority is lowered by ``handler_nice`` (see :func:`lower_thread_priority`)."""

    def __init__(self, *, clock: Clock = MONOTONIC, tracer: Tracer | None = None, workers: int = 4,
                 handler_nice: int = 10) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if not 0 <= handler_nice <= 19:
            raise ValueError(f"handler_nice must be in [0, 19], got {handler_nice}")
        self.clock = clock
        self.tracer = tracer
        self.stats = BusStats()
        self._mailboxes: dict[str, list[Mailbox[Any]]] = {}
        self._topics: dict[str, Topic[Any]] = {}
        self._handlers: dict[str, tuple[Service[Any, Any], Callable[[Any], Any]]] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genxr-bus",
                                        initializer=lower_thread_priority, initargs=(handler_nice,))
        self._lock = threading.Lock()
        self._closed = False

    def _register_topic(self, topic: Topic[Any]) -> None:
        known = self._topics.setdefault(topic.name, topic)
        if known.message_type is not topic.message_type:
            raise MessageTypeError(
                f"topic {topic.name!r} already carries {known.message_type.__name__}, "
                f"not {topic.message_type.__name__}"
            )

    def publish(self, topic: Topic[M], message: M) -> None:
        check_type(message, topic.message_type, f"topic {topic.name!r}")
        with self._lock:
            self._register_topic(topic)
            mailboxes = self._mailboxes.get(topic.name, ())
            self.stats.published += 1
        if self.tracer is None:
            for mailbox in mailboxes:
                mailbox.put(message)
            return
        frame_id, sources = frame_ids_of(message)
        with self.tracer.span(f"publish {topic.name}", track="bus", frame_id=frame_id, source_frame_ids=sources):
            for mailbox in mailboxes:
                mailbox.put(message)

    def subscribe(self, topic: Topic[M]) -> Mailbox[M]:
        mailbox: Mailbox[M] = Mailbox(topic)
        with self._lock:
            self._register_topic(topic)
            self._mailboxes.setdefault(topic.name, []).append(mailbox)
        return mailbox

    def serve(self, service: Service[Req, Resp], handler: Callable[[Req], Resp]) -> None:
        with self._lock:
            self._handlers[service.name] = (service, handler)

    def unserve(self, service: Service[Any, Any]) -> None:
        with self._lock:
            self._handlers.pop(service.name, None)

    def request_async(self, service: Service[Req, Resp], request: Req, timeout_s: float) -> PendingResponse[Resp]:
        self._check_request(service, request, timeout_s)
        with self._lock:
            registered = self._handlers.get(service.name)
            if registered is None:
                raise ServiceUnavailableError(
                    f"no handler serves {service.name!r}; served: {sorted(self._handlers) or 'none'}"
                )
            self.stats.requests += 1
        served, handler = registered
        if served.request_type is not service.request_type or served.response_type is not service.response_type:
            raise MessageTypeError(
                f"service {service.name!r} is served as {served.request_type.__name__} -> "
                f"{served.response_type.__name__}, not {service.request_type.__name__} -> "
                f"{service.response_type.__name__}"
            )
        future = self._pool.submit(self._handle, service, handler, request)
        return PendingResponse(service, future, timeout_s, self.clock,
                               on_timeout=lambda: self._count("timed_out_requests"),
                               on_late=lambda: self._count("late_responses"))

    def _handle(self, service: Service[Req, Resp], handler: Callable[[Req], Resp], request: Req) -> Resp:
        frame_id, sources = frame_ids_of(request)
        try:
            if self.tracer is None:
                response = handler(request)
            else:
                with self.tracer.span(f"serve {service.name}", track=service.name,
                                      frame_id=frame_id, source_frame_ids=sources):
                    response = handler(request)
            check_type(response, service.response_type, f"response of service {service.name!r}")
        except Exception as err:
            self._count("failed_requests")
            raise ServiceFailedError(f"service {service.name!r} failed: {type(err).__name__}: {err}") from err
        return response

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._handlers.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

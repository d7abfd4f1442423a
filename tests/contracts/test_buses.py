"""Every bus keeps the :class:`~genxr.platform.bus.Bus` contract.

One suite, run against the in-process bus and the Ray Serve bus. Both answer the world
service of the bus contract (:data:`~genxr.platform.services.WORLD_SERVICE`) with the same
ground-truth world: in process a :class:`GroundTruthWorld` handler, over Ray the deployed
``world_model`` (``world:ground_truth``) the bus is attached to. The Ray cases carry the
``ray`` marker and share the session's local Ray Serve (``serve_handles``).

The contract, from :mod:`genxr.platform.bus`:

* topics: every subscriber gets a latest-value mailbox; publishing never blocks; a message
  overwritten before it was taken is counted; ``wait`` wakes on a publish from another thread;
* every message is type-checked against its topic or service (:class:`MessageTypeError`), a
  deadline must be positive;
* requests: ``request_async`` gives a :class:`PendingResponse`, ``request`` the response, which
  is the service's answer to that request;
* failures are typed: the deadline passes -> :class:`RequestTimeoutError` (counted, and the late
  response discarded and counted), no handler / unserved / closed bus ->
  :class:`ServiceUnavailableError`, the handler raised -> :class:`ServiceFailedError` with the
  cause chained; the bus answers on afterwards;
* ``serve`` makes its handler answer the service, replacing any earlier one;
* every hop is a span in the bus's tracer, tagged with the frames it carries; a failed hop
  is still a span, naming the error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from genxr.components.sim.world_service import GroundTruthWorld
from genxr.platform.bus import (
    Bus,
    BusError,
    BusStats,
    InProcessBus,
    MessageTypeError,
    PendingResponse,
    RequestTimeoutError,
    Service,
    ServiceFailedError,
    ServiceUnavailableError,
    Topic,
)
from genxr.platform.messages import AvatarMotion, SessionEvent, TrackingFrame, WorldFrame, WorldFrameRequest
from genxr.platform.services import WORLD_SERVICE
from genxr.platform.tracing import Tracer
from genxr.xr_runtime.sim_source import SimulatedSource

SEED = 5
TRACKING = Topic("tracking", TrackingFrame)
NO_SUCH_SERVICE = Service("no_such_model", WorldFrameRequest, WorldFrame)
WRONG_REPLY = Service(WORLD_SERVICE.name, WorldFrameRequest, AvatarMotion)
"""The world service asked for a reply it does not give."""
ANSWER_S = 60.0
"""Deadline of requests that must be answered (a generous bound, not a measurement)."""
TOO_SHORT_S = 1e-4
"""A deadline no hop can meet: 0.1 ms, against ~100 ms of rendering a ground-truth frame."""


def tracking_frames(count: int = 4) -> list[TrackingFrame]:
    with SimulatedSource(behaviour="idle", seed=SEED) as source:
        return [step.frame for step, _ in zip(source.user.steps(), range(count))]


@dataclass
class Case:
    name: str
    bus: Bus
    tracer: Tracer
    session_id: str

    def request(self, request_id: int = 0) -> WorldFrameRequest:
        return WorldFrameRequest(session_id=self.session_id, request_id=request_id, tracking=tracking_frames())

    def unanswerable(self, request_id: int = 0) -> WorldFrameRequest:
        """A request of the right type that the world cannot answer (no tracking: it raises IndexError).
        Built unvalidated - a bus checks types, the handler meets the content."""
        return WorldFrameRequest.model_construct(session_id=self.session_id, request_id=request_id, tracking=[])


def in_process(request, session_id: str) -> Case:
    tracer = Tracer()
    bus = InProcessBus(tracer=tracer, workers=2)
    bus.serve(WORLD_SERVICE, GroundTruthWorld(seed=SEED))
    return Case("in-process", bus, tracer, session_id)


def ray(request, session_id: str) -> Case:
    from genxr.deploy.serving.ray_bus import RayBus

    handles = request.getfixturevalue("ground_truth_handles")
    tracer = Tracer()
    bus = RayBus(session_id, tracer=tracer, workers=2)
    bus.attach(WORLD_SERVICE, handles["world_model"], {"seed": SEED})
    return Case("ray", bus, tracer, session_id)


FACTORIES: dict[str, Callable[..., Case]] = {"in-process": in_process, "ray": ray}


def each_bus(*, xfail: dict[str, str] | None = None):
    """Parametrises a test over the buses (``case`` fixture); ``xfail``: name -> the defect (strict)."""
    xfail = xfail or {}
    params = []
    for name in FACTORIES:
        marks = [pytest.mark.ray] if name == "ray" else []
        if name in xfail:
            marks.append(pytest.mark.xfail(strict=True, reason=xfail[name]))
        params.append(pytest.param(name, id=name, marks=marks))
    return pytest.mark.parametrize("case", params, indirect=True)


@pytest.fixture(scope="module")
def ground_truth_handles(serve_handles):
    """The session's Serve applications, with the world model on the ground truth (kept if it runs)."""
    from genxr.deploy.serving.deployments import connect

    return connect(world_kind="world:ground_truth")


@pytest.fixture
def case(request) -> Case:
    made = FACTORIES[request.param](request, f"contract-{request.node.name}"[:120])
    yield made
    made.bus.close()


def spans_named(tracer: Tracer, name: str) -> list:
    return [span for span in tracer.spans() if span.name == name]


def eventually(condition: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def causes(err: BaseException) -> list[BaseException]:
    chain = []
    while err is not None and len(chain) < 10:
        chain.append(err)
        err = err.__cause__
    return chain


# -- topics ---------------------------------------------------------------------------------------


@each_bus()
def test_is_a_bus_with_stats_and_a_context_manager(case):
    assert isinstance(case.bus, Bus) and isinstance(case.bus.stats, BusStats)
    with case.bus as entered:
        assert entered is case.bus
    with pytest.raises(ServiceUnavailableError):
        case.bus.request(WORLD_SERVICE, case.request(), timeout_s=ANSWER_S)  # leaving closed it


@each_bus()
def test_a_mailbox_holds_the_newest_message_and_counts_the_overwritten(case):
    first, second = case.bus.subscribe(TRACKING), case.bus.subscribe(TRACKING)
    frames = tracking_frames(3)
    published = case.bus.stats.published
    for frame in frames:
        case.bus.publish(TRACKING, frame)
    assert case.bus.stats.published == published + 3
    assert first.take() is frames[-1] and first.take() is None, "only the newest, once"
    assert first.peek() is frames[-1]
    assert (first.delivered, first.overwritten) == (3, 2)
    assert second.take() is frames[-1], "every subscriber has a mailbox of its own"
    late = case.bus.subscribe(TRACKING)
    assert late.take() is None, "a new mailbox holds nothing published before it"


@each_bus()
def test_wait_wakes_on_a_publish_from_another_thread(case):
    mailbox = case.bus.subscribe(TRACKING)
    assert mailbox.wait(0.01) is None
    frame = tracking_frames(1)[0]
    publisher = threading.Timer(0.05, case.bus.publish, (TRACKING, frame))
    publisher.start()
    try:
        assert mailbox.wait(ANSWER_S) is frame
    finally:
        publisher.join()


@each_bus()
def test_messages_are_type_checked_against_their_topic_and_service(case):
    event = SessionEvent(session_id=case.session_id, time_ns=0, kind="tracking_lost", detail="head")
    with pytest.raises(MessageTypeError, match="tracking"):
        case.bus.publish(TRACKING, event)
    case.bus.subscribe(TRACKING)
    with pytest.raises(MessageTypeError, match="tracking"):
        case.bus.subscribe(Topic("tracking", SessionEvent))
    with pytest.raises(MessageTypeError, match="world_model"):
        case.bus.request(WORLD_SERVICE, event, timeout_s=ANSWER_S)
    with pytest.raises(ValueError, match="timeout_s"):
        case.bus.request_async(WORLD_SERVICE, case.request(), timeout_s=0)


# -- requests -------------------------------------------------------------------------------------


@each_bus()
def test_a_request_gets_the_services_answer_to_it(case):
    request = case.request(request_id=7)
    requests = case.bus.stats.requests
    pending = case.bus.request_async(WORLD_SERVICE, request, timeout_s=ANSWER_S)
    assert isinstance(pending, PendingResponse)
    assert eventually(pending.done, ANSWER_S)
    frame = pending.result()
    assert isinstance(frame, WorldFrame)
    assert (frame.session_id, frame.request_id, frame.frame_id) == (case.session_id, 7, request.tracking[-1].frame_id)
    np.testing.assert_array_equal(frame.image, GroundTruthWorld(seed=SEED)(request).image)
    assert case.bus.request(WORLD_SERVICE, case.request(request_id=8), timeout_s=ANSWER_S).request_id == 8
    assert case.bus.stats.requests == requests + 2


@each_bus()
def test_a_passed_deadline_is_the_typed_timeout_and_the_late_answer_is_dropped(case):
    with pytest.raises(RequestTimeoutError, match="world_model") as raised:
        case.bus.request(WORLD_SERVICE, case.request(), timeout_s=TOO_SHORT_S)
    assert isinstance(raised.value, TimeoutError) and raised.value.service == WORLD_SERVICE.name
    assert case.bus.stats.timed_out_requests == 1
    assert eventually(lambda: case.bus.stats.late_responses == 1), "the late answer is counted, not delivered"
    assert case.bus.request(WORLD_SERVICE, case.request(1), timeout_s=ANSWER_S).request_id == 1, "answers on"


@each_bus()
def test_no_handler_an_unserved_service_and_a_closed_bus_are_unavailable(case):
    with pytest.raises(ServiceUnavailableError, match="no_such_model"):
        case.bus.request(NO_SUCH_SERVICE, case.request(), timeout_s=ANSWER_S)
    case.bus.unserve(WORLD_SERVICE)
    with pytest.raises(ServiceUnavailableError, match="world_model"):
        case.bus.request(WORLD_SERVICE, case.request(), timeout_s=ANSWER_S)
    case.bus.close()
    with pytest.raises(ServiceUnavailableError, match="closed"):
        case.bus.request(NO_SUCH_SERVICE, case.request(), timeout_s=ANSWER_S)


@each_bus()
def test_a_handler_that_raises_is_a_typed_failure_with_its_cause(case):
    with pytest.raises(ServiceFailedError) as raised:
        case.bus.request(WORLD_SERVICE, case.unanswerable(), timeout_s=ANSWER_S)
    assert any(isinstance(cause, IndexError) for cause in causes(raised.value)[1:]), causes(raised.value)
    assert case.bus.stats.failed_requests == 1
    assert case.bus.request(WORLD_SERVICE, case.request(1), timeout_s=ANSWER_S).request_id == 1, "answers on"


@each_bus()
def test_a_reply_of_the_wrong_type_is_refused(case):
    with pytest.raises(BusError, match="world_model") as raised:
        case.bus.request(WRONG_REPLY, case.request(), timeout_s=ANSWER_S)
    assert any(isinstance(cause, MessageTypeError) for cause in causes(raised.value)), causes(raised.value)


@each_bus()
def test_serve_replaces_the_earlier_handler(case):
    def still(request: WorldFrameRequest) -> WorldFrame:
        newest = request.tracking[-1]
        return WorldFrame(session_id=request.session_id, request_id=request.request_id, frame_id=newest.frame_id,
                          head=newest.head, generated_for_time_ns=newest.predicted_display_time_ns,
                          vertical_fov_deg=90.0, image=np.zeros((8, 8, 3), np.uint8), model="replacement")

    case.bus.serve(WORLD_SERVICE, still)
    assert case.bus.request(WORLD_SERVICE, case.request(), timeout_s=ANSWER_S).model == "replacement"


# -- tracing --------------------------------------------------------------------------------------


@each_bus()
def test_every_hop_is_a_span_tagged_with_its_frames_and_failures_name_their_error(case):
    frame = tracking_frames(1)[0]
    case.bus.subscribe(TRACKING)
    case.bus.publish(TRACKING, frame)
    (published,) = spans_named(case.tracer, "publish tracking")
    assert published.track == "bus" and published.frame_id == frame.frame_id
    request = case.request()
    case.bus.request(WORLD_SERVICE, request, timeout_s=ANSWER_S)
    with pytest.raises(ServiceFailedError):
        case.bus.request(WORLD_SERVICE, case.unanswerable(1), timeout_s=ANSWER_S)
    served, failed = spans_named(case.tracer, f"serve {WORLD_SERVICE.name}")
    ids = tuple(f.frame_id for f in request.tracking)
    assert served.track == WORLD_SERVICE.name
    assert (served.frame_id, served.source_frame_ids) == (ids[-1], ids)
    assert "error" not in served.args and "IndexError" in failed.args.get("error", ""), failed.args

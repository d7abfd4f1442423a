"""The in-process bus: latest-value mailboxes, typed topics and services, deadlines and
failures as typed errors, and a span for every hop."""

from __future__ import annotations

import threading

import pytest

from genxr.platform.bus import (
    InProcessBus,
    MessageTypeError,
    RequestTimeoutError,
    Service,
    ServiceFailedError,
    ServiceUnavailableError,
    Topic,
)
from genxr.platform.clock import ManualClock
from genxr.platform.messages import Pose, SessionEvent, TrackingFrame, WorldFrameRequest
from genxr.platform.tracing import Tracer
from tests.helpers.tracking import two_handed_frame

TRACKING = Topic("tracking", TrackingFrame)
ECHO = Service("echo", TrackingFrame, TrackingFrame)


@pytest.fixture
def bus():
    with InProcessBus(workers=2) as bus:
        yield bus


def test_mailbox_holds_only_the_newest_message_and_counts_overwrites(bus):
    mailbox = bus.subscribe(TRACKING)
    assert mailbox.take() is None
    for frame_id in range(5):
        bus.publish(TRACKING, two_handed_frame(frame_id))
    newest = mailbox.take()
    assert newest.frame_id == 4
    assert mailbox.take() is None, "a message is taken once"
    assert mailbox.peek().frame_id == 4
    assert (mailbox.delivered, mailbox.overwritten) == (5, 4)
    assert bus.stats.published == 5


def test_each_subscriber_gets_its_own_mailbox(bus):
    fast, slow = bus.subscribe(TRACKING), bus.subscribe(TRACKING)
    for frame_id in range(3):
        bus.publish(TRACKING, two_handed_frame(frame_id))
        assert fast.take().frame_id == frame_id
    assert slow.take().frame_id == 2
    assert fast.overwritten == 0 and slow.overwritten == 2


def test_a_slow_consumer_never_blocks_the_producer(bus):
    mailbox = bus.subscribe(TRACKING)
    consumer_started, release = threading.Event(), threading.Event()

    def slow_consumer():
        consumer_started.set()
        release.wait(5)
        mailbox.take()

    thread = threading.Thread(target=slow_consumer)
    thread.start()
    consumer_started.wait(5)
    for frame_id in range(200):  # all published while the consumer sleeps
        bus.publish(TRACKING, two_handed_frame(frame_id))
    release.set()
    thread.join(5)
    assert mailbox.delivered == 200 and mailbox.overwritten == 199


def test_mailbox_wait_returns_a_message_published_from_another_thread(bus):
    mailbox = bus.subscribe(TRACKING)
    timer = threading.Timer(0.05, lambda: bus.publish(TRACKING, two_handed_frame(7)))
    timer.start()
    assert mailbox.wait(timeout_s=5).frame_id == 7
    assert mailbox.wait(timeout_s=0.01) is None
    timer.join()


def test_publishing_the_wrong_type_names_topic_and_types(bus):
    with pytest.raises(MessageTypeError, match="topic 'tracking' carries TrackingFrame, got Pose"):
        bus.publish(TRACKING, Pose())


def test_one_topic_name_cannot_carry_two_types(bus):
    bus.subscribe(TRACKING)
    with pytest.raises(MessageTypeError, match="already carries TrackingFrame"):
        bus.subscribe(Topic("tracking", Pose))


def test_request_response_round_trip(bus):
    bus.serve(ECHO, lambda frame: frame.model_copy(update={"frame_id": frame.frame_id + 1}))
    assert bus.request(ECHO, two_handed_frame(3), timeout_s=5).frame_id == 4
    pending = bus.request_async(ECHO, two_handed_frame(8), timeout_s=5)
    assert pending.result().frame_id == 9 and pending.done()
    assert bus.stats.requests == 2


def test_request_to_unknown_service_is_unavailable(bus):
    with pytest.raises(ServiceUnavailableError, match="no handler serves 'echo'"):
        bus.request(ECHO, two_handed_frame(), timeout_s=1)


def test_a_dead_handler_becomes_service_failed_with_the_cause(bus):
    def dead_replica(frame):
        raise RuntimeError("replica crashed")

    bus.serve(ECHO, dead_replica)
    with pytest.raises(ServiceFailedError, match="replica crashed") as excinfo:
        bus.request(ECHO, two_handed_frame(), timeout_s=5)
    assert isinstance(excinfo.value.__cause__, RuntimeError)
    assert bus.stats.failed_requests == 1


def test_unserved_service_becomes_unavailable(bus):
    bus.serve(ECHO, lambda frame: frame)
    bus.unserve(ECHO)
    with pytest.raises(ServiceUnavailableError):
        bus.request(ECHO, two_handed_frame(), timeout_s=1)


def test_handler_returning_the_wrong_type_fails(bus):
    bus.serve(ECHO, lambda frame: Pose())
    with pytest.raises(ServiceFailedError, match="response of service 'echo' carries TrackingFrame, got Pose"):
        bus.request(ECHO, two_handed_frame(), timeout_s=5)


def test_request_of_the_wrong_type_is_rejected_before_sending(bus):
    bus.serve(ECHO, lambda frame: frame)
    with pytest.raises(MessageTypeError, match="request to service 'echo' carries TrackingFrame, got Pose"):
        bus.request(ECHO, Pose(), timeout_s=1)
    assert bus.stats.requests == 0


def test_service_registered_with_other_types_is_a_type_error(bus):
    bus.serve(ECHO, lambda frame: frame)
    with pytest.raises(MessageTypeError, match="served as TrackingFrame -> TrackingFrame"):
        bus.request(Service("echo", TrackingFrame, Pose), two_handed_frame(), timeout_s=1)


def test_deadline_raises_typed_timeout_and_counts_the_late_response(bus):
    release = threading.Event()
    finished = threading.Event()

    def slow(frame):
        release.wait(5)
        return frame

    bus.serve(ECHO, slow)
    pending = bus.request_async(ECHO, two_handed_frame(), timeout_s=0.02)
    with pytest.raises(RequestTimeoutError, match="no response within 20.0 ms") as excinfo:
        pending.result()
    assert isinstance(excinfo.value, TimeoutError) and excinfo.value.service == "echo"
    with pytest.raises(RequestTimeoutError):
        pending.result()  # asking again raises again but counts once
    assert bus.stats.timed_out_requests == 1
    pending._future.add_done_callback(lambda _: finished.set())
    release.set()
    assert finished.wait(5)
    assert bus.stats.late_responses == 1


def test_pending_response_done_never_blocks_and_follows_the_injected_clock():
    clock = ManualClock(start_ns=1_000)
    release = threading.Event()
    with InProcessBus(clock=clock, workers=1) as bus:
        bus.serve(ECHO, lambda frame: (release.wait(5), frame)[1])
        pending = bus.request_async(ECHO, two_handed_frame(), timeout_s=0.5)
        assert pending.deadline_ns == 1_000 + 500_000_000
        assert not pending.done()
        clock.advance_ns(500_000_000)
        assert pending.done() and pending.expired()
        release.set()


def test_closed_bus_refuses_requests():
    bus = InProcessBus()
    bus.serve(ECHO, lambda frame: frame)
    bus.close()
    with pytest.raises(ServiceUnavailableError, match="closed"):
        bus.request(ECHO, two_handed_frame(), timeout_s=1)


def test_timeout_must_be_positive(bus):
    bus.serve(ECHO, lambda frame: frame)
    with pytest.raises(ValueError, match="timeout_s must be > 0"):
        bus.request_async(ECHO, two_handed_frame(), timeout_s=0)


def test_every_hop_is_a_span_tagged_with_frame_ids():
    tracer = Tracer()
    world = Service("world_model", WorldFrameRequest, SessionEvent)
    with InProcessBus(tracer=tracer) as bus:
        bus.subscribe(TRACKING)
        bus.publish(TRACKING, two_handed_frame(11))
        bus.serve(world, lambda request: SessionEvent(session_id=request.session_id, time_ns=0, kind="model_ready"))
        request = WorldFrameRequest(session_id="s", request_id=0, tracking=[two_handed_frame(12), two_handed_frame(13)])
        bus.request(world, request, timeout_s=5)
    spans = {span.name: span for span in tracer.spans()}
    assert spans["publish tracking"].track == "bus" and spans["publish tracking"].frame_id == 11
    served = spans["serve world_model"]
    assert served.track == "world_model"
    assert served.frame_id == 13 and served.source_frame_ids == (12, 13)


def test_handlers_run_at_lower_priority_than_the_caller():
    import os

    with InProcessBus(handler_nice=7) as bus:
        bus.serve(ECHO, lambda frame: frame.model_copy(
            update={"frame_id": os.getpriority(os.PRIO_PROCESS, threading.get_native_id())}))
        handler_nice = bus.request(ECHO, two_handed_frame(), timeout_s=5).frame_id
    assert handler_nice == os.getpriority(os.PRIO_PROCESS, 0) + 7
    with pytest.raises(ValueError, match="handler_nice must be in"):
        InProcessBus(handler_nice=20)

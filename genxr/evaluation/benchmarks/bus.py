"""``genxr bench bus``: cost of one in-process bus hop and of binary serialisation.

The message is a :class:`~genxr.platform.messages.TrackingFrame` with both hands (26
joints each), the most frequent message of a session. Each figure is the median over
``n`` repetitions in microseconds; ``frame_budget_share_*`` divides it by one 90 Hz frame
(11.1 ms), so the target "< 1% of a frame" reads as a share below 0.01.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from genxr.platform.bus import InProcessBus, Service, Topic
from genxr.platform.messages import HAND_JOINT_COUNT, HandJoints, Pose, TrackingFrame, decode, encode
from genxr.platform.stats import median
from genxr.platform.units import NS_PER_US, US_PER_S

FRAME_BUDGET_US = US_PER_S / 90


def two_handed_frame(frame_id: int = 0) -> TrackingFrame:
    """A valid TrackingFrame with both hands fully tracked (rest pose, identity orientations)."""
    rng = np.random.default_rng(frame_id)

    def hand(side: str) -> HandJoints:
        return HandJoints(
            hand=side, is_active=True,
            positions=rng.normal(0.0, 0.05, (HAND_JOINT_COUNT, 3)).astype(np.float32),
            orientations=np.tile(np.array([0, 0, 0, 1], np.float32), (HAND_JOINT_COUNT, 1)),
            radii=np.full(HAND_JOINT_COUNT, 0.01, np.float32),
            location_flags=np.full(HAND_JOINT_COUNT, 0xF, np.uint8),
        )

    return TrackingFrame(frame_id=frame_id, sample_time_ns=1_000 + frame_id, predicted_display_time_ns=2_000 + frame_id,
                         head=Pose(position=(0.0, 1.6, 0.0)), left_hand=hand("left"), right_hand=hand("right"))


def _median_us(operation: Callable[[], object], n: int) -> float:
    for _ in range(min(50, n)):
        operation()
    samples = np.empty(n)
    for i in range(n):
        start = time.perf_counter_ns()
        operation()
        samples[i] = time.perf_counter_ns() - start
    return median(samples, per=NS_PER_US)


def run(n: int = 2000) -> dict[str, float | int]:
    """Median microseconds of a publish+take, a request/response round trip and an msgpack round trip."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    frame = two_handed_frame()
    topic = Topic("tracking", TrackingFrame)
    service = Service("echo", TrackingFrame, TrackingFrame)
    with InProcessBus(workers=1) as bus:
        mailbox = bus.subscribe(topic)
        bus.serve(service, lambda request: request)

        def publish() -> None:
            bus.publish(topic, frame)
            mailbox.take()

        publish_us = _median_us(publish, n)
        request_us = _median_us(lambda: bus.request(service, frame, timeout_s=1.0), n)
    payload = encode(frame)
    roundtrip_us = _median_us(lambda: decode(encode(frame)), n)
    return {
        "n": n,
        "inproc_publish_us_p50": publish_us,
        "inproc_request_us_p50": request_us,
        "serialize_roundtrip_us_p50": roundtrip_us,
        "serialized_bytes": len(payload),
        "frame_budget_share_publish": publish_us / FRAME_BUDGET_US,
        "frame_budget_share_request": request_us / FRAME_BUDGET_US,
    }

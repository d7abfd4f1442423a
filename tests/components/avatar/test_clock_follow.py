"""The avatar stream follows the session clock it is given: a request cadence slower than the
chunk rate, or a stream opened long before its first request, never makes it fail for good."""

from __future__ import annotations

import numpy as np

from genxr.components.avatar.stream import AvatarStream, serve_request
from genxr.components.sim.conversation.audio import SAMPLE_RATE_HZ
from genxr.platform.messages import AudioChunk, AvatarRequest, Pose
from genxr.platform.units import NS_PER_S

USER = Pose(position=(0.5, 1.7, 0.0))
DISPLAY_PERIOD_NS = NS_PER_S // 90
CHUNK_FRAMES = 4
CHUNK_NS = CHUNK_FRAMES * NS_PER_S // 30


def audio(start_ns: int, end_ns: int, speaker: str) -> AudioChunk | None:
    """Noise for [start_ns, end_ns) on the session clock, as the frame loop sends it."""
    first, last = start_ns * SAMPLE_RATE_HZ // NS_PER_S, end_ns * SAMPLE_RATE_HZ // NS_PER_S
    if last <= first:
        return None
    samples = np.random.default_rng(first).uniform(-0.1, 0.1, last - first).astype(np.float32)
    return AudioChunk(speaker=speaker, sample_rate_hz=SAMPLE_RATE_HZ,
                      start_time_ns=first * NS_PER_S // SAMPLE_RATE_HZ, samples=samples)


def run(stream: AvatarStream, request_times_ns: list[int]) -> list[int]:
    """Serves one request per time with the audio since the previous one; the chunks' start times."""
    starts, previous = [], request_times_ns[0]
    for index, now in enumerate(request_times_ns):
        request = AvatarRequest(session_id="s", request_id=index, time_ns=now, user_head=USER,
                                user_audio=audio(previous, now, "user"), agent_audio=audio(previous, now, "agent"))
        starts.append(serve_request(stream, request).start_time_ns)
        previous = now
    return starts


def test_a_request_cadence_slower_than_the_chunk_rate_is_followed_for_minutes(tiny_models):
    """Requests every 13 display frames at 90 Hz (144 ms) against 133 ms chunks: before, the audio
    ran ahead of the stream by 11 ms a request until, after ~2 minutes, every request failed."""
    stream = AvatarStream(tiny_models["vae"], tiny_models["generator"], euler_steps=1)
    stream.reset(start_time_ns=0)
    times = [k * 13 * DISPLAY_PERIOD_NS for k in range(1, 1100)]  # ~160 s: 12 s of drift before the fix
    starts = run(stream, times)
    lag_ns = np.asarray(times) - np.asarray(starts)
    assert lag_ns.max() <= 3 * CHUNK_NS, "the stream stays within a few chunks of the clock"
    assert stream.skipped_frames > 0
    assert np.all(np.diff(starts) > 0), "chunks still move forward in time"


def test_a_stream_opened_long_before_its_first_request_catches_up_at_once(tiny_models):
    """The Ray backend opened the avatar session ~30 s before the frame loop's first request."""
    stream = AvatarStream(tiny_models["vae"], tiny_models["generator"], euler_steps=1)
    stream.reset(start_time_ns=0)
    first = 30 * NS_PER_S
    starts = run(stream, [first + k * 12 * DISPLAY_PERIOD_NS for k in range(20)])
    assert first - starts[0] <= 2 * CHUNK_NS


def test_a_stream_on_time_skips_nothing(tiny_models):
    stream = AvatarStream(tiny_models["vae"], tiny_models["generator"], euler_steps=1)
    stream.reset(start_time_ns=0)
    starts = run(stream, [k * CHUNK_NS for k in range(1, 200)])
    assert stream.skipped_frames == 0
    assert np.all(np.abs(np.diff(starts) - CHUNK_NS) <= 1)  # ns rounding

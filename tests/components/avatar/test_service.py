"""The conversation script hands out both speakers' audio by session time, contiguously;
a missing avatar checkpoint is a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.avatar.service import AvatarService, AvatarUnavailableError, ConversationAudio

START = 5_000_000_000


@pytest.fixture(scope="module")
def script() -> ConversationAudio:
    return ConversationAudio(START, seed=3, seconds=4.0)


def test_chunks_cover_the_span_for_both_speakers(script):
    chunks = script.chunks(START, START + 100_000_000)
    assert {c.speaker for c in chunks} == {"user", "agent"}
    for chunk in chunks:
        assert chunk.start_time_ns == START and chunk.samples.shape == (script.sample_rate_hz // 10,)


def test_consecutive_spans_are_contiguous_and_match_the_track(script):
    first = {c.speaker: c for c in script.chunks(START, START + 50_000_000)}
    second = {c.speaker: c for c in script.chunks(START + 50_000_000, START + 120_000_000)}
    joined = np.concatenate([first["agent"].samples, second["agent"].samples])
    np.testing.assert_array_equal(joined, np.clip(script.tracks["agent"][: joined.shape[0]], -1, 1))
    assert second["agent"].start_time_ns == START + 50_000_000


def test_the_script_loops_past_its_end_and_empty_spans_give_nothing(script):
    late = script.chunks(START + 10_000_000_000, START + 10_010_000_000)
    assert all(c.samples.shape[0] == script.sample_rate_hz // 100 for c in late)
    assert script.chunks(START + 10, START + 10) == []


def test_missing_checkpoint_says_how_to_make_one(tmp_path):
    with pytest.raises(AvatarUnavailableError, match="genxr train avatar --preset cpu"):
        AvatarService(START, checkpoint=tmp_path)

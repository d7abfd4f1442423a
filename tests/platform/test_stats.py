"""The one percentile / summary helper: numpy's numbers in the reported unit, None for no samples."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.platform.stats import median, percentile, percentiles, summary
from genxr.platform.units import MS_PER_S, NS_PER_MS, NS_PER_S, NS_PER_US, US_PER_MS, US_PER_S


def test_units_are_consistent_integers() -> None:
    assert NS_PER_S == NS_PER_MS * MS_PER_S == NS_PER_US * US_PER_S
    assert US_PER_S == US_PER_MS * MS_PER_S
    assert all(isinstance(v, int) for v in (NS_PER_S, NS_PER_MS, NS_PER_US, US_PER_S, US_PER_MS, MS_PER_S))


def test_percentiles_convert_first_and_match_numpy() -> None:
    samples_ns = [3_000_000, 11_111_111, 4_500_001, 9_000_000, 7_250_000]
    expected = np.percentile(np.asarray(samples_ns, dtype=np.float64) / NS_PER_MS, [50, 99])
    assert percentiles(samples_ns, (50, 99), per=NS_PER_MS) == [float(v) for v in expected]
    assert percentile(samples_ns, 99, per=NS_PER_MS) == float(expected[1])
    seconds = [0.0123, 0.0456, 0.0078]
    assert percentiles(seconds, (25, 75), scale=MS_PER_S) == [float(v) for v in np.percentile(np.asarray(seconds) * 1e3, [25, 75])]
    assert all(type(v) is float for v in percentiles(np.arange(4), (0, 100)))


def test_median_and_summary() -> None:
    assert median([1.0, 4.0, 2.0, 3.0]) == 2.5
    assert median([0.002, 0.001, 0.004], scale=MS_PER_S) == pytest.approx(2.0)
    stats = summary([1_000_000, 2_000_000, 6_000_000], per=NS_PER_MS)
    assert list(stats) == ["count", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"]
    assert stats["count"] == 3 and type(stats["count"]) is int
    assert stats["mean_ms"] == 3.0 and stats["p50_ms"] == 2.0 and stats["max_ms"] == 6.0


@pytest.mark.parametrize("empty", [[], np.array([]), iter(())])
def test_empty_input_is_none(empty) -> None:
    assert percentiles(empty, (50,)) is None
    assert percentile([], 50) is None and median([]) is None and summary([]) is None

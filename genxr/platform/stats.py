"""The one percentile / summary helper of genxr: loop metrics, the HUD, span summaries, the
dashboard and the benchmarks all summarise their samples here.

``values`` are first converted to the reported unit, ``values * scale / per`` in float64
(``per=NS_PER_MS`` for nanoseconds -> ms, ``scale=MS_PER_S`` for seconds -> ms, see
:mod:`genxr.platform.units`), then summarised; percentiles are numpy's (linear interpolation,
``q`` in 0-100). Every function returns plain Python floats, or None for no samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def _converted(values: Iterable[float] | np.ndarray, scale: float, per: float) -> np.ndarray:
    values = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64)
    if scale != 1:
        values = values * scale
    if per != 1:
        values = values / per
    return values


def percentiles(values: Iterable[float] | np.ndarray, qs: Sequence[float], *, scale: float = 1,
                per: float = 1) -> list[float] | None:
    """The ``qs`` percentiles (0-100) of ``values * scale / per``, in the order of ``qs``; None if empty."""
    converted = _converted(values, scale, per)
    if converted.size == 0:
        return None
    return [float(p) for p in np.percentile(converted, list(qs))]


def percentile(values: Iterable[float] | np.ndarray, q: float, *, scale: float = 1, per: float = 1) -> float | None:
    """The ``q`` percentile (0-100) of ``values * scale / per``; None if empty."""
    found = percentiles(values, (q,), scale=scale, per=per)
    return None if found is None else found[0]


def median(values: Iterable[float] | np.ndarray, *, scale: float = 1, per: float = 1) -> float | None:
    """The median of ``values`` (``np.median``: the mean of the middle two for an even count) times
    ``scale / per``, converted after taking it; None if empty."""
    raw = _converted(values, 1, 1)
    if raw.size == 0:
        return None
    middle = float(np.median(raw))
    if scale != 1:
        middle *= scale
    if per != 1:
        middle /= per
    return middle


def summary(values: Iterable[float] | np.ndarray, *, scale: float = 1, per: float = 1,
            unit: str = "ms") -> dict[str, float | int] | None:
    """``count``, ``mean_<unit>``, ``p50_<unit>``, ``p95_<unit>``, ``p99_<unit>``, ``max_<unit>`` of
    ``values * scale / per`` (``count`` an int); None if empty."""
    converted = _converted(values, scale, per)
    if converted.size == 0:
        return None
    p50, p95, p99 = np.percentile(converted, [50, 95, 99])
    return {"count": int(converted.size), f"mean_{unit}": float(converted.mean()), f"p50_{unit}": float(p50),
            f"p95_{unit}": float(p95), f"p99_{unit}": float(p99), f"max_{unit}": float(converted.max())}

"""Counterbalancing: balanced Latin squares (Williams designs).

A Williams design orders ``n`` conditions so that every condition appears in every position
equally often and follows every other condition equally often (first-order carry-over
balanced): one n x n square when ``n`` is even, the square and its mirror image (2n rows)
when ``n`` is odd. Participant ``k`` (0-based, in enrolment order) gets row ``k mod rows``.
"""

from __future__ import annotations


def williams_rows(n: int) -> list[list[int]]:
    """The rows of the Williams design for ``n`` conditions (indices 0..n-1)."""
    if n < 1:
        raise ValueError(f"a Latin square needs at least one condition, got {n}")
    first, low, high = [0], 1, n - 1
    while len(first) < n:
        first.append(low)
        low += 1
        if len(first) < n:
            first.append(high)
            high -= 1
    rows = [[(c + r) % n for c in first] for r in range(n)]
    if n % 2 == 1:
        rows += [list(reversed(row)) for row in rows]
    return rows


def condition_order(conditions: list[str], participant_index: int) -> list[str]:
    """The condition order of the ``participant_index``-th participant (0-based)."""
    if participant_index < 0:
        raise ValueError(f"participant_index must be >= 0, got {participant_index}")
    rows = williams_rows(len(conditions))
    return [conditions[i] for i in rows[participant_index % len(rows)]]

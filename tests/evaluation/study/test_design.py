"""Williams designs balance position and first-order carry-over."""

from __future__ import annotations

from collections import Counter

import pytest

from genxr.evaluation.study.design import condition_order, williams_rows


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_every_condition_is_in_every_position_and_follows_every_other_equally_often(n):
    rows = williams_rows(n)
    assert len(rows) == (n if n % 2 == 0 else 2 * n)
    for row in rows:
        assert sorted(row) == list(range(n))
    for position in range(n):
        assert Counter(row[position] for row in rows) == Counter({c: len(rows) // n for c in range(n)})
    pairs = Counter((a, b) for row in rows for a, b in zip(row, row[1:]))
    assert set(pairs) == {(a, b) for a in range(n) for b in range(n) if a != b}
    assert len(set(pairs.values())) == 1


def test_participants_cycle_through_the_rows():
    assert condition_order(["a", "b"], 0) == ["a", "b"]
    assert condition_order(["a", "b"], 1) == ["b", "a"]
    assert condition_order(["a", "b"], 2) == ["a", "b"]
    with pytest.raises(ValueError, match="at least one condition"):
        williams_rows(0)

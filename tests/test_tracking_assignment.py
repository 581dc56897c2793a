import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from roadtrack.tracking.assignment import FORBIDDEN, linear_assignment


def _objective(cost, rows, cols, limit):
    """The extended problem lap solves: matched costs + limit/2 per unmatched row and column."""
    n, m = cost.shape
    return cost[rows, cols].sum() + limit / 2 * ((n - len(rows)) + (m - len(cols)))


def _brute_force_best(cost, limit):
    n, m = cost.shape
    best = limit / 2 * (n + m)
    for k in range(1, min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                best = min(best, _objective(cost, np.array(rows), np.array(cols), limit))
    return best


@settings(max_examples=150, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(0, 4), st.integers(0, 4)),
              elements=st.floats(0, 1.5)), st.floats(0.1, 1.2))
def test_assignment_is_optimal_and_respects_the_limit(cost, limit):
    rows, cols = linear_assignment(cost, limit)
    assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
    assert np.all(cost[rows, cols] <= limit)
    assert _objective(cost, rows, cols, limit) <= _brute_force_best(cost, limit) + 1e-9


def test_collisions_go_to_the_solver():
    cost = np.array([[0.1, 0.2], [0.15, 0.9]])  # both rows prefer column 0
    rows, cols = linear_assignment(cost, 0.5)
    assert dict(zip(rows.tolist(), cols.tolist(), strict=True)) == {0: 1, 1: 0}


def test_forbidden_pairs_stay_unmatched():
    cost = np.array([[FORBIDDEN, 0.3], [FORBIDDEN, FORBIDDEN]])
    rows, cols = linear_assignment(cost, 0.7)
    assert rows.tolist() == [0] and cols.tolist() == [1]


def test_empty_inputs():
    for shape in [(0, 3), (3, 0), (0, 0)]:
        rows, cols = linear_assignment(np.zeros(shape), 0.5)
        assert rows.size == 0 and cols.size == 0

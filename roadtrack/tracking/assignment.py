"""Minimum-cost assignment (Jonker-Volgenant via ``lap``) and the cost helpers around it."""
from __future__ import annotations

import lap
import numpy as np

#: Cost given to forbidden pairs; far above any cost limit used, finite for ``lap``.
FORBIDDEN = 1e5


def linear_assignment(cost: np.ndarray, cost_limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost matching of rows to columns, leaving pairs above ``cost_limit`` unmatched.

    ``cost`` (N, M) finite float64 (use :data:`FORBIDDEN` for pairs that must not match).
    Returns ``rows (K,)`` and ``cols (K,)`` of the matched pairs (in no particular order), all
    with cost <= ``cost_limit``.

    Solves the problem ``lap.lapjv(extend_cost=True, cost_limit=...)`` solves: minimise the
    matched costs plus ``cost_limit / 2`` per unmatched row and column. When every row's cheapest
    column within the limit is a different column, taking those is optimal (no matching can beat
    each row's minimum), so that common case skips the solver.
    """
    n, m = cost.shape
    if n == 0 or m == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    if n > m:  # the shortcut below works per row: fewer rows, fewer collisions
        cols, rows = linear_assignment(cost.T, cost_limit)
        return rows, cols
    best = cost.argmin(axis=1)  # (N,)
    rows = (cost.min(axis=1) <= cost_limit).nonzero()[0]
    cols = best[rows]
    if len(set(cols.tolist())) == len(cols):  # all different: the row minima are optimal
        return rows, cols
    _, x, _ = lap.lapjv(np.ascontiguousarray(cost, dtype=np.float64), extend_cost=True,
                        cost_limit=cost_limit)
    rows = (x >= 0).nonzero()[0]
    cols = x[rows].astype(np.int64)
    keep = cost[rows, cols] <= cost_limit  # guards against round-off at the limit
    return rows[keep], cols[keep]


def gate_by_mahalanobis(cost: np.ndarray, squared_distance: np.ndarray,
                        threshold: float) -> np.ndarray:
    """Forbid (N, M) pairs whose squared Mahalanobis distance exceeds ``threshold``."""
    return np.where(squared_distance > threshold, FORBIDDEN, cost)


def forbid_class_changes(cost: np.ndarray, track_classes: np.ndarray,
                         det_classes: np.ndarray) -> np.ndarray:
    """Forbid pairs whose track (N,) and detection (M,) classes differ: (N, M) -> (N, M)."""
    return np.where(track_classes[:, None] != det_classes[None, :], FORBIDDEN, cost)

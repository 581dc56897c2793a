"""Average precision of one class, as the official ROAD/ROAD++ scorer computes it.

Detections of a class are pooled (over frames or videos), ranked with numpy's default argsort of
the negated scores, and matched greedily: each detection, in rank order, takes the best of the
still-unmatched ground truths of its group (frame or video) when that overlap reaches the
threshold. AP is the trapezoid area under the raw precision/recall curve that starts at
(recall 0, precision 1), times 100, with ``max(1, positives)`` positives.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ClassResult:
    """AP of one class and its raw curve (after each ranked detection)."""

    ap: float
    precision: np.ndarray  # (N,)
    recall: np.ndarray  # (N,)
    num_positives: int
    num_detections: int


def rank(scores: np.ndarray) -> np.ndarray:
    """The official ranking: numpy's default (unstable) argsort of the negated float64 scores."""
    return np.argsort(-np.asarray(scores, dtype=np.float64))


def greedy_true_positives(slot: np.ndarray, overlaps: np.ndarray, valid: np.ndarray,
                          threshold) -> np.ndarray:
    """Greedy matching of ranked detections against the ground truth of their group.

    slot: (N,) group of each detection in rank order, -1 when its group has no ground truth;
    overlaps: (N, M) overlap of each detection with the M padded ground truths of its group;
    valid: (G, M) which padded ground truths exist; threshold: a float, or (T,) thresholds
    matched independently in one pass. Returns (N,) bool true positives, or (T, N).

    Detections are processed in rounds: round r takes the r-th ranked detection of every group at
    once, which keeps the official per-detection order inside each group (groups never interact).
    """
    thresholds = np.atleast_1d(np.asarray(threshold, dtype=np.float64))  # (T,)
    num = len(slot)
    tp = np.zeros((len(thresholds), num), dtype=bool)
    inside = np.flatnonzero(slot >= 0)
    if inside.size and valid.size:
        remaining = np.repeat(valid[None], len(thresholds), axis=0)  # (T, G, M)
        by_group = inside[np.argsort(slot[inside], kind="stable")]
        groups = slot[by_group]
        starts = np.flatnonzero(np.diff(groups, prepend=-1))
        lengths = np.diff(starts, append=len(by_group))
        round_of = np.arange(len(by_group)) - np.repeat(starts, lengths)
        order = np.argsort(round_of, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(round_of))))
        for r in range(len(bounds) - 1):
            rows = by_group[order[bounds[r]:bounds[r + 1]]]  # at most one detection per group
            g = slot[rows]
            cand = np.where(remaining[:, g], overlaps[rows], -1.0)  # (T, k, M)
            best = np.argmax(cand, axis=2)  # (T, k)
            value = np.take_along_axis(cand, best[..., None], axis=2)[..., 0]
            t, k = np.nonzero(value >= thresholds[:, None])
            tp[t, rows[k]] = True
            remaining[t, g[k], best[t, k]] = False
    return tp if np.ndim(threshold) else tp[0]


def average_precision(tp_ranked: np.ndarray, num_positives: int) -> ClassResult:
    """AP (x100) from true-positive flags in rank order; the raw curve, trapezoid rule."""
    tp_ranked = np.asarray(tp_ranked, dtype=bool)
    positives = max(1, int(num_positives))
    n = len(tp_ranked)
    if n == 0:
        return ClassResult(0.0, np.zeros(0), np.zeros(0), int(num_positives), 0)
    tps = np.cumsum(tp_ranked, dtype=np.float64)
    precision = tps / np.arange(1, n + 1, dtype=np.float64)
    recall = tps / positives
    p = np.concatenate(([1.0], precision))
    r = np.concatenate(([0.0], recall))
    ap = float(np.sum((r[1:] - r[:-1]) * (p[1:] + p[:-1]) / 2.0) * 100.0)
    return ClassResult(ap, precision, recall, int(num_positives), n)


def pad_groups(group: np.ndarray, num_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Slots of grouped items: (K,) group ids -> (K,) position in group, (G, M) valid mask.

    Items keep their given order inside a group (stable), as the official code keeps them.
    """
    group = np.asarray(group, dtype=np.int64)
    counts = np.bincount(group, minlength=num_groups)
    width = int(counts.max()) if counts.size else 0
    order = np.argsort(group, kind="stable")
    starts = np.cumsum(counts) - counts
    position = np.empty(len(group), dtype=np.int64)
    position[order] = np.arange(len(group)) - np.repeat(starts, counts)
    valid = np.arange(width)[None, :] < counts[:, None]
    return position, valid

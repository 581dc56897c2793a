"""Walk two sets of boxes frame by frame with their IoU matrices, computing IoU only where boxes
can overlap.

A dense IoU matrix per frame costs n x m work although a box overlaps few others; here each
batch of frames finds, for every ground-truth box, the predictions of its frame whose left edge
lies within reach along x (one sort and two searches for all frames of the batch), computes IoU
for those pairs only, and scatters them into the frame's matrix. The values are those of
:func:`roadtrack.boxes.iou_matrix` to the bit (the same operations in the same order, pair by
pair).
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BATCH_ROWS = 1 << 18  # rows of both sides per batch of frames
PAIRS = 1 << 20  # candidate pairs computed at a time


def frame_overlaps(gt_frames: np.ndarray, gt_boxes: np.ndarray, pr_frames: np.ndarray,
                   pr_boxes: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield, for every frame either side has, in frame order: gt rows (n,), prediction rows (m,)
    (input order within the frame) and the pairs with IoU > 0 as local row (K,), local column
    (K,) and IoU (K,), rows nondecreasing. Boxes are (N, 4) x1 y1 x2 y2."""
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    pr_boxes = np.asarray(pr_boxes, dtype=np.float64).reshape(-1, 4)
    gt_order = np.argsort(gt_frames, kind="stable")
    pr_order = np.argsort(pr_frames, kind="stable")
    gf, pf = gt_frames[gt_order], pr_frames[pr_order]
    frames = np.union1d(gf, pf)
    g0, g1 = np.searchsorted(gf, frames, "left"), np.searchsorted(gf, frames, "right")
    p0, p1 = np.searchsorted(pf, frames, "left"), np.searchsorted(pf, frames, "right")
    rows_before = g0 + p0  # (F,) rows of both sides in earlier frames
    start = 0
    while start < len(frames):
        stop = int(np.searchsorted(rows_before, rows_before[start] + BATCH_ROWS, "right"))
        stop = min(max(stop, start + 1), len(frames))
        ga, gb, pa, pb = int(g0[start]), int(g1[stop - 1]), int(p0[start]), int(p1[stop - 1])
        gpos, ppos, iou = _overlaps(gf[ga:gb], gt_boxes[gt_order[ga:gb]], pf[pa:pb],
                                    pr_boxes[pr_order[pa:pb]])
        cut = np.searchsorted(gpos, np.r_[g0[start:stop], gb] - ga).tolist()
        for k in range(start, stop):
            a, b = cut[k - start], cut[k - start + 1]
            yield (gt_order[g0[k]:g1[k]], pr_order[p0[k]:p1[k]], gpos[a:b] - (g0[k] - ga),
                   ppos[a:b] - (p0[k] - pa), iou[a:b])
        start = stop


def dense(n: int, m: int, rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
          fill: float = 0.0) -> np.ndarray:
    """(n, m) matrix of ``fill`` with ``values`` at (rows, cols)."""
    out = np.full((n, m), fill)
    out[rows, cols] = values
    return out


def _overlaps(gf: np.ndarray, gb: np.ndarray, pf: np.ndarray, pb: np.ndarray):
    """Pairs with IoU > 0 between boxes of the same frame: (gt position (K,), prediction position
    (K,), IoU (K,)), in gt order. Inputs sorted by frame: frames (N,), boxes (N, 4)."""
    empty = np.zeros(0, dtype=np.int64)
    if not len(gf) or not len(pf):
        return empty, empty, np.zeros(0)
    reach = max(0.0, float((pb[:, 2] - pb[:, 0]).max()))  # a prediction's widest x extent
    # one integer key per (frame, x): frame rank, then the rank of x among all x values
    xs, inverse = np.unique(np.concatenate([pb[:, 0], gb[:, 0] - reach, gb[:, 2]]),
                            return_inverse=True)
    ranks = np.searchsorted(np.unique(np.concatenate([gf, pf])), np.concatenate([pf, gf, gf]))
    keys = ranks.astype(np.int64) * (len(xs) + 1) + inverse.reshape(-1)
    n_pr, n_gt = len(pf), len(gf)
    order = np.argsort(keys[:n_pr], kind="stable")  # predictions by (frame, left edge)
    sorted_keys = keys[:n_pr][order]
    lo = np.searchsorted(sorted_keys, keys[n_pr:n_pr + n_gt], "left")
    hi = np.searchsorted(sorted_keys, keys[n_pr + n_gt:], "right")
    counts = np.maximum(hi - lo, 0)
    ga, pa = gb.T.copy(), pb.T.copy()  # (4, N) contiguous coordinate rows
    out_g, out_p, out_iou = [], [], []
    ends = np.cumsum(counts)
    first = 0
    while first < n_gt:  # at most PAIRS candidates at a time
        last = int(np.searchsorted(ends, ends[first] - counts[first] + PAIRS, "right"))
        last = min(max(last, first + 1), n_gt)
        c = counts[first:last]
        g = np.repeat(np.arange(first, last), c)  # (K,)
        p = order[np.repeat(lo[first:last] - (np.cumsum(c) - c), c) + np.arange(len(g))]
        g, p, iou = _pair_iou(ga, pa, g, p)
        out_g.append(g)
        out_p.append(p)
        out_iou.append(iou)
        first = last
    return np.concatenate(out_g), np.concatenate(out_p), np.concatenate(out_iou)


def _pair_iou(a: np.ndarray, b: np.ndarray, i: np.ndarray, j: np.ndarray):
    """Pairs (i, j) of boxes a[:, i], b[:, j] ((4, N) x1 y1 x2 y2 rows) with IoU > 0 and their
    IoU: (i (K,), j (K,), IoU (K,)), computed with iou_matrix's arithmetic."""
    w = np.minimum(a[2, i], b[2, j])
    w -= np.maximum(a[0, i], b[0, j])
    keep = w > 0
    i, j, w = i[keep], j[keep], w[keep]
    h = np.minimum(a[3, i], b[3, j])
    h -= np.maximum(a[1, i], b[1, j])
    keep = h > 0
    i, j, w, h = i[keep], j[keep], w[keep], h[keep]
    inter = w * h
    area_a = np.maximum(a[2, i] - a[0, i], 0.0) * np.maximum(a[3, i] - a[1, i], 0.0)
    union = area_a + np.maximum(b[2, j] - b[0, j], 0.0) * np.maximum(b[3, j] - b[1, j], 0.0)
    union -= inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    keep = iou > 0
    return i[keep], j[keep], iou[keep]

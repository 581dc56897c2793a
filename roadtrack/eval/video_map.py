"""Video-mAP (ROADPP.md section 5): per-class AP of tubes under spatio-temporal IoU.

ST-IoU = temporal IoU (inclusive frame counts over first and last frames) x mean per-frame IoU
over the shared span, with the "+1 pixel" area convention. Two variants:

``official`` reproduces the official code, quirks included: 0 when either tube lacks a box at an
end of the shared span; boxes are taken by array position between those ends (a ground truth
with gaps compares misaligned boxes), and the detection's slice is cut to the ground truth's
length when longer (and the longer of the two slices to the shorter one in general).

``strict`` aligns boxes by frame number: the spatial mean runs over the ground truth's frames
inside the shared span (its gaps, unlabelled frames, are left out); a ground-truth frame the
detection has no box for counts as IoU 0. Same temporal IoU, same +1 convention.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxes import iou_pairs, scale_boxes
from ..io.annotations import Annotation
from ..io.submission import TubeSet
from .ap import ClassResult, average_precision, greedy_true_positives, pad_groups, rank

PROTOCOLS = ("official", "strict")


def truth_tubes(anno: Annotation, videos: list[str], label_type: str) -> TubeSet:
    """Ground-truth tubes of ``label_type`` for ``videos``, scaled to evaluation pixels."""
    width, height = anno.labels.eval_size
    out = TubeSet()
    for vi, name in enumerate(videos):
        video = anno.videos[name]
        tubes = [t for t in video.tubes.get(label_type, []) if len(t.rows)]  # no boxes: no match
        if not tubes:
            continue
        rows = np.concatenate([t.rows for t in tubes])  # every tube's rows, one gather
        ends = np.cumsum([len(t.rows) for t in tubes]).tolist()
        spans = list(zip([0] + ends[:-1], ends, strict=True))
        frames = video.frames[rows].astype(np.int64)
        boxes = scale_boxes(video.boxes[rows], width, height)
        out.video += [vi] * len(tubes)
        out.label += [t.label for t in tubes]
        out.score += [0.0] * len(tubes)
        out.frames += [frames[a:b] for a, b in spans]
        out.boxes += [boxes[a:b] for a, b in spans]
    return out


@dataclass
class _Flat:
    """Tubes concatenated: tube and frame of each row, boxes, first/last frames; ``keys``
    ``tube * stride + frame - base`` (sorted) once the stride is known."""

    tube: np.ndarray  # (R,) int64
    frames: np.ndarray  # (R,) int64
    boxes: np.ndarray  # (R, 4)
    first: np.ndarray  # (T,)
    last: np.ndarray  # (T,)
    keys: np.ndarray | None = None  # (R,) int64


def _flatten(tubes: TubeSet) -> _Flat:
    lengths = np.array([len(f) for f in tubes.frames], dtype=np.int64)
    frames = np.concatenate(tubes.frames) if len(tubes) else np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    return _Flat(tube=np.repeat(np.arange(len(tubes), dtype=np.int64), lengths), frames=frames,
                 boxes=np.concatenate(tubes.boxes) if len(tubes) else np.zeros((0, 4)),
                 first=frames[ends - lengths] if len(tubes) else frames,
                 last=frames[ends - 1] if len(tubes) else frames)


def _find(keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of each wanted key in sorted ``keys`` and whether it is there exactly."""
    at = np.searchsorted(keys, wanted)
    inside = at < len(keys)
    found = np.zeros(len(wanted), dtype=bool)
    found[inside] = keys[at[inside]] == wanted[inside]
    return at, found


def _segments(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(total,) segment id and (total,) position inside the segment, for segment sizes."""
    seg = np.repeat(np.arange(len(counts)), counts)
    pos = np.arange(len(seg)) - np.repeat(np.cumsum(counts) - counts, counts)
    return seg, pos


def st_iou(dets: TubeSet, truth: TubeSet, pd: np.ndarray, pg: np.ndarray,
           protocol: str = "official") -> np.ndarray:
    """ST-IoU of detection tube ``pd[i]`` with ground-truth tube ``pg[i]``: (P,) each -> (P,)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}")
    out = np.zeros(len(pd))
    if len(pd) == 0:
        return out
    d, g = _flatten(dets), _flatten(truth)
    base = int(min(d.first.min(), g.first.min()))  # frames may start below 1
    stride = int(max(d.last.max(), g.last.max())) - base + 2
    d.keys = d.tube * stride + (d.frames - base)
    g.keys = g.tube * stride + (g.frames - base)
    start = np.maximum(d.first[pd], g.first[pg])
    end = np.minimum(d.last[pd], g.last[pg])
    temporal = (end - start + 1) / (np.maximum(d.last[pd], g.last[pg])
                                    - np.minimum(d.first[pd], g.first[pg]) + 1)
    ok = end >= start
    if protocol == "official":
        g0, f0 = _find(g.keys, pg * stride + start - base)
        g1, f1 = _find(g.keys, pg * stride + end - base)
        d0, f2 = _find(d.keys, pd * stride + start - base)
        d1, f3 = _find(d.keys, pd * stride + end - base)
        ok &= f0 & f1 & f2 & f3
        # boxes by array position between the shared ends; the longer slice is cut
        counts = np.where(ok, np.minimum(g1 - g0, d1 - d0) + 1, 0)
        seg, pos = _segments(counts)
        ious = iou_pairs(d.boxes[d0[seg] + pos], g.boxes[g0[seg] + pos], plus_one=True)
    else:
        lo = np.searchsorted(g.keys, pg * stride + start - base)
        hi = np.searchsorted(g.keys, pg * stride + end - base, side="right")
        counts = np.where(ok, hi - lo, 0)
        seg, pos = _segments(counts)
        rows = lo[seg] + pos
        frames = g.keys[rows] - pg[seg] * stride  # minus base, as in the keys
        at, found = _find(d.keys, pd[seg] * stride + frames)
        ious = np.zeros(len(rows))
        ious[found] = iou_pairs(d.boxes[at[found]], g.boxes[rows[found]], plus_one=True)
    sums = np.bincount(seg, weights=ious, minlength=len(pd))
    has = counts > 0
    out[has] = temporal[has] * sums[has] / counts[has]
    return out


def candidate_pairs(dets: TubeSet, truth: TubeSet, num_videos: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Every (detection, ground truth) pair of the same video and class: (P,), (P,)."""
    stride = num_videos + 1
    det_group = np.asarray(dets.label, dtype=np.int64) * stride + np.asarray(dets.video,
                                                                             dtype=np.int64)
    gt_group = np.asarray(truth.label, dtype=np.int64) * stride + np.asarray(truth.video,
                                                                             dtype=np.int64)
    order = np.argsort(gt_group, kind="stable")
    lo = np.searchsorted(gt_group[order], det_group, side="left")
    hi = np.searchsorted(gt_group[order], det_group, side="right")
    seg, pos = _segments(hi - lo)
    return seg, order[lo[seg] + pos]


def video_ap(dets: TubeSet, truth: TubeSet, num_classes: int, num_videos: int,
             thresholds: list[float], protocol: str = "official") -> dict[float, list[ClassResult]]:
    """Per-class AP of one label type at each threshold (ST-IoU computed once per pair)."""
    pd, pg = candidate_pairs(dets, truth, num_videos)
    overlap = st_iou(dets, truth, pd, pg, protocol)
    det_label = np.asarray(dets.label, dtype=np.int64).reshape(-1)
    det_video = np.asarray(dets.video, dtype=np.int64).reshape(-1)
    det_score = np.asarray(dets.score, dtype=np.float64).reshape(-1)
    gt_label = np.asarray(truth.label, dtype=np.int64).reshape(-1)
    gt_video = np.asarray(truth.video, dtype=np.int64).reshape(-1)
    rank_pos = np.zeros(len(det_label), dtype=np.int64)
    gt_pos = np.zeros(len(gt_label), dtype=np.int64)
    pair_class = det_label[pd]
    by_class = np.argsort(pair_class, kind="stable")
    bounds = np.searchsorted(pair_class[by_class], np.arange(num_classes + 1))
    out: dict[float, list[ClassResult]] = {t: [] for t in thresholds}
    for c in range(num_classes):
        det_rows = np.flatnonzero(det_label == c)
        gt_rows = np.flatnonzero(gt_label == c)
        ranked = det_rows[rank(det_score[det_rows])]
        rank_pos[ranked] = np.arange(len(ranked))
        slot_of_video = np.full(num_videos, -1, dtype=np.int64)
        used = np.unique(gt_video[gt_rows])
        slot_of_video[used] = np.arange(len(used))
        gt_pos[gt_rows], valid = pad_groups(slot_of_video[gt_video[gt_rows]], len(used))
        slot = slot_of_video[det_video[ranked]]
        overlaps = np.full((len(ranked), valid.shape[1]), -1.0)
        pairs = by_class[bounds[c]:bounds[c + 1]]
        overlaps[rank_pos[pd[pairs]], gt_pos[pg[pairs]]] = overlap[pairs]
        tps = greedy_true_positives(slot, overlaps, valid, list(thresholds))  # (T, N)
        for t, tp in zip(thresholds, tps, strict=True):
            out[t].append(average_precision(tp, len(gt_rows)))
    return out

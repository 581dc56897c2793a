"""Frame-mAP (ROADPP.md section 5): per-class AP of frame-level detections at IoU 0.5.

Only annotated frames count (key ``video + '%05d' % n``); detections of other frames are ignored;
overlap is plain 2-D IoU in 840x600 evaluation pixels. Levels: ``agent_ness`` (every box, one
class) and the five label types.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxes import iou_pairs, scale_boxes
from ..io.annotations import Annotation
from ..labels import LABEL_TYPES
from .ap import ClassResult, average_precision, greedy_true_positives, pad_groups, rank

FRAME_LEVELS = ("agent_ness",) + LABEL_TYPES


def frame_key(video: str, frame: int) -> str:
    """The official frame key: video name and 5-digit 1-based frame number."""
    return f"{video}{frame:05d}"


@dataclass
class FrameTruth:
    """Ground-truth boxes of the annotated frames of some videos, in evaluation pixels."""

    keys: list[str]  # (F,) frame keys; position = frame index
    index: dict[str, int]  # key -> frame index
    frame: np.ndarray  # (G,) frame index of each box
    boxes: np.ndarray  # (G, 4) x1 y1 x2 y2 in evaluation pixels
    labels: dict[str, np.ndarray]  # level -> (G, C) bool

    def num_classes(self, level: str) -> int:
        return self.labels[level].shape[1]


@dataclass
class FrameDetections:
    """Detections of one level in the official pooled order (frames as given, rows as given)."""

    frame: np.ndarray  # (N,) frame index into FrameTruth.keys
    label: np.ndarray  # (N,) class id
    boxes: np.ndarray  # (N, 4) evaluation pixels
    scores: np.ndarray  # (N,) float64


def build_frame_truth(anno: Annotation, videos: list[str]) -> FrameTruth:
    """Boxes of the annotated frames of ``videos`` (in that order, frames ascending)."""
    width, height = anno.labels.eval_size
    keys: list[str] = []
    frames, boxes = [], []
    labels: dict[str, list[np.ndarray]] = {t: [] for t in LABEL_TYPES}
    for name in videos:
        video = anno.videos[name]
        annotated = video.annotated_frames()
        base = len(keys)
        keys.extend(frame_key(name, int(n)) for n in annotated)
        lookup = np.full(video.numf + 1, -1, dtype=np.int64)
        lookup[annotated] = base + np.arange(len(annotated))
        fi = lookup[video.frames]
        keep = fi >= 0
        frames.append(fi[keep])
        boxes.append(scale_boxes(video.boxes[keep], width, height))
        for t in LABEL_TYPES:
            labels[t].append(video.labels[t][keep])
    frame = np.concatenate(frames) if frames else np.zeros(0, dtype=np.int64)
    out_labels = {"agent_ness": np.ones((len(frame), 1), dtype=bool)}
    for t in LABEL_TYPES:
        n = anno.labels.num_classes(t)
        out_labels[t] = np.concatenate(labels[t]) if labels[t] else np.zeros((0, n), dtype=bool)
    return FrameTruth(keys=keys, index={k: i for i, k in enumerate(keys)}, frame=frame,
                      boxes=np.concatenate(boxes) if boxes else np.zeros((0, 4)),
                      labels=out_labels)


def class_ap(truth_frame: np.ndarray, truth_boxes: np.ndarray, dets: FrameDetections,
             rows: np.ndarray, num_frames: int, threshold: float) -> ClassResult:
    """AP of one class: ground truth (G,) frame, (G, 4) boxes; detection ``rows`` (K,) of
    ``dets`` in pooled order."""
    rows = rows[rank(dets.scores[rows])]  # (K,) in rank order
    frame = dets.frame[rows]
    is_used = np.zeros(num_frames, dtype=bool)
    is_used[truth_frame] = True
    used = np.flatnonzero(is_used)  # frames with ground truth of the class, ascending
    slot_of_frame = np.full(num_frames, -1, dtype=np.int64)
    slot_of_frame[used] = np.arange(len(used))
    group = slot_of_frame[truth_frame]
    position, valid = pad_groups(group, len(used))
    padded = np.zeros(valid.shape + (4,))
    padded[group, position] = truth_boxes
    inside = np.flatnonzero(slot_of_frame[frame] >= 0)  # only these can match
    slot = slot_of_frame[frame[inside]]
    m = valid.shape[1]
    tp = np.zeros(len(rows), dtype=bool)
    if inside.size and m:
        boxes = dets.boxes[rows[inside]]  # (I, 4)
        ious = iou_pairs(np.repeat(boxes, m, axis=0), padded[slot].reshape(-1, 4))
        overlaps = np.where(valid[slot], ious.reshape(-1, m), -1.0)  # (I, m)
        tp[inside] = greedy_true_positives(slot, overlaps, valid, threshold)
    return average_precision(tp, len(truth_frame))


def level_ap(truth: FrameTruth, level: str, dets: FrameDetections,
             threshold: float = 0.5) -> list[ClassResult]:
    """Per-class AP of one level (every class of the level, in label order)."""
    num_classes = truth.labels[level].shape[1]
    gt_rows, gt_class = np.nonzero(truth.labels[level])  # row-major: rows ascending per class
    gt_by_class = gt_rows[np.argsort(gt_class, kind="stable")]
    gt_bounds = np.searchsorted(np.sort(gt_class), np.arange(num_classes + 1))
    # a stable sort keeps the pooled order inside each class; int16 sorts by radix
    small = dets.label.astype(np.int16 if num_classes < 2 ** 15 else np.int64)
    by_class = np.argsort(small, kind="stable")
    bounds = np.searchsorted(small[by_class], np.arange(num_classes + 1))
    results = []
    for c in range(num_classes):
        gt = gt_by_class[gt_bounds[c]:gt_bounds[c + 1]]
        results.append(class_ap(truth.frame[gt], truth.boxes[gt], dets,
                                by_class[bounds[c]:bounds[c + 1]], len(truth.keys), threshold))
    return results


def frame_map(truth: FrameTruth, dets: dict[str, FrameDetections],
              threshold: float = 0.5) -> dict[str, list[ClassResult]]:
    """Per-class results of every level present in ``dets`` (official level order)."""
    return {level: level_ap(truth, level, dets[level], threshold)
            for level in FRAME_LEVELS if level in dets}

"""What the ROAD evaluators read: frame-level detections and tubes, from files or a run folder.

Frame-level detections (the official baseline's pickle)::

    dets[level][video + '%05d' % frame][class_id] = array (k, 5): x1 y1 x2 y2 score, 840x600 px

``level`` is ``agent_ness`` (one class) or a label type; a frame's value may be a list of
per-class arrays or one (C, k, 5) array. Detections of frames that are not annotated are ignored.

From a run folder, ``detections/<video>.npz`` gives every detection a score for every class:
``agent_ness`` = ``scores`` (agentness); ``agent``/``action``/``loc`` = agentness x class
probability; ``duplex`` = agentness x agent x action probability of its children; ``triplet`` =
agentness x agent x action x loc probability. Boxes are scaled from source pixels to 840x600.
Per frame and class the best ``top_k`` entries reaching ``min_score`` are kept.

Event artifacts (``events/<video>.json``, written by the event stage, see ``roadtrack.events``)
become tubes exactly as ``roadtrack submit`` converts them (boxes scaled to 840x600).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..boxes import scale_boxes
from ..errors import UserError
from ..io.artifacts import artifact_path, finished_videos, load_stage
from ..io.runs import DETECTIONS, EVENTS
from ..io.submission import build_submission
from ..labels import BOX_TYPES, LabelSpace
from .frame_map import FRAME_LEVELS, FrameDetections, FrameTruth, frame_key


def _level_classes(labels: LabelSpace, level: str) -> int:
    return 1 if level == "agent_ness" else labels.num_classes(level)


def _frame_arrays(value, num_classes: int) -> list[np.ndarray]:
    """One frame's value (C per-class arrays, or one (C, k, 5) array) -> C (k, 5) arrays."""
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) != num_classes:
        raise ValueError
    return [np.asarray(a, dtype=np.float64).reshape(-1, 5) for a in value]


def _pool_level(per_frame: dict, truth: FrameTruth, num_classes: int):
    """(kept frame indices, rows per class (F*C,), (R, 5) table) in the dict's order.

    The fast paths concatenate everything at once; any shape surprise falls back to checking
    frame by frame (which names the frame when it is really broken).
    """
    frames, values = [], []
    index = truth.index
    for key, value in per_frame.items():
        fi = index.get(key)
        if fi is not None:
            frames.append(fi)
            values.append(value)
    shape = getattr(values[0], "shape", None) if values else None
    if shape is not None and len(shape) == 3 and shape[0] == num_classes and shape[2] == 5 \
            and all(type(v) is np.ndarray and v.shape == shape for v in values):
        # every frame one (C, k, 5) array with the same k: (F*C, k, 5) -> class-major rows
        table = np.concatenate(values).reshape(-1, 5).astype(np.float64, copy=False)
        return frames, np.full(len(values) * num_classes, shape[1], dtype=np.int64), table
    counts, blocks = [], []
    for value in values:
        if isinstance(value, np.ndarray) and value.ndim == 3 and value.shape[0] == num_classes:
            blocks.append(value.reshape(-1, value.shape[2]))  # (C, k, 5) -> class-major rows
            counts.extend([value.shape[1]] * num_classes)
        elif isinstance(value, (list, tuple)) and len(value) == num_classes:
            blocks.extend(value)
            counts.extend(map(len, value))
        else:
            raise ValueError
    table = np.concatenate(blocks).astype(np.float64, copy=False) if blocks else \
        np.zeros((0, 5))
    if table.ndim != 2 or table.shape[1] != 5 or len(table) != sum(counts):
        raise ValueError
    return frames, counts, table


def _pool_level_checked(per_frame: dict, truth: FrameTruth, num_classes: int, level: str,
                        path):
    frames: list[int] = []
    counts: list[int] = []
    blocks: list[np.ndarray] = []
    for key, value in per_frame.items():
        fi = truth.index.get(key)
        if fi is None:
            continue
        try:
            arrays = _frame_arrays(value, num_classes)
        except (ValueError, TypeError, OverflowError):
            raise UserError(f"frame detections: {level}[{key!r}] is not {num_classes} "
                            "(k, 5) arrays of x1 y1 x2 y2 score", path) from None
        frames.append(fi)
        blocks.extend(arrays)
        counts.extend(len(a) for a in arrays)
    table = np.concatenate(blocks) if blocks else np.zeros((0, 5))
    return frames, counts, table


def frame_dets_from_pickle(dets, truth: FrameTruth, labels: LabelSpace,
                           path: str | Path) -> dict[str, FrameDetections]:
    """Convert the baseline's nested dict into pooled arrays per level (official order)."""
    if not isinstance(dets, dict):
        raise UserError("frame detections: top level is not a dict of levels", path)
    unknown = [k for k in dets if k not in FRAME_LEVELS]
    if unknown:
        raise UserError(f"frame detections: unknown levels {unknown} (expected "
                        f"{', '.join(FRAME_LEVELS)})", path)
    out = {}
    for level, per_frame in dets.items():
        if not isinstance(per_frame, dict):
            raise UserError(f"frame detections: {level} is not a dict of frames", path)
        num_classes = _level_classes(labels, level)
        try:
            frames, counts, table = _pool_level(per_frame, truth, num_classes)
        except (ValueError, TypeError, OverflowError):
            frames, counts, table = _pool_level_checked(per_frame, truth, num_classes, level,
                                                        path)
        if not np.isfinite(table).all():
            raise UserError(f"frame detections: {level} holds NaN or infinite values", path)
        counts = np.asarray(counts, dtype=np.int64)
        per_frame_rows = counts.reshape(-1, num_classes).sum(axis=1)
        out[level] = FrameDetections(
            frame=np.repeat(np.asarray(frames, dtype=np.int64), per_frame_rows),
            label=np.repeat(np.tile(np.arange(num_classes), len(frames)), counts),
            boxes=table[:, :4], scores=table[:, 4].copy())
    return out


def level_scores(det: dict[str, np.ndarray], labels: LabelSpace) -> dict[str, np.ndarray]:
    """Per-level (N, C) scores of detection rows (see the module docstring)."""
    agentness = det["scores"].astype(np.float64)[:, None]
    probs = {t: det[t].astype(np.float64) for t in BOX_TYPES}
    for t in probs:
        if probs[t].shape[1] != labels.num_classes(t):
            raise UserError(f"detections have {probs[t].shape[1]} {t} classes, the annotation "
                            f"has {labels.num_classes(t)}")
    duplex = labels.duplex_children()
    triplet = labels.triplet_children()
    return {
        "agent_ness": agentness,
        "agent": agentness * probs["agent"],
        "action": agentness * probs["action"],
        "loc": agentness * probs["loc"],
        "duplex": agentness * probs["agent"][:, duplex[:, 0]] * probs["action"][:, duplex[:, 1]],
        "triplet": agentness * probs["agent"][:, triplet[:, 0]]
        * probs["action"][:, triplet[:, 1]] * probs["loc"][:, triplet[:, 2]],
    }


def top_per_frame(frame: np.ndarray, scores: np.ndarray, top_k: int,
                  min_score: float) -> np.ndarray:
    """(N, C) mask of the entries kept: per frame and class the ``top_k`` best scores that reach
    ``min_score`` (``top_k`` 0 keeps every entry above the floor). ``frame`` (N,) is sorted."""
    keep = scores >= min_score
    if top_k <= 0:
        return keep
    rows, cls = np.nonzero(keep)  # row-major
    group = cls * (int(frame.max(initial=0)) + 1) + frame[rows]
    order = np.lexsort((-scores[rows, cls], group))  # by group, best score first
    sorted_group = group[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_group)) + 1]
    lengths = np.diff(np.r_[starts, len(order)])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(starts, lengths)
    drop = rank >= top_k
    keep[rows[drop], cls[drop]] = False
    return keep


def frame_dets_from_run(run: str | Path, videos: list[str], truth: FrameTruth,
                        labels: LabelSpace, top_k: int = 10,
                        min_score: float = 0.01) -> dict[str, FrameDetections]:
    """Every detection row scores every class; per frame and class the ``top_k`` best with
    score >= ``min_score`` are kept (bounds memory on full-size runs). Videos in order, frames
    ascending, rows in artifact order."""
    width_eval, height_eval = labels.eval_size
    # per level: (frame indices, classes, boxes, scores) of each video
    parts: dict[str, list[tuple[np.ndarray, ...]]] = {level: [] for level in FRAME_LEVELS}
    for video in videos:
        det = load_stage(run, DETECTIONS, video)
        order = np.argsort(det["frames"], kind="stable")
        frames = det["frames"][order].astype(np.int64)
        try:
            scores = level_scores({k: det[k][order] for k in ("scores", *BOX_TYPES)},
                                  labels)
        except UserError as err:
            raise UserError(str(err), artifact_path(run, DETECTIONS, video)) from None
        boxes = scale_boxes(det["boxes"][order], width_eval / float(det["width"]),
                            height_eval / float(det["height"]))
        fi = np.array([truth.index.get(frame_key(video, int(n)), -1) for n in frames],
                      dtype=np.int64)
        inside = fi >= 0
        for level, s in scores.items():  # s: (N, C)
            rows, cls = np.nonzero(top_per_frame(fi[inside], s[inside], top_k, min_score))
            parts[level].append((fi[inside][rows], cls, boxes[inside][rows],
                                 s[inside][rows, cls]))
    out = {}
    for level, chunks in parts.items():
        if chunks:
            f, c, b, s = (np.concatenate(x) for x in zip(*chunks, strict=True))
            out[level] = FrameDetections(frame=f, label=c, boxes=b.reshape(-1, 4), scores=s)
    return out


def submission_from_run(run: str | Path, videos: list[str]) -> dict | None:
    """The run's event artifacts as a submission (``roadtrack submit``'s conversion), or None
    when the run has no events at all (a detect-only run)."""
    if not finished_videos(run, EVENTS):
        return None
    try:
        return build_submission(run, videos)
    except (KeyError, TypeError, ValueError, ZeroDivisionError, AttributeError) as err:
        raise UserError(f"events artifacts lack or have a bad {err}", Path(run) / EVENTS) \
            from None

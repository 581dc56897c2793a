"""Track a whole sequence of detections given as flat per-row arrays (a det.txt or an artifact)."""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..boxes import xyah_to_xyxy, xyxy_to_xyah
from ..errors import UserError
from .appearance import normalize
from .config import TrackerConfig
from .tracker import Tracker, input_score_range, usable_rows


@dataclass
class SequenceTracks:
    """Track rows of one sequence, sorted by frame then track id."""

    det_index: np.ndarray  # (K,) int64 row of the input detection each track row came from
    boxes: np.ndarray  # (K, 4) xyxy the track reports (the detection or its Kalman estimate)
    track_ids: np.ndarray  # (K,) int64, 1..num_tracks
    frames: np.ndarray  # (K,) int64
    num_frames: int  # frames stepped through, empty ones included
    seconds: float  # time spent in Tracker.update

    @property
    def num_tracks(self) -> int:
        return int(self.track_ids.max()) if len(self.track_ids) else 0


def check_frames(frames: np.ndarray, source: str | None = None) -> None:
    """Frame numbers must be integers >= 1 (a file that breaks this is unusable, not noisy)."""
    frames_f = np.asarray(frames, dtype=np.float64)
    if len(frames_f) and not (np.isfinite(frames_f).all() and (frames_f == np.round(frames_f)).all()
                              and frames_f.min() >= 1):
        raise UserError("frame numbers must be integers >= 1", source)


def valid_rows(frames: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
               source: str | None = None, features: np.ndarray | None = None) -> np.ndarray:
    """(N,) bool: rows that can be tracked. Warns once with the count of skipped rows; bad frame
    numbers raise UserError (see :func:`check_frames`)."""
    check_frames(frames, source)
    ok = usable_rows(boxes, scores, -np.inf) & np.isfinite(scores)
    if features is not None:
        ok &= np.isfinite(features).all(axis=1)
    if not ok.all():
        first = int(np.flatnonzero(~ok)[0])
        warnings.warn(f"{source or 'detections'}: skipped {int((~ok).sum())} rows with non-finite "
                      f"values or boxes without area (first at row {first})", stacklevel=2)
    return ok


def track_sequence(frames: np.ndarray, boxes: np.ndarray, scores: np.ndarray | None = None,
                   features: np.ndarray | None = None, classes: np.ndarray | None = None,
                   config: TrackerConfig | None = None, source: str | None = None,
                   progress: Callable[[int], None] | None = None,
                   camera_motion: np.ndarray | None = None,
                   score_range: tuple[float, float] | None = None) -> SequenceTracks:
    """Run the tracker over frames 1 to the last detection's frame, empty frames included
    (a run of them while no track is alive is passed over at once: stepping through it would
    change nothing).

    frames (N,) 1-based, any order; boxes (N, 4) x1 y1 x2 y2; scores (N,); features (N, D) or
    None; classes (N,) or None. Rows that cannot be tracked are skipped with one warning.
    With ``config.backfill`` a confirmed track also keeps the rows of its tentative frames.
    ``progress(k)`` is called now and then with the frames done since the last call.
    ``camera_motion`` (F, 2, 3): row n-1 is the affine from frame n-1's pixels to frame n's
    (``roadtrack.tracking.cmc``), F at least the last frame; it moves the tracks before each step.
    ``score_range`` (lo, hi) places the thresholds of a ``score_range: input`` config (default:
    the range of these scores, see :func:`~roadtrack.tracking.tracker.input_score_range`).
    """
    config = config or TrackerConfig()
    n = len(frames)
    frames = np.asarray(frames).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.ones(n) if scores is None else np.asarray(scores, dtype=np.float64)
    if features is not None and features.ndim == 2 and features.shape[1] == 0:
        features = None
    ok = valid_rows(frames, boxes, scores, source, features)
    if score_range is None:
        score_range = input_score_range(scores[ok])
    tracker = Tracker(config, 0 if features is None else features.shape[1], score_range)
    rows = (ok & (scores >= tracker.thresholds.min)).nonzero()[0]
    rows = rows[np.argsort(frames[rows], kind="stable")]  # input rows in frame order
    frame_of = frames[rows].astype(np.int64)
    sorted_boxes, sorted_scores = boxes[rows], scores[rows]
    sorted_xyah = xyxy_to_xyah(sorted_boxes)
    sorted_feats = None if features is None or not tracker.use_appearance \
        else normalize(features[rows])
    sorted_classes = None if classes is None else np.asarray(classes, dtype=np.int64)[rows]

    ids = np.full(len(rows), -1, dtype=np.int64)
    confirmed = np.zeros(len(rows), dtype=bool)
    kalman = config.output_box == "kalman"
    estimates: list[tuple[int, np.ndarray, np.ndarray]] = []  # (first row, rows, xyah) per frame
    first, last = 1, int(frames.max()) if n else 0
    present, starts = np.unique(frame_of, return_index=True)  # (P,) frames with rows, first rows
    present, bounds = present.tolist(), np.append(starts, len(frame_of)).tolist()
    step = tracker.step
    start_time = time.perf_counter()
    done, frame, j = 0, first, 0  # present[j]: the next frame with rows
    while frame <= last:
        a = bounds[j]
        b = bounds[j + 1] if j < len(present) and present[j] == frame else a
        if a == b and tracker.idle:  # nothing to carry over: on to the next frame with rows
            skipped = (present[j] if j < len(present) else last + 1) - frame
            tracker.skip(skipped)
            frame, done = frame + skipped, done + skipped
            continue
        if camera_motion is not None:
            tracker.compensate(camera_motion[frame - first])
        ids[a:b], confirmed[a:b] = step(
            sorted_boxes[a:b], sorted_xyah[a:b], sorted_scores[a:b],
            None if sorted_feats is None else sorted_feats[a:b],
            None if sorted_classes is None else sorted_classes[a:b])
        if kalman:
            estimates.append((a, *tracker.estimates))
        j, frame, done = j + (a < b), frame + 1, done + 1
        if progress is not None and done >= 256:
            progress(done)
            done = 0
    seconds = time.perf_counter() - start_time
    if progress is not None and done:
        progress(done)
    out_boxes = _with_estimates(sorted_boxes, estimates) if kalman else sorted_boxes
    return _collect(rows, frame_of, out_boxes, ids, confirmed, tracker.next_id, config.backfill,
                    last - first + 1, seconds)


def _with_estimates(boxes: np.ndarray, estimates: list) -> np.ndarray:
    """boxes (N, 4) xyxy with the rows the tracks took replaced by the tracks' Kalman estimates;
    ``estimates``: per frame (its first row, matched rows (K,) within it, xyah (K, 4))."""
    if not estimates:
        return boxes
    starts, local, xyah = zip(*estimates, strict=True)
    counts = [len(k) for k in local]
    at = np.concatenate(local) + np.repeat(np.asarray(starts, dtype=np.int64), counts)
    out = boxes.copy()
    out[at] = xyah_to_xyxy(np.concatenate(xyah))
    return out


def _collect(rows, frame_of, boxes, ids, confirmed, next_id, backfill, num_frames, seconds):
    """Keep the rows of confirmed tracks, renumber the tracks 1..n, sort by frame and id."""
    ever = np.zeros(next_id, dtype=bool)
    ever[ids[confirmed]] = True
    keep = confirmed | (backfill & (ids >= 0) & ever[np.maximum(ids, 0)])
    _, renumbered = np.unique(ids[keep], return_inverse=True)
    track_ids = renumbered.reshape(-1).astype(np.int64) + 1
    frames, det_index = frame_of[keep], rows[keep]
    order = np.lexsort((track_ids, frames))
    return SequenceTracks(det_index=det_index[order], boxes=boxes[keep][order],
                          track_ids=track_ids[order],
                          frames=frames[order], num_frames=num_frames, seconds=seconds)

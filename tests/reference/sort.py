"""A SORT-style reference tracker for benchmarks: one filterpy KalmanFilter per object plus lap.

Follows Bewley et al. 2016 ("Simple Online and Realtime Tracking") as in their public code: state
(cx, cy, area, ratio, vx, vy, va), IoU association with the Hungarian method (threshold 0.3),
tracks reported once matched 3 frames in a row after birth (or in the first 3 frames) and
dropped after 1 miss. Each frame takes the steps of SORT's ``Sort.update`` (NaN predictions
dropped through a masked array, the one-to-one shortcut before the Hungarian method, every
track's box read back for output).
Used by ``tools/bench_tracker.py`` (speed) and ``tools/eval_tracker.py`` (accuracy) as the
baseline measured in the same process; not part of the package.
"""
from __future__ import annotations

import lap
import numpy as np
from filterpy.kalman import KalmanFilter

from roadtrack.boxes import iou_matrix


def _to_z(box: np.ndarray) -> np.ndarray:
    w, h = box[2] - box[0], box[3] - box[1]
    return np.array([[box[0] + w / 2], [box[1] + h / 2], [w * h], [w / h]])


def _to_box(x: np.ndarray) -> np.ndarray:
    w = np.sqrt(max(x[2, 0] * x[3, 0], 0.0))
    h = x[2, 0] / w if w > 0 else 0.0
    return np.array([x[0, 0] - w / 2, x[1, 0] - h / 2, x[0, 0] + w / 2, x[1, 0] + h / 2])


class _Object:
    """One tracked object with its own filterpy filter (constant velocity, no ratio velocity)."""

    def __init__(self, box: np.ndarray, track_id: int):
        kf = KalmanFilter(dim_x=7, dim_z=4)
        kf.F = np.eye(7)
        kf.F[0, 4] = kf.F[1, 5] = kf.F[2, 6] = 1
        kf.H = np.eye(4, 7)
        kf.R[2:, 2:] *= 10.0
        kf.P[4:, 4:] *= 1000.0  # velocities unknown at birth
        kf.P *= 10.0
        kf.Q[-1, -1] *= 0.01
        kf.Q[4:, 4:] *= 0.01
        kf.x[:4] = _to_z(box)
        self.kf, self.id = kf, track_id
        self.time_since_update = 0
        self.hit_streak = 0

    def predict(self) -> np.ndarray:
        if self.kf.x[6, 0] + self.kf.x[2, 0] <= 0:
            self.kf.x[6, 0] = 0.0
        self.kf.predict()
        if self.time_since_update > 0:
            self.hit_streak = 0
        self.time_since_update += 1
        return _to_box(self.kf.x)

    def update(self, box: np.ndarray) -> None:
        self.time_since_update = 0
        self.hit_streak += 1
        self.kf.update(_to_z(box))


class SortReference:
    """``update(boxes (M, 4) xyxy) -> track_ids (M,)``, -1 for detections not reported."""

    def __init__(self, max_age: int = 1, min_hits: int = 3, iou_threshold: float = 0.3):
        self.max_age, self.min_hits, self.iou_threshold = max_age, min_hits, iou_threshold
        self.objects: list[_Object] = []
        self.frame_count = 0
        self.next_id = 1

    def update(self, boxes: np.ndarray) -> np.ndarray:
        """One frame, in the steps of SORT's ``Sort.update``."""
        self.frame_count += 1
        predicted = np.zeros((len(self.objects), 4))
        for t, obj in enumerate(self.objects):
            predicted[t] = obj.predict()
        bad = np.isnan(predicted).any(axis=1)
        predicted = np.ma.compress_rows(np.ma.masked_invalid(predicted))
        self.objects = [o for o, b in zip(self.objects, bad, strict=True) if not b]
        pairs = self._associate(boxes, predicted)
        out = np.full(len(boxes), -1, dtype=np.int64)
        matched_det = np.zeros(len(boxes), dtype=bool)
        for d, t in pairs:
            self.objects[t].update(boxes[d])
            matched_det[d] = True
            if self._reported(self.objects[t]):
                out[d] = self.objects[t].id
        for d in np.flatnonzero(~matched_det):
            obj = _Object(boxes[d], self.next_id)
            self.next_id += 1
            self.objects.append(obj)
            if self._reported(obj):
                out[d] = obj.id
        kept = []
        for obj in self.objects:  # SORT reads every track's state each frame for its output
            obj.state = _to_box(obj.kf.x)
            if obj.time_since_update <= self.max_age:
                kept.append(obj)
        self.objects = kept
        return out

    def _associate(self, boxes: np.ndarray, predicted: np.ndarray) -> list[tuple[int, int]]:
        """(detection, track) pairs with IoU >= the threshold; SORT's one-to-one shortcut, else
        the Hungarian method on -IoU."""
        if not len(boxes) or not len(predicted):
            return []
        iou = iou_matrix(boxes, predicted)  # (M, T)
        above = (iou > self.iou_threshold).astype(np.int32)
        if above.sum(1).max() == 1 and above.sum(0).max() == 1:
            pairs = np.stack(np.where(above), axis=1)
        else:
            _, x, _ = lap.lapjv(-iou, extend_cost=True)
            pairs = np.array([[d, t] for d, t in enumerate(x) if t >= 0]).reshape(-1, 2)
        return [(int(d), int(t)) for d, t in pairs if iou[d, t] >= self.iou_threshold]

    def _reported(self, obj: _Object) -> bool:
        return obj.hit_streak >= self.min_hits or self.frame_count <= self.min_hits


def main(argv=None) -> None:
    """Whole-process baseline: ``python -m tests.reference.sort DETS_DIR OUT_DIR`` tracks every
    ``<seq>/det/det.txt`` and writes ``OUT_DIR/<seq>.txt``, as SORT's own script does."""
    import sys
    from pathlib import Path

    dets_dir, out_dir = (Path(a) for a in (argv or sys.argv[1:]))
    out_dir.mkdir(parents=True, exist_ok=True)
    for det_file in sorted(dets_dir.glob("*/det/det.txt")):
        rows = np.loadtxt(det_file, delimiter=",", ndmin=2)
        tracker = SortReference()
        lines = []
        for frame in range(1, int(rows[:, 0].max()) + 1):
            dets = rows[rows[:, 0] == frame, 2:6].copy()
            dets[:, 2:4] += dets[:, 0:2]
            for box, tid in zip(dets, tracker.update(dets), strict=True):
                if tid >= 0:
                    lines.append(f"{frame},{tid},{box[0]:.2f},{box[1]:.2f},{box[2] - box[0]:.2f},"
                                 f"{box[3] - box[1]:.2f},1,-1,-1,-1\n")
        (out_dir / f"{det_file.parent.parent.name}.txt").write_text("".join(lines))


if __name__ == "__main__":
    main()

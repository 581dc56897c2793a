"""``roadtrack submit``: a run's events as a ROAD++ challenge pickle.

    {label_type: {video: [tube, ...]}}   for agent, action, loc, duplex and triplet
    tube = {'label_id': int, 'score': float, 'scores': (n,) float32, 'boxes': (n, 4) float32
            x1 y1 x2 y2 in 840x600 pixels, 'frames': (n,) int32 contiguous 1-based frames}

Agent (Track 1) and triplet (Track 2) are the challenge's tracks; the other three serve a full
local evaluation. Every video asked for is present (an empty list where nothing was found).
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..io.artifacts import finished_videos, load_events
from ..io.atomic import atomic_path
from ..labels import LABEL_TYPES, EVAL_SIZES


MIN_SIDE = 0.5
"""Boxes get at least this width and height (evaluation pixels): the scorer needs x1 < x2."""


def ordered_boxes(boxes: np.ndarray, eval_size: tuple[int, int]) -> np.ndarray:
    """(n, 4) boxes with x1 < x2 and y1 < y2, inside the evaluation frame."""
    xs, ys = np.sort(boxes[:, [0, 2]], axis=1), np.sort(boxes[:, [1, 3]], axis=1)
    out = np.empty_like(boxes)
    for lo_hi, limit, cols in ((xs, eval_size[0], (0, 2)), (ys, eval_size[1], (1, 3))):
        lo = np.clip(lo_hi[:, 0], 0, limit - MIN_SIDE)
        hi = np.clip(np.maximum(lo_hi[:, 1], lo + MIN_SIDE), MIN_SIDE, limit)
        out[:, cols[0]], out[:, cols[1]] = lo, hi
    return out


def submission_tubes(events: dict, label_type: str, eval_size=EVAL_SIZES["road_waymo"]) -> list:
    """The tubes of one events document and label type, in evaluation pixels."""
    sx, sy = eval_size[0] / events["width"], eval_size[1] / events["height"]
    tubes = []
    for tube in events["tubes"].get(label_type, []):
        boxes = np.asarray(tube["boxes"], dtype=np.float64).reshape(-1, 4) * [sx, sy, sx, sy]
        boxes = ordered_boxes(boxes, eval_size)
        tubes.append({"label_id": int(tube["label_id"]), "score": float(tube["score"]),
                      "scores": np.asarray(tube["scores"], dtype=np.float32),
                      "boxes": boxes.astype(np.float32),
                      "frames": np.asarray(tube["frames"], dtype=np.int32)})
    return tubes


def build_submission(run: str | Path, videos: list[str] | None = None) -> dict:
    """The submission dict for ``videos`` (default: every video with events in ``run``)."""
    run = Path(run)
    available = finished_videos(run, "events")
    videos = videos if videos is not None else available
    if not videos:
        raise UserError("run has no events/<video>.json: run the pipeline first", run)
    missing = [v for v in videos if v not in available]
    if missing:
        raise UserError(f"no events for {len(missing)} video(s), e.g. {missing[0]}: "
                        "run the pipeline on them first", run)
    out = {t: {} for t in LABEL_TYPES}
    for video in videos:
        events = load_events(run, video)
        for label_type in LABEL_TYPES:
            out[label_type][video] = submission_tubes(events, label_type)
    return out


def submit_run(run: str | Path, out: str | Path, videos: list[str] | None = None,
               zipped: bool = False) -> tuple[Path, dict]:
    """Build, check (every rule ``roadtrack validate`` applies) and write a run's submission."""
    from ..eval.submission import require_valid
    from ..labels import LabelSpace, roadpp
    from ..pipeline import read_run_file

    submission = build_submission(run, videos)
    saved = read_run_file(run).get("labels")
    labels = LabelSpace.from_dict(saved) if saved else roadpp()
    require_valid(submission, list(submission["agent"]), labels, out)
    return write_submission(submission, out, zipped), submission


def write_submission(submission: dict, path: str | Path, zipped: bool = False) -> Path:
    """Pickle atomically; with ``zipped`` also write ``<path>.zip`` holding it (for eval.ai)."""
    path = Path(path)
    data = pickle.dumps(submission, protocol=4)
    with atomic_path(path, suffix=path.suffix) as tmp:
        tmp.write_bytes(data)
    if zipped:
        zip_path = path.with_suffix(path.suffix + ".zip")
        with atomic_path(zip_path, suffix=".zip") as tmp:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(path.name, data)
        return zip_path
    return path

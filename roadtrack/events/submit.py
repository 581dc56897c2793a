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


def read_video_list(value: str | Path) -> list[str]:
    """Names from a file (one per line) or a comma-separated list."""
    path = Path(value)
    if path.is_file():
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not names:
            raise UserError("video list is empty", path)
        return names
    names = [n.strip() for n in str(value).split(",") if n.strip()]
    if not names:
        raise UserError(f"no video names in {value!r}")
    return names


def submission_tubes(events: dict, label_type: str, eval_size=EVAL_SIZES["road_waymo"]) -> list:
    """The tubes of one events document and label type, in evaluation pixels."""
    sx, sy = eval_size[0] / events["width"], eval_size[1] / events["height"]
    tubes = []
    for tube in events["tubes"].get(label_type, []):
        boxes = np.asarray(tube["boxes"], dtype=np.float64).reshape(-1, 4)
        boxes = np.clip(boxes * [sx, sy, sx, sy], 0, [eval_size[0], eval_size[1]] * 2)
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

"""``roadtrack viz``: a run's tracks and events drawn on the video, for looking at the result.

Each track gets a box in its own colour with ``#id agent action loc`` above it; the action and
location are those of the event tubes that cover the frame.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .errors import UserError
from .io.artifacts import artifact_path, load_events, load_stage
from .io.atomic import atomic_path
from .io.runs import EVENTS, TRACKS
from .io.video import VideoSource
from .labels import BOX_TYPES


def _colour(track_id: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(track_id)
    return tuple(int(c) for c in rng.integers(60, 256, 3))


def frame_labels(events: dict | None) -> dict[tuple[int, int], dict[str, str]]:
    """(track id, frame) -> {label type: name} for agent, action and loc tubes."""
    labels: dict[tuple[int, int], dict[str, str]] = {}
    if not events:
        return labels
    for label_type in ("loc", "action", "agent"):  # agent last: the best agent tube comes first
        tubes = sorted(events["tubes"].get(label_type, []), key=lambda t: t["score"])
        for tube in tubes:
            for f in tube["frames"]:
                labels.setdefault((tube["track_id"], f), {})[label_type] = tube["label"]
    return labels


def render_run_video(run: str | Path, source: VideoSource, out: str | Path) -> int:
    """Write ``out`` (mp4) with the run's tracks of ``source`` drawn; returns frames written."""
    run = Path(run)
    if not artifact_path(run, TRACKS, source.name).is_file():
        raise UserError(f"no tracks for video {source.name}", run)
    tracks = load_stage(run, TRACKS, source.name)
    events = load_events(run, source.name) if artifact_path(run, EVENTS, source.name).is_file() \
        else None
    labels = frame_labels(events)
    sx = source.info.width / float(tracks["width"])
    sy = source.info.height / float(tracks["height"])
    order = np.argsort(tracks["frames"], kind="stable")
    frames, boxes, ids = tracks["frames"][order], tracks["boxes"][order], tracks["track_ids"][order]
    size = (source.info.width, source.info.height)
    written = 0
    with atomic_path(out, suffix=".mp4") as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), source.info.fps, size)
        if not writer.isOpened():
            raise UserError("OpenCV cannot write this video", out)
        try:
            for n, rgb in source.frames():
                img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
                lo, hi = np.searchsorted(frames, n), np.searchsorted(frames, n, side="right")
                for box, track_id in zip(boxes[lo:hi], ids[lo:hi], strict=True):
                    x1, y1, x2, y2 = (int(round(v)) for v in box * [sx, sy, sx, sy])
                    colour = _colour(int(track_id))
                    cv2.rectangle(img, (x1, y1), (x2, y2), colour, 1)
                    names = labels.get((int(track_id), int(n)), {})
                    text = " ".join([f"#{int(track_id)}"] + [names[t] for t in
                                    BOX_TYPES if t in names])
                    cv2.putText(img, text, (x1, max(8, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.3,
                                colour, 1, cv2.LINE_AA)
                cv2.putText(img, f"{source.name} {n}", (4, size[1] - 5), cv2.FONT_HERSHEY_SIMPLEX,
                            0.35, (255, 255, 255), 1, cv2.LINE_AA)
                writer.write(img)
                written += 1
        finally:
            writer.release()
    return written

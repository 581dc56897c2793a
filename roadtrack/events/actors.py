"""The actors of each frame of a video's tracks: what the event head's options relate a track to
(numpy only).

The rows of all tracks of a video, stacked in order, form one table; for every row, the rows of
the same frame's actors: the track itself first, then the other tracks present in that frame,
nearest box centre first (-1 pads). Trajectory attention (:mod:`.trajectory`) takes them as the
"space" of each frame, ACAR's relation (:mod:`.relation`) as the actors it relates the track to.
"""
from __future__ import annotations

import numpy as np

from .config import EventsConfig
from .series import TrackSeries

MAX_ACTORS = 8
"""Actors per frame that trajectory attention looks at (the track itself included)."""


def actors_needed(config: EventsConfig) -> int:
    """Actors per frame (the track itself included) that the head's option takes; 0: none."""
    if config.temporal == "trajectory":
        return MAX_ACTORS
    return config.acar.actors + 1 if config.relation == "acar" else 0


def actor_rows(series_list: list[TrackSeries], limit: int = MAX_ACTORS) -> list[np.ndarray]:
    """Per track, (n, S) int rows of the stacked table (tracks in ``series_list`` order) of each
    frame's actors, itself first; -1 where a frame has fewer actors. S: the most actors of any
    frame, at most ``limit``."""
    starts = np.cumsum([0] + [len(s) for s in series_list])
    frames = np.concatenate([s.frames for s in series_list]) if series_list else np.zeros(0, int)
    boxes = np.concatenate([s.boxes for s in series_list]) if series_list else np.zeros((0, 4))
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2  # (R, 2)
    order = np.argsort(frames, kind="stable")
    bounds = np.flatnonzero(np.diff(frames[order])) + 1
    groups = np.split(order, bounds) if len(order) else []
    width = min(limit, max((len(g) for g in groups), default=1))  # no all-padding columns
    table = np.full((len(frames), width), -1, dtype=np.int64)
    for rows in groups:  # the rows of one frame
        gaps = np.linalg.norm(centres[rows][:, None] - centres[rows][None], axis=-1)  # (m, m)
        np.fill_diagonal(gaps, -1.0)  # itself first
        nearest = rows[np.argsort(gaps, axis=1, kind="stable")[:, :limit]]
        table[rows, : nearest.shape[1]] = nearest
    return [table[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]


def box_table(series_list: list[TrackSeries], width: int, height: int) -> np.ndarray:
    """(R, 4) float32 boxes of the stacked rows, x1 y1 x2 y2 in [0, 1] of the frame."""
    scale = np.array([width, height, width, height], dtype=np.float64)
    boxes = np.concatenate([s.boxes for s in series_list]) if series_list else np.zeros((0, 4))
    return np.clip(boxes / scale, 0, 1).astype(np.float32)


def gather_actors(table: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """table (R, F) stacked features, rows (n, S) from :func:`actor_rows` -> actor features
    (n, S, F), zero where padded, and their mask (n, S)."""
    mask = rows >= 0
    return np.where(mask[..., None], table[np.maximum(rows, 0)], 0).astype(np.float32), mask

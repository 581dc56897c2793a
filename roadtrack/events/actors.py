"""The actors of each frame of a video's tracks: the "space" of trajectory attention (numpy only).

The rows of all tracks of a video, stacked in order, form one table; for every row, the rows of the
same frame's actors: the track itself first, then the other tracks present in that frame, nearest
box centre first, at most ``MAX_ACTORS`` in all (-1 pads).
"""
from __future__ import annotations

import numpy as np

from .series import TrackSeries

MAX_ACTORS = 8
"""Actors per frame that trajectory attention looks at (the track itself included)."""


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


def gather_actors(table: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """table (R, F) stacked features, rows (n, S) from :func:`actor_rows` -> actor features
    (n, S, F), zero where padded, and their mask (n, S)."""
    mask = rows >= 0
    return np.where(mask[..., None], table[np.maximum(rows, 0)], 0).astype(np.float32), mask

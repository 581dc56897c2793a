"""Tracks as contiguous per-frame series: rows grouped by track, gaps filled by interpolation."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..labels import BOX_TYPES


@dataclass
class TrackSeries:
    """One track over every frame from its first to its last (gaps interpolated)."""

    track_id: int
    frames: np.ndarray  # (n,) int, contiguous
    boxes: np.ndarray  # (n, 4) float x1 y1 x2 y2, source pixels
    scores: np.ndarray  # (n,) agentness
    probs: dict[str, np.ndarray]  # agent (n, A), action (n, C), loc (n, L)
    observed: np.ndarray  # (n,) bool: False where the frame was interpolated
    det_index: np.ndarray  # (n,) int: detection row, -1 where interpolated
    extra: dict[str, np.ndarray]  # other per-row fields (roi_features, embeddings), interpolated

    def __len__(self) -> int:
        return len(self.frames)


def _fill(frames_all: np.ndarray, frames: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of (k, ...) ``values`` at ``frames`` onto ``frames_all``."""
    flat = values.reshape(len(values), -1).astype(np.float64)
    out = np.stack([np.interp(frames_all, frames, col) for col in flat.T], axis=1) \
        if flat.shape[1] else np.zeros((len(frames_all), 0))
    return out.reshape((len(frames_all),) + values.shape[1:])


def track_series(tracks: dict[str, np.ndarray], extra_fields: tuple[str, ...] = ()) \
        -> list[TrackSeries]:
    """Group a tracks artifact into one :class:`TrackSeries` per track id, sorted by id."""
    out = []
    ids = tracks["track_ids"]
    for track_id in np.unique(ids):
        rows = np.flatnonzero(ids == track_id)
        rows = rows[np.argsort(tracks["frames"][rows], kind="stable")]
        frames = tracks["frames"][rows].astype(np.int64)
        frames, first = np.unique(frames, return_index=True)  # one row per frame
        rows = rows[first]
        frames_all = np.arange(frames[0], frames[-1] + 1)
        observed = np.isin(frames_all, frames)
        det_index = np.full(len(frames_all), -1, dtype=np.int64)
        det_index[frames - frames[0]] = tracks["det_index"][rows] if "det_index" in tracks \
            else rows
        out.append(TrackSeries(
            track_id=int(track_id), frames=frames_all,
            boxes=_fill(frames_all, frames, tracks["boxes"][rows]),
            scores=_fill(frames_all, frames, tracks["scores"][rows]),
            probs={k: _fill(frames_all, frames, tracks[k][rows]) for k in BOX_TYPES},
            observed=observed, det_index=det_index,
            extra={k: _fill(frames_all, frames, tracks[k][rows]) for k in extra_fields
                   if k in tracks}))
    return out


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over time of (n, C) values; the window shrinks at the ends."""
    if window <= 1 or len(values) < 2:
        return values
    half = window // 2
    padded = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    n = len(values)
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    return (padded[hi] - padded[lo]) / (hi - lo)[:, None]


def runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, stop, label) of each run of equal values; stop is exclusive."""
    if len(labels) == 0:
        return []
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(labels)]])
    return [(int(a), int(b), int(labels[a])) for a, b in zip(starts, stops, strict=True)]


def absorb_short_runs(labels: np.ndarray, min_length: int) -> np.ndarray:
    """Relabel runs shorter than ``min_length`` with the label of the longer neighbour."""
    labels = labels.copy()
    for _ in range(len(labels)):
        pieces = runs(labels)
        short = [i for i, (a, b, _) in enumerate(pieces) if b - a < min_length]
        if not short or len(pieces) == 1:
            return labels
        i = min(short, key=lambda k: pieces[k][1] - pieces[k][0])
        a, b, _ = pieces[i]
        left = pieces[i - 1] if i > 0 else None
        right = pieces[i + 1] if i + 1 < len(pieces) else None
        best = max((p for p in (left, right) if p), key=lambda p: p[1] - p[0])
        labels[a:b] = best[2]
    return labels

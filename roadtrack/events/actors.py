"""The other actors of each track frame: inputs of the ACAR relation module (numpy only).

Each frame of a track sees the actors of the same frame (the other tracks of the video there,
interpolated frames included), nearest centre first, up to a fixed number: their per-frame
event-head inputs and the boxes of the track and of them, normalised by the frame.
"""
from __future__ import annotations

import numpy as np

from .series import TrackSeries

ACTOR_KEYS = ("actors", "boxes", "present")
"""Per-frame arrays of a track for :class:`roadtrack.events.relation.ActorRelation`."""


def frame_actors(series_list: list[TrackSeries], feats: list[np.ndarray], width: int,
                 height: int, max_actors: int) -> list[dict[str, np.ndarray]]:
    """Per track: ``actors`` (n, K, F) float32 inputs of up to K = ``max_actors`` other actors
    (zeros where fewer), ``boxes`` (n, K + 1, 4) float32 x1 y1 x2 y2 in [0, 1] (slot 0: the
    track itself) and ``present`` (n, K + 1) bool (slot 0 always true)."""
    scale = np.array([width, height, width, height], dtype=np.float64)
    at_frame: dict[int, list[tuple[int, int]]] = {}  # frame -> (track index, row)
    for k, series in enumerate(series_list):
        for row, frame in enumerate(series.frames):
            at_frame.setdefault(int(frame), []).append((k, row))
    out = []
    for k, series in enumerate(series_list):
        n, dim = len(series), feats[k].shape[1]
        actors = np.zeros((n, max_actors, dim), np.float32)
        boxes = np.zeros((n, max_actors + 1, 4), np.float32)
        present = np.zeros((n, max_actors + 1), bool)
        boxes[:, 0], present[:, 0] = np.clip(series.boxes / scale, 0, 1), True
        for row, frame in enumerate(series.frames):
            others = [(j, r) for j, r in at_frame[int(frame)] if j != k]
            if not others:
                continue
            other_boxes = np.stack([series_list[j].boxes[r] for j, r in others])  # (m, 4)
            centre = (series.boxes[row, :2] + series.boxes[row, 2:]) / 2
            dist = np.linalg.norm((other_boxes[:, :2] + other_boxes[:, 2:]) / 2 - centre, axis=1)
            near = np.argsort(dist, kind="stable")[:max_actors]
            actors[row, : len(near)] = [feats[others[i][0]][others[i][1]] for i in near]
            boxes[row, 1: len(near) + 1] = np.clip(other_boxes[near] / scale, 0, 1)
            present[row, 1: len(near) + 1] = True
        out.append({"actors": actors, "boxes": boxes, "present": present})
    return out


def normalise_actors(actors: dict[str, np.ndarray], mean: np.ndarray, std: np.ndarray) \
        -> dict[str, np.ndarray]:
    """The actors' inputs normalised as the head's (absent slots stay zero)."""
    normed = (actors["actors"] - mean) / std * actors["present"][:, 1:, None]
    return {**actors, "actors": normed.astype(np.float32)}

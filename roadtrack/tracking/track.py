"""The set of live tracks, stored column-wise so each frame touches all tracks in a few array ops.

Row ``i`` of every array belongs to the same track. A track is *tentative* until it has been
matched ``n_init`` times in a row and *confirmed* after; a tentative track that misses a frame,
and a confirmed one that misses more than ``max_age`` frames in a row, is deleted.
"""
from __future__ import annotations

import numpy as np

from .appearance import Gallery


class TrackSet:
    """Column-wise track state: Kalman mean (T, 8) and cov (T, 8, 8) plus per-track counters."""

    def __init__(self, gallery: Gallery | None = None):
        self.ids = np.zeros(0, dtype=np.int64)  # (T,) 1-based track ids
        self.mean = np.zeros((0, 8))  # (T, 8) cx cy a h and velocities
        self.cov = np.zeros((0, 8, 8))  # (T, 8, 8)
        self.hits = np.zeros(0, dtype=np.int64)  # (T,) matches so far
        self.since_update = np.zeros(0, dtype=np.int64)  # (T,) frames since last match
        self.confirmed = np.zeros(0, dtype=bool)  # (T,)
        self.classes = np.zeros(0, dtype=np.int64)  # (T,) class at birth
        self.gallery = gallery

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, ids: np.ndarray, mean: np.ndarray, cov: np.ndarray, classes: np.ndarray,
            confirmed: bool, features: np.ndarray | None = None) -> None:
        """Append ``len(ids)`` new tracks, each with one hit."""
        n = len(ids)
        self.ids = np.concatenate([self.ids, ids])
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])
        self.hits = np.concatenate([self.hits, np.ones(n, dtype=np.int64)])
        self.since_update = np.concatenate([self.since_update, np.zeros(n, dtype=np.int64)])
        self.confirmed = np.concatenate([self.confirmed, np.full(n, confirmed)])
        self.classes = np.concatenate([self.classes, classes])
        if self.gallery is not None and features is not None:
            self.gallery.add_tracks(features)

    def keep(self, mask: np.ndarray) -> None:
        """Delete the tracks where ``mask`` (T,) is False."""
        self.ids, self.mean, self.cov = self.ids[mask], self.mean[mask], self.cov[mask]
        self.hits, self.since_update = self.hits[mask], self.since_update[mask]
        self.confirmed, self.classes = self.confirmed[mask], self.classes[mask]
        if self.gallery is not None:
            self.gallery.keep(mask)

"""Appearance: cosine distance between detection embeddings and per-track galleries.

A gallery holds, per track, either the last ``budget`` embeddings (DeepSORT: the distance is the
smallest over them) or one exponential moving average (StrongSORT-style). Galleries are stored as
arrays aligned with the tracker's track rows so one matrix product scores all pairs.
"""
from __future__ import annotations

import numpy as np


def normalize(features: np.ndarray) -> np.ndarray:
    """(M, D) -> (M, D) float32 rows of unit length (zero rows stay zero)."""
    features = np.asarray(features, dtype=np.float32)
    norm = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norm, 1e-12)


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of unit rows: (N, D), (M, D) -> (N, M) float64 in [0, 2]."""
    return 1.0 - (a @ b.T).astype(np.float64)


class Gallery:
    """Per-track embeddings: ``mode='budget'`` keeps the last ``budget``, ``'ema'`` one average."""

    def __init__(self, dim: int, mode: str = "budget", budget: int = 100, ema_alpha: float = 0.9):
        if mode not in ("budget", "ema"):
            raise ValueError(f"gallery mode must be 'budget' or 'ema', not {mode!r}")
        self.dim, self.mode, self.alpha = dim, mode, ema_alpha
        self.slots = max(int(budget), 1) if mode == "budget" else 1
        self.feats = np.zeros((0, self.slots, dim), dtype=np.float32)  # (T, K, D)
        self.count = np.zeros(0, dtype=np.int64)  # (T,) filled slots
        self.next = np.zeros(0, dtype=np.int64)  # (T,) ring position of the next write

    def __len__(self) -> int:
        return len(self.count)

    def add_tracks(self, features: np.ndarray) -> None:
        """Append one gallery per new track, seeded with its first embedding (T_new, D)."""
        n = len(features)
        new = np.zeros((n, self.slots, self.dim), dtype=np.float32)
        new[:, 0] = features
        self.feats = np.concatenate([self.feats, new])
        self.count = np.concatenate([self.count, np.ones(n, dtype=np.int64)])
        self.next = np.concatenate([self.next, np.full(n, 1 % self.slots, dtype=np.int64)])

    def keep(self, mask: np.ndarray) -> None:
        """Drop the galleries of deleted tracks; ``mask`` (T,) bool marks the ones kept."""
        self.feats, self.count, self.next = self.feats[mask], self.count[mask], self.next[mask]

    def update(self, rows: np.ndarray, features: np.ndarray) -> None:
        """Add one unit embedding (K, D) to each of the tracks ``rows`` (K,)."""
        if self.mode == "ema":
            mixed = self.alpha * self.feats[rows, 0] + (1 - self.alpha) * features
            self.feats[rows, 0] = normalize(mixed)
            return
        self.feats[rows, self.next[rows]] = features
        self.next[rows] = (self.next[rows] + 1) % self.slots
        self.count[rows] = np.minimum(self.count[rows] + 1, self.slots)

    def distance(self, rows: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Smallest cosine distance of each track in ``rows`` (N,) to each embedding (M, D)."""
        if self.slots == 1:
            return cosine_distance(self.feats[rows, 0], features)
        k = int(self.count.max())  # slots beyond are empty in every gallery
        sims = self.feats[:, :k] @ features.T  # (T, k, M), all tracks: no copy of the galleries
        empty = np.arange(k) >= self.count[:, None]  # (T, k)
        sims[empty] = -np.inf
        return 1.0 - sims.max(axis=1)[rows].astype(np.float64)

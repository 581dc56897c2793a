"""Sums per integer key over a long stream of (key, value) pairs, in memory that grows with the
distinct keys (id pairs that ever meet), not with the stream (every overlap in every frame)."""
from __future__ import annotations

import numpy as np

PENDING = 1 << 20  # pairs buffered before they are folded into the sums


class KeySums:
    """``add`` pairs in stream order; ``result`` gives the sorted distinct keys (K,) and their
    sums (K,). Each key's values are added one after the other in stream order, as a dense
    ``matrix[key] += value`` per frame would add them (the same float result)."""

    def __init__(self, dtype=np.float64):
        self.keys = np.zeros(0, dtype=np.int64)
        self.sums = np.zeros(0, dtype=dtype)
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.count = 0

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        if len(keys):
            self.pending.append((keys, values))
            self.count += len(keys)
            if self.count >= PENDING:
                self._fold()

    def _fold(self) -> None:
        if not self.pending:
            return
        keys = np.concatenate([k for k, _ in self.pending])
        values = np.concatenate([v for _, v in self.pending])
        self.pending, self.count = [], 0
        merged = np.union1d(self.keys, keys)
        sums = np.zeros(len(merged), dtype=self.sums.dtype)
        sums[np.searchsorted(merged, self.keys)] = self.sums
        np.add.at(sums, np.searchsorted(merged, keys), values)  # in stream order, unbuffered
        self.keys, self.sums = merged, sums

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        self._fold()
        return self.keys, self.sums

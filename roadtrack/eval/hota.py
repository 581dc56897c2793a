"""HOTA of one sequence with ``trackeval.metrics.HOTA``'s rules, in bounded memory.

trackeval keeps every frame's similarity matrix and 21 dense (gt ids x tracker ids) matrices
(13 GB for 9,000 ids a side). :class:`Hota` makes trackeval's two passes over the
frames with the same arithmetic in the same order but keeps only the pairs that ever overlap:
pass one sums each pair's per-frame normalised overlap (the global alignment score), pass two
matches each frame by that score times IoU (trackeval's solver on trackeval's matrix) and keeps
the matched pairs with how many alpha thresholds their IoU passes. Association scores are then
summed over those pairs instead of the dense matrices (the same terms; only the summation order
differs, at the level of one rounding). Ids must be unique within a frame on each side.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .frames import dense
from .sparse import KeySums

EPS = np.finfo("float").eps
LEVELS = 32  # > the number of alpha thresholds (19)


class Hota:
    """``first(...)`` for every frame in order, then ``second(...)`` for every frame in the same
    order, then :meth:`result` (trackeval's per-sequence ``res``)."""

    def __init__(self, gt_index: np.ndarray, pr_index: np.ndarray, num_gt_ids: int,
                 num_pr_ids: int):
        from trackeval.metrics import HOTA  # lazy: `roadtrack track` imports this module

        self.alphas = HOTA().array_labels  # (19,) 0.05 .. 0.95
        self.gt_index, self.pr_index = gt_index, pr_index
        self.num_pr_ids = num_pr_ids
        self.gt_count = np.bincount(gt_index, minlength=num_gt_ids).astype(float)  # (G,)
        self.pr_count = np.bincount(pr_index, minlength=num_pr_ids).astype(float)  # (P,)
        # per pair key: the summed normalised overlaps; None once pass one is over
        self.potential: KeySums | None = KeySums()
        self.pair_keys = np.zeros(0, dtype=np.int64)  # (K,) pairs that overlap, after pass one
        self.alignment = np.zeros(0)  # (K,) their global alignment scores
        k = len(self.alphas)
        self.tp, self.fn, self.fp = np.zeros(k), np.zeros(k), np.zeros(k)
        self.loca = np.zeros(k)
        # matches per (pair key, how many alphas the match passes): key * LEVELS + level
        self.matches = KeySums(np.int64)

    def _keys(self, gt_rows, pr_rows, r, c) -> np.ndarray:
        return self.gt_index[gt_rows[r]] * self.num_pr_ids + self.pr_index[pr_rows[c]]

    def first(self, gt_rows: np.ndarray, pr_rows: np.ndarray, r: np.ndarray, c: np.ndarray,
              iou: np.ndarray) -> None:
        """Pass one, a frame: rows (n,), (m,) and the pairs with IoU > 0: local row (K,),
        column (K,), IoU (K,)."""
        if not len(iou):
            return
        similarity = dense(len(gt_rows), len(pr_rows), r, c, iou)  # (n, m), for trackeval's sums
        col_sum, row_sum = similarity.sum(0), similarity.sum(1)
        denom = col_sum[c] + row_sum[r] - iou  # trackeval's sim_iou_denom at the pairs
        mask = denom > 0 + EPS
        assert self.potential is not None, "pass one is over"
        self.potential.add(self._keys(gt_rows, pr_rows, r[mask], c[mask]),
                           iou[mask] / denom[mask])

    def _finish_first(self, sums: KeySums) -> None:
        # summed frame after frame, as trackeval's += does
        self.pair_keys, potential = sums.result()
        self.potential = None
        g, p = self.pair_keys // self.num_pr_ids, self.pair_keys % self.num_pr_ids
        self.alignment = potential / (self.gt_count[g] + self.pr_count[p] - potential)

    def second(self, gt_rows: np.ndarray, pr_rows: np.ndarray, r: np.ndarray, c: np.ndarray,
               iou: np.ndarray) -> None:
        """Pass two, a frame: the same arguments as in pass one."""
        from scipy.optimize import linear_sum_assignment  # lazy: `track` imports this module

        if self.potential is not None:  # the first frame of pass two
            self._finish_first(self.potential)
        n, m = len(gt_rows), len(pr_rows)
        if n == 0 or m == 0:
            self.fp += m
            self.fn += n
            return
        keys = self._keys(gt_rows, pr_rows, r, c)
        alignment = np.zeros(len(keys))  # 0 for pairs whose overlap never counted
        if len(self.pair_keys):
            at = np.minimum(np.searchsorted(self.pair_keys, keys), len(self.pair_keys) - 1)
            found = self.pair_keys[at] == keys
            alignment[found] = self.alignment[at[found]]
        score = alignment * iou  # trackeval's alignment score x IoU at the pairs, 0 elsewhere
        pos = score > 0
        rows, cols = r[pos], c[pos]
        sc = np.sort(cols)
        if (rows[1:] == rows[:-1]).any() or (sc[1:] == sc[:-1]).any():
            # trackeval's solver on trackeval's matrix, so ties break the same way
            rows, cols = linear_sum_assignment(-dense(n, m, r, c, score))
            sims = dense(n, m, r, c, iou)[rows, cols]
        else:  # each positive score alone in its row and column: all matched, in row order
            sims = iou[pos]
        level = (sims[:, np.newaxis] >= self.alphas - EPS).sum(axis=1)  # (k,) alphas passed
        passes = level[np.newaxis, :] > np.arange(len(self.alphas))[:, np.newaxis]  # (19, k)
        num = passes.sum(axis=1)
        self.tp += num
        self.fn += n - num
        self.fp += m - num
        if len(sims):  # summed left to right, as trackeval's sum() is
            self.loca += np.cumsum(np.where(passes, sims, 0.0), axis=1)[:, -1]
        keep = level > 0
        self.matches.add(self._keys(gt_rows, pr_rows, rows[keep], cols[keep]) * LEVELS
                         + level[keep], np.ones(int(keep.sum()), np.int64))

    def result(self) -> dict:
        """trackeval's ``HOTA.eval_sequence`` result."""
        from trackeval.metrics import HOTA  # lazy: `roadtrack track` imports this module

        k = len(self.alphas)
        fields = HOTA().float_array_fields + ["HOTA_TP", "HOTA_FN", "HOTA_FP"]
        res: dict[str, Any] = {f: np.zeros(k) for f in fields}  # (k,) arrays, and scalars below
        res.update({"HOTA(0)": 0, "LocA(0)": 0, "HOTALocA(0)": 0})
        num_gt, num_pr = len(self.gt_index), len(self.pr_index)
        if num_pr == 0 or num_gt == 0:  # trackeval's early returns
            res["HOTA_FN" if num_pr == 0 else "HOTA_FP"] = (num_gt or num_pr) * np.ones(k)
            res["LocA"] = np.ones(k)
            res["LocA(0)"] = 1.0
            return res
        res["HOTA_TP"], res["HOTA_FN"], res["HOTA_FP"] = self.tp, self.fn, self.fp
        keys, counts = self.matches.result()
        pairs, inverse = np.unique(keys // LEVELS, return_inverse=True)
        levels = keys % LEVELS
        gt_count = self.gt_count[pairs // self.num_pr_ids]
        pr_count = self.pr_count[pairs % self.num_pr_ids]
        for a in range(k):
            count = np.bincount(inverse, weights=counts * (levels > a), minlength=len(pairs))
            tp = np.maximum(1, self.tp[a])
            ass_a = count / np.maximum(1, gt_count + pr_count - count)
            res["AssA"][a] = np.sum(count * ass_a) / tp
            res["AssRe"][a] = np.sum(count * (count / np.maximum(1, gt_count))) / tp
            res["AssPr"][a] = np.sum(count * (count / np.maximum(1, pr_count))) / tp
        res["LocA"] = np.maximum(1e-10, self.loca) / np.maximum(1e-10, self.tp)
        return HOTA._compute_final_fields(res)

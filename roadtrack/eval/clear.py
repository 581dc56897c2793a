"""CLEAR MOT and identity metrics of one sequence with motmetrics' rules, in bounded memory.

motmetrics 1.4.0 keeps a pandas row per event (every candidate pair included) and computes IDF1
with dense (ids_gt + ids_pred)^2 matrices (2.6 GB each for 9,000 ids a side).
:class:`ClearMot` follows ``MOTAccumulator.update`` frame by frame (carry the previous frame's
pairs when still within the threshold, then motmetrics' own solver on the rest,
switch/transfer/ascend/migrate as it decides them) but keeps a few arrays per id and one flag
per ground-truth row. IDF1's global assignment
is a sparse maximum-weight matching of the (gt id, prediction id) pairs seen within the threshold:
motmetrics' min-cost assignment has the same optimum, and its IDFN and IDFP follow from it.
Ids must be unique within a frame on each side (what the MOTChallenge tools require).
"""
from __future__ import annotations

import numpy as np

from .frames import dense
from .sparse import KeySums


class ClearMot:
    """Events of one sequence; feed frames in order with :meth:`update`, then :meth:`summary`.

    ``gt_index`` (N,) and ``pr_index`` (M,) are dense id numbers (0..num ids - 1) of every row.
    """

    def __init__(self, gt_index: np.ndarray, pr_index: np.ndarray, num_gt_ids: int,
                 num_pr_ids: int):
        from motmetrics.lap import linear_sum_assignment  # lazy: `track` imports this module

        self.solve = linear_sum_assignment  # motmetrics' default solver: the same pairs
        self.gt_index, self.pr_index = gt_index, pr_index
        self.num_gt_ids, self.num_pr_ids = num_gt_ids, num_pr_ids
        self.pair_of_gt = np.full(num_gt_ids, -1, dtype=np.int64)  # motmetrics' m
        self.pair_of_pr = np.full(num_pr_ids, -1, dtype=np.int64)  # res_m
        self.gt_matched = np.zeros(num_gt_ids, dtype=bool)  # in last_match
        self.pr_matched = np.zeros(num_pr_ids, dtype=bool)  # in hypHistory
        self.tracked = np.zeros(len(gt_index), dtype=bool)  # per gt row: MATCH or SWITCH
        # motmetrics' D column without RAW events, in its order (0 for MISS and FP): summed in
        # the same order, motp comes out to the last bit
        self.distances = np.zeros(len(gt_index) + len(pr_index))
        self.cursor = 0
        self.within = KeySums(np.int64)  # per (gt id * num_pr_ids + pr id): frames within reach
        self.counts = dict.fromkeys(["num_matches", "num_switches", "num_transfer", "num_ascend",
                                     "num_migrate", "num_false_positives", "num_misses"], 0)

    def update(self, gt_rows: np.ndarray, pr_rows: np.ndarray, rows: np.ndarray,
               cols: np.ndarray, dist: np.ndarray) -> None:
        """One frame: rows of either side (n,), (m,) and the pairs within the threshold as local
        row (K,), column (K,) and distance (K,), rows nondecreasing; other pairs do not pair."""
        gi, pj = self.gt_index[gt_rows], self.pr_index[pr_rows]
        n, m = len(gi), len(pj)
        none = np.zeros(0, dtype=np.int64)
        carried = lsa = (none, none, np.zeros(0))
        if len(rows):
            self.within.add(gi[rows] * self.num_pr_ids + pj[cols], np.ones(len(rows), np.int64))
            carried = self._carry(gi, pj, rows, cols, dist)
            lsa = self._assign(gi, pj, rows, cols, dist, carried)
        matched = len(carried[0]) + len(lsa[0])
        for i, _, d in (carried, lsa):
            self.tracked[gt_rows[i]] = True
            self.distances[self.cursor:self.cursor + len(d)] = d
            self.cursor += len(d)
        self.cursor += (n - matched) + (m - matched)  # MISS and FP events: distance 0 (NaN)
        self.counts["num_matches"] += len(carried[0])
        self.counts["num_misses"] += n - matched
        self.counts["num_false_positives"] += m - matched

    def _carry(self, gi, pj, rows, cols, dist):
        """Pairs of earlier frames still within reach: (rows, cols, distances) in row order; the
        first row wins a column claimed twice, as in motmetrics' loop."""
        prev = self.pair_of_gt[gi[rows]]  # (K,) the pair's row's earlier partner, or -1
        keep = prev == pj[cols]
        i, j, d = rows[keep], cols[keep], dist[keep]
        if len(j) > 1:
            s = np.sort(j)
            if (s[1:] == s[:-1]).any():
                _, first = np.unique(j, return_index=True)
                first.sort()
                i, j, d = i[first], j[first], d[first]
        self.gt_matched[gi[i]] = True
        self.pr_matched[pj[j]] = True
        return i, j, d

    def _assign(self, gi, pj, rows, cols, dist, carried):
        """motmetrics' assignment of the rows and columns not carried over: (rows, cols,
        distances) in the solver's order, switch/transfer/ascend/migrate counted, state updated."""
        n, m = len(gi), len(pj)
        free = np.ones(len(rows), dtype=bool)
        if len(carried[0]):
            row_taken, col_taken = np.zeros(n, dtype=bool), np.zeros(m, dtype=bool)
            row_taken[carried[0]] = True
            col_taken[carried[1]] = True
            free = ~row_taken[rows] & ~col_taken[cols]
        i, j, d = rows[free], cols[free], dist[free]
        if not len(i):
            return i, j, d
        sj = np.sort(j)
        if (i[1:] == i[:-1]).any() or (sj[1:] == sj[:-1]).any():
            # the solver on motmetrics' own matrix, so ties break the same way
            masked = dense(n, m, i, j, d, fill=np.nan)
            i, j = self.solve(masked)
            keep = np.isfinite(masked[i, j])
            i, j = i[keep], j[keep]
            d = masked[i, j]
        # else every candidate is alone in its row and column: all are taken, in row order
        o, h = gi[i], pj[j]
        before_h, before_o = self.pair_of_gt[o], self.pair_of_pr[h]
        switch = (before_h >= 0) & (before_h != h)
        transfer = (before_o >= 0) & (before_o != o)
        c = self.counts
        c["num_switches"] += int(switch.sum())
        c["num_matches"] += int((~switch).sum())
        c["num_ascend"] += int((switch & ~self.pr_matched[h]).sum())
        c["num_transfer"] += int(transfer.sum())
        c["num_migrate"] += int((transfer & ~self.gt_matched[o]).sum())
        self.pair_of_gt[o], self.pair_of_pr[h] = h, o
        self.gt_matched[o] = True
        self.pr_matched[h] = True
        return i, j, d

    def summary(self, gt_frames: np.ndarray) -> dict:
        """motmetrics' per-sequence values (``compute`` with ``return_cached``) of the metrics
        eval mot reports and those ``compute_overall`` combines. ``gt_frames`` (N,) orders each
        object's rows for the fragmentation count."""
        c = self.counts
        num_objects, num_predictions = np.int64(len(self.gt_index)), np.int64(len(self.pr_index))
        num_detections = np.int64(c["num_matches"] + c["num_switches"])
        out: dict[str, np.number] = {k: np.int64(v) for k, v in c.items()}
        out.update(num_objects=num_objects, num_predictions=num_predictions,
                   num_detections=num_detections,
                   num_unique_objects=np.int64(len(np.unique(self.gt_index))))
        out.update(self._lifetimes(gt_frames))
        out["motp"] = _divide(self.distances[:self.cursor].sum(), num_detections)
        miss, sw, fp = out["num_misses"], out["num_switches"], out["num_false_positives"]
        out["mota"] = 1.0 - _divide(miss + sw + fp, num_objects)
        out["precision"] = _divide(num_detections, fp + num_detections)
        out["recall"] = _divide(num_detections, num_objects)
        weight = self._identity_weight()
        out["idfn"] = np.float64(num_objects - weight)
        out["idfp"] = np.float64(num_predictions - weight)
        out["idtp"] = num_objects - out["idfn"]
        out.update(_identity_ratios(out["idtp"], out["idfp"], out["idfn"], num_objects,
                                    num_predictions))
        return out

    def _lifetimes(self, gt_frames: np.ndarray) -> dict:
        """Mostly tracked / partially tracked / mostly lost and fragmentations."""
        obj = self.gt_index
        if not len(obj):
            return dict.fromkeys(["mostly_tracked", "partially_tracked", "mostly_lost",
                                  "num_fragmentations"], np.int64(0))
        freq = np.bincount(obj, minlength=self.num_gt_ids)
        seen = freq > 0
        ratio = np.bincount(obj, weights=self.tracked, minlength=self.num_gt_ids)[seen] / freq[seen]
        order = np.lexsort((gt_frames, obj))  # each object's rows in frame order
        o, t = obj[order], self.tracked[order]
        pos = np.where(t, np.arange(len(t)), -1)
        starts = np.flatnonzero(np.r_[True, o[1:] != o[:-1]])
        last_tracked = np.maximum.reduceat(pos, starts)[np.cumsum(np.r_[False, o[1:] != o[:-1]])]
        # a fragmentation: tracked, then missed, and tracked again later
        frag = ~t[1:] & t[:-1] & (o[1:] == o[:-1]) & (np.arange(1, len(t)) < last_tracked[1:])
        return {"mostly_tracked": np.int64((ratio >= 0.8).sum()),
                "partially_tracked": np.int64(((ratio >= 0.2) & (ratio < 0.8)).sum()),
                "mostly_lost": np.int64((ratio < 0.2).sum()),
                "num_fragmentations": np.int64(frag.sum())}

    def _identity_weight(self) -> int:
        """IDTP: the most (gt, prediction) frames within reach that a one-to-one id assignment
        keeps."""
        keys, tps = self.within.result()
        return max_matching_weight(keys // self.num_pr_ids, keys % self.num_pr_ids, tps,
                                   self.num_gt_ids, self.num_pr_ids)


def max_matching_weight(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, num_rows: int,
                        num_cols: int) -> int:
    """Total weight of a maximum-weight matching of a bipartite graph given by its edges
    (E,) with positive integer ``weights``; sparse (LAPJVsp), so memory grows with the edges."""
    from scipy.sparse import coo_array  # lazy: `roadtrack track` imports this module
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    if not len(weights):
        return 0
    # each row may also take its own "unmatched" column at a weight too small to change which
    # integer total is largest (they add up to < 1), so a full matching always exists
    eps = 1.0 / (num_rows + 1)
    r = np.concatenate([rows, np.arange(num_rows)])
    c = np.concatenate([cols, num_cols + np.arange(num_rows)])
    w = np.concatenate([weights.astype(np.float64), np.full(num_rows, eps)])
    graph = coo_array((w, (r, c)), shape=(num_rows, num_cols + num_rows)).tocsr()
    ri, ci = min_weight_full_bipartite_matching(graph, maximize=True)
    real = ci < num_cols
    return int(np.rint(graph[ri[real], ci[real]].sum()))


def _identity_ratios(idtp, idfp, idfn, num_objects, num_predictions) -> dict:
    return {"idp": _divide(idtp, idtp + idfp), "idr": _divide(idtp, idtp + idfn),
            "idf1": _divide(2 * idtp, num_objects + num_predictions)}


def _divide(a, b):
    """motmetrics' quiet_divide: numpy's true divide, 0/0 = NaN without a warning."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.true_divide(a, b)


SUMMED = ["num_matches", "num_switches", "num_transfer", "num_ascend", "num_migrate",
          "num_false_positives", "num_misses", "num_detections", "num_objects",
          "num_predictions", "num_unique_objects", "mostly_tracked", "partially_tracked",
          "mostly_lost", "num_fragmentations", "idfp", "idfn", "idtp"]


def combine(partials: list[dict]) -> dict:
    """motmetrics' ``compute_overall``: counts summed, ratios from the sums, motp weighted by the
    detections, in motmetrics' order of operations."""
    out = {}
    for name in SUMMED:
        total = 0
        for p in partials:
            total += p[name]
        out[name] = total
    motp = 0
    for p in partials:
        motp += p["motp"] * p["num_detections"]
    out["motp"] = _divide(motp, out["num_detections"])
    miss, sw, fp = out["num_misses"], out["num_switches"], out["num_false_positives"]
    out["mota"] = 1.0 - _divide(miss + sw + fp, out["num_objects"])
    out["precision"] = _divide(out["num_detections"], fp + out["num_detections"])
    out["recall"] = _divide(out["num_detections"], out["num_objects"])
    out.update(_identity_ratios(out["idtp"], out["idfp"], out["idfn"], out["num_objects"],
                                out["num_predictions"]))
    return out

"""The evaluator eval mot used before issue 13, kept as the reference its replacement must equal:
motmetrics accumulators fed frame by frame and trackeval's HOTA on every frame's IoU matrix
(memory grows with the ids squared: small inputs only)."""
from __future__ import annotations

import warnings

import numpy as np

from roadtrack.boxes import iou_matrix
from roadtrack.eval.mot import CLEAR_METRICS, COUNT_METRICS, Sequence, _plain


def _by_frame(frames: np.ndarray) -> dict[int, np.ndarray]:
    order = np.argsort(frames, kind="stable")
    values, starts = np.unique(frames[order], return_index=True)
    chunks = np.split(order, starts[1:])  # no frames: one empty chunk and no value
    return dict(zip(values.tolist(), chunks, strict=False))


def accumulate(seq: Sequence, iou_threshold: float = 0.5):
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=False)
    gt_rows, pr_rows = _by_frame(seq.gt_frames), _by_frame(seq.pr_frames)
    gt_uid, gt_index = np.unique(seq.gt_ids, return_inverse=True)
    pr_uid, pr_index = np.unique(seq.pr_ids, return_inverse=True)
    empty = np.zeros(0, dtype=np.int64)
    hota = {"num_gt_ids": len(gt_uid), "num_tracker_ids": len(pr_uid),
            "num_gt_dets": len(seq.gt_frames), "num_tracker_dets": len(seq.pr_frames),
            "gt_ids": [], "tracker_ids": [], "similarity_scores": []}
    for frame in sorted(set(gt_rows) | set(pr_rows)):
        g, p = gt_rows.get(frame, empty), pr_rows.get(frame, empty)
        iou = iou_matrix(seq.gt_boxes[g], seq.pr_boxes[p])  # (n_gt, n_pred)
        dist = np.where(1.0 - iou > 1.0 - iou_threshold, np.nan, 1.0 - iou)
        acc.update(seq.gt_ids[g].tolist(), seq.pr_ids[p].tolist(), dist, frameid=frame)
        hota["gt_ids"].append(gt_index[g])
        hota["tracker_ids"].append(pr_index[p])
        hota["similarity_scores"].append(iou)
    return acc, hota


def reference_evaluate(sequences: dict[str, Sequence], iou_threshold: float = 0.5) -> dict:
    """``{"sequences": {name: {metric: value}}, "overall": {...}}`` as eval mot gave it."""
    import motmetrics as mm
    from trackeval.metrics import HOTA

    names = list(sequences)
    accs, hota_res = [], {}
    hota = HOTA()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name in names:
            acc, data = accumulate(sequences[name], iou_threshold)
            accs.append(acc)
            hota_res[name] = hota.eval_sequence(data)
        summary = mm.metrics.create().compute_many(accs, metrics=CLEAR_METRICS, names=names,
                                                   generate_overall=True)
        hota_res["OVERALL"] = hota.combine_sequences({n: hota_res[n] for n in names})
    out = {}
    for row_name, row in summary.iterrows():
        values = {m: _plain(row[m], integer=m in COUNT_METRICS) for m in CLEAR_METRICS}
        res = hota_res[row_name]
        values.update(hota=float(np.mean(res["HOTA"])), deta=float(np.mean(res["DetA"])),
                      assa=float(np.mean(res["AssA"])))
        out[row_name] = values
    overall = out.pop("OVERALL")
    return {"sequences": out, "overall": overall}

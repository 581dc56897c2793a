"""``roadtrack eval mot``: CLEAR and identity metrics (motmetrics) and HOTA (trackeval).

One motmetrics accumulator per sequence, fed with our own vectorised 1 - IoU distances
(motmetrics' ``iou_matrix`` needs ``np.asfarray``, gone in NumPy 2); pairs below the IoU
threshold are "do not pair" (NaN). ``overall`` is motmetrics' own ``generate_overall`` summary,
and HOTA/DetA/AssA come from ``trackeval.metrics.HOTA`` (mean over its alpha thresholds),
combined over sequences with trackeval's ``combine_sequences``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..boxes import iou_matrix
from ..errors import UserError

CLEAR_METRICS = ["idf1", "idp", "idr", "recall", "precision", "num_unique_objects",
                 "mostly_tracked", "partially_tracked", "mostly_lost", "num_false_positives",
                 "num_misses", "num_switches", "num_fragmentations", "mota", "motp",
                 "num_transfer", "num_ascend", "num_migrate"]
"""motmetrics' ``motchallenge_metrics``, in its order."""

COUNT_METRICS = {m for m in CLEAR_METRICS if m.startswith("num_") or m.endswith("_tracked")
                 or m == "mostly_lost"}


@dataclass
class Sequence:
    """Ground truth and tracker output of one sequence: frames (N,), ids (N,), boxes (N, 4) xyxy."""

    gt_frames: np.ndarray
    gt_ids: np.ndarray
    gt_boxes: np.ndarray
    pr_frames: np.ndarray
    pr_ids: np.ndarray
    pr_boxes: np.ndarray


def _by_frame(frames: np.ndarray) -> dict[int, np.ndarray]:
    order = np.argsort(frames, kind="stable")
    values, starts = np.unique(frames[order], return_index=True)
    return dict(zip(values.tolist(), np.split(order, starts[1:])))


def accumulate(seq: Sequence, iou_threshold: float = 0.5):
    """motmetrics accumulator and trackeval HOTA input of one sequence.

    Frames seen by either side are visited in order (a frame missing from the tracker gives
    misses, one missing from the ground truth false positives), as motmetrics' own
    ``compare_to_groundtruth`` does.
    """
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


def evaluate_sequences(sequences: dict[str, Sequence], iou_threshold: float = 0.5) -> dict:
    """``{"sequences": {name: {metric: value}}, "overall": {...}}`` (motmetrics' names)."""
    import motmetrics as mm
    from trackeval.metrics import HOTA

    if not sequences:
        raise UserError("no sequences to evaluate")
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


def _plain(value, integer: bool = False):
    """A JSON-ready Python number (None for NaN: a ratio without a denominator)."""
    value = value.item() if hasattr(value, "item") else value
    if integer:
        return int(value)
    return None if isinstance(value, float) and not np.isfinite(value) else value


# ---------------------------------------------------------------- MOTChallenge folders

def find_gt(gt_root: Path, seq: str) -> Path | None:
    for candidate in (gt_root / seq / "gt.txt", gt_root / seq / "gt" / "gt.txt"):
        if candidate.is_file():
            return candidate
    return None


def find_pred(pred_root: Path, seq: str, pred_name: str | None) -> Path:
    return pred_root / seq / pred_name if pred_name else pred_root / f"{seq}.txt"


def motchallenge_sequences(gt_root: str | Path, pred_root: str | Path,
                           seqs: list[str] | None = None,
                           pred_name: str | None = None) -> dict[str, Sequence]:
    """Read ground truth (``<seq>/gt.txt`` or ``<seq>/gt/gt.txt``) and predictions
    (``<seq>.txt`` or ``<seq>/<pred_name>``). Ground-truth rows whose 7th column is 0 (the
    MOT16+ "ignore" flag) are left out."""
    from ..io.mot import read_mot

    gt_root, pred_root = Path(gt_root), Path(pred_root)
    if not gt_root.is_dir():
        raise UserError("ground-truth folder does not exist", gt_root)
    if not pred_root.is_dir():
        raise UserError("prediction folder does not exist", pred_root)
    if seqs is None:
        seqs = sorted(p.name for p in gt_root.iterdir() if p.is_dir() and find_gt(gt_root, p.name))
        if not seqs:
            raise UserError("no <seq>/gt.txt or <seq>/gt/gt.txt found", gt_root)
    out = {}
    for seq in seqs:
        gt_path = find_gt(gt_root, seq)
        if gt_path is None:
            raise UserError(f"sequence {seq!r} has no gt.txt or gt/gt.txt", gt_root / seq)
        pred_path = find_pred(pred_root, seq, pred_name)
        if not pred_path.is_file():
            raise UserError(f"no predictions for sequence {seq!r}", pred_path)
        gt = read_mot(gt_path)
        gt = gt.select(gt.scores != 0)
        pr = read_mot(pred_path)
        out[seq] = Sequence(gt.frames, gt.ids, gt.boxes_xyxy, pr.frames, pr.ids, pr.boxes_xyxy)
    return out


# ---------------------------------------------------------------- ROAD++ runs

def road_sequences(anno, run: str | Path, videos: list[str]) -> tuple[dict, dict]:
    """Per video and per agent class: ground-truth agents (``tube_uid``) against a run's tracks.

    Only annotated frames count, both sides in 840x600 pixels. A track's class is the argmax of
    its rows' mean agent probability. Returns ({video: Sequence}, {class: {video: Sequence}}).
    """
    from ..boxes import scale_boxes
    from ..io.artifacts import load_stage

    width, height = anno.labels.eval_size
    agents = anno.labels.names("agent")
    overall, per_class = {}, {name: {} for name in agents}
    for video in videos:
        va = anno.videos[video]
        tr = load_stage(run, "tracks", video)
        keep_gt = va.annotated[va.frames - 1]
        gt_frames, gt_ids = va.frames[keep_gt].astype(np.int64), va.track_ids[keep_gt]
        gt_boxes = scale_boxes(va.boxes[keep_gt], width, height)
        gt_agent = va.labels["agent"][keep_gt]
        frames = tr["frames"].astype(np.int64)
        inside = (frames >= 1) & (frames <= va.numf)
        inside[inside] = va.annotated[frames[inside] - 1]
        ids = tr["track_ids"].astype(np.int64)[inside]
        boxes = scale_boxes(tr["boxes"][inside], width / float(tr["width"]),
                            height / float(tr["height"]))
        probs = tr["agent"][inside].astype(np.float64)
        uid, inverse = np.unique(ids, return_inverse=True)
        sums = np.zeros((len(uid), probs.shape[1]))
        np.add.at(sums, inverse, probs)
        track_class = sums.argmax(axis=1)[inverse] if len(uid) else np.zeros(0, dtype=np.int64)
        overall[video] = Sequence(gt_frames, gt_ids, gt_boxes, frames[inside], ids, boxes)
        for c, name in enumerate(agents):
            g, p = gt_agent[:, c], track_class == c
            if g.any() or p.any():
                per_class[name][video] = Sequence(gt_frames[g], gt_ids[g], gt_boxes[g],
                                                  frames[inside][p], ids[p], boxes[p])
    return overall, {k: v for k, v in per_class.items() if v}


def evaluate_road_tracks(anno, run: str | Path, subset: str | None = None,
                         iou_threshold: float = 0.5) -> dict:
    """``{"sequences", "overall", "classes": {agent: overall of that class}}`` for a run."""
    from ..io.artifacts import artifact_path

    videos = anno.split(subset)
    if not videos:
        raise UserError(f"no videos of split {subset!r}", anno.path)
    missing = [v for v in videos if not artifact_path(run, "tracks", v).is_file()]
    if missing:
        raise UserError(f"no track artifacts for {len(missing)} of {len(videos)} videos "
                        f"({', '.join(missing[:5])})", Path(run) / "tracks")
    overall, per_class = road_sequences(anno, run, videos)
    out = evaluate_sequences(overall, iou_threshold)
    out["classes"] = {name: evaluate_sequences(seqs, iou_threshold)["overall"]
                      for name, seqs in per_class.items()}
    return out


def format_mot_report(result: dict) -> str:
    """Terminal tables: per sequence and overall (ratios in %), then per class when present."""
    from ..report import table

    columns = [("IDF1", "idf1", 100), ("IDP", "idp", 100), ("IDR", "idr", 100),
               ("Rcll", "recall", 100), ("Prcn", "precision", 100), ("GT", "num_unique_objects", 0),
               ("MT", "mostly_tracked", 0), ("PT", "partially_tracked", 0),
               ("ML", "mostly_lost", 0), ("FP", "num_false_positives", 0),
               ("FN", "num_misses", 0), ("IDs", "num_switches", 0),
               ("FM", "num_fragmentations", 0), ("MOTA", "mota", 100), ("MOTP", "motp", 1),
               ("HOTA", "hota", 100), ("DetA", "deta", 100), ("AssA", "assa", 100)]

    def row(name, values):
        out = [name]
        for _, key, scale in columns:
            v = values[key]
            if v is None:
                out.append(float("nan"))
            else:
                out.append(int(v) if scale == 0 else float(v) * scale)
        return out

    rows = [row(n, v) for n, v in result["sequences"].items()] + [row("OVERALL",
                                                                       result["overall"])]
    text = table(rows, ["sequence"] + [c[0] for c in columns])
    if result.get("classes"):
        text += "\n\nper agent class (all videos)\n" + table(
            [row(n, v) for n, v in result["classes"].items()], ["class"] + [c[0] for c in columns])
    return text

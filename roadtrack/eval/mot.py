"""``roadtrack eval mot``: CLEAR and identity metrics (motmetrics' rules) and HOTA (trackeval's).

Each sequence's frames are visited in order, both sides' boxes in that frame compared by IoU
(our vectorised matrix; motmetrics' ``iou_matrix`` needs ``np.asfarray``, gone in NumPy 2), pairs
below the IoU threshold "do not pair". :class:`~roadtrack.eval.clear.ClearMot` follows
motmetrics' ``MOTAccumulator`` and ``compute_many(..., generate_overall=True)``,
:class:`~roadtrack.eval.hota.Hota` trackeval's ``HOTA.eval_sequence`` (mean over its alpha
thresholds) and sequences are combined by trackeval's ``combine_sequences``: the same numbers as
those libraries, in memory that grows with the rows and the overlapping id pairs, not with the
ids squared. Ids must be unique within a frame on each side.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..boxes import scale_boxes, xywh_to_xyxy
from ..errors import UserError
from ..io.artifacts import artifact_path, load_stage
from ..io.mot import read_mot
from ..io.runs import TRACKS
from ..report import table
from .clear import ClearMot, combine
from .frames import frame_overlaps
from .hota import Hota

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


def evaluate_sequence(seq: Sequence, iou_threshold: float = 0.5) -> tuple[dict, dict]:
    """motmetrics' per-sequence values (see :func:`roadtrack.eval.clear.ClearMot.summary`) and
    trackeval's HOTA result of one sequence."""
    gt_uid, gt_index = np.unique(seq.gt_ids, return_inverse=True)
    pr_uid, pr_index = np.unique(seq.pr_ids, return_inverse=True)
    gt_index, pr_index = gt_index.reshape(-1), pr_index.reshape(-1)
    clear = ClearMot(gt_index, pr_index, len(gt_uid), len(pr_uid))
    hota = Hota(gt_index, pr_index, len(gt_uid), len(pr_uid))
    walk = (seq.gt_frames, seq.gt_boxes, seq.pr_frames, seq.pr_boxes)
    for g, p, r, c, iou in frame_overlaps(*walk):  # pairs with IoU > 0
        within = ~(1.0 - iou > 1.0 - iou_threshold)  # the others "do not pair" (NaN)
        clear.update(g, p, r[within], c[within], 1.0 - iou[within])
        hota.first(g, p, r, c, iou)
    for g, p, r, c, iou in frame_overlaps(*walk):
        hota.second(g, p, r, c, iou)
    return clear.summary(seq.gt_frames), hota.result()


def check_unique_ids(frames: np.ndarray, ids: np.ndarray) -> tuple[int, int] | None:
    """Rows (i, j), i < j, of the first id that appears twice in one frame, or None."""
    repeated = _repeats(frames, ids)
    if not repeated.any():
        return None
    j = int(np.flatnonzero(repeated)[0])
    i = int(np.flatnonzero((frames[:j] == frames[j]) & (ids[:j] == ids[j]))[0])
    return i, j


def evaluate_sequences(sequences: dict[str, Sequence], iou_threshold: float = 0.5) -> dict:
    """``{"sequences": {name: {metric: value}}, "overall": {...}}`` (motmetrics' names)."""
    from trackeval.metrics import HOTA  # lazy: `roadtrack track` imports this module

    if not sequences:
        raise UserError("no sequences to evaluate")
    clear_res, hota_res = {}, {}
    for name, seq in sequences.items():
        for side, frames, ids in (("ground-truth", seq.gt_frames, seq.gt_ids),
                                  ("predicted", seq.pr_frames, seq.pr_ids)):
            twice = check_unique_ids(frames, ids)
            if twice is not None:
                raise UserError(f"sequence {name}: {side} id {ids[twice[0]]} appears twice in "
                                f"frame {frames[twice[0]]}")
        clear_res[name], hota_res[name] = evaluate_sequence(seq, iou_threshold)
    clear_res["OVERALL"] = combine(list(clear_res.values()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        hota_res["OVERALL"] = HOTA().combine_sequences({n: hota_res[n] for n in sequences})
    out = {}
    for name, values in clear_res.items():
        row = {m: _plain(values[m], integer=m in COUNT_METRICS) for m in CLEAR_METRICS}
        res = hota_res[name]
        row.update(hota=float(np.mean(res["HOTA"])), deta=float(np.mean(res["DetA"])),
                   assa=float(np.mean(res["AssA"])))
        out[name] = row
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
                           seqs: list[str] | None = None, pred_name: str | None = None,
                           zero_based: bool = False, frame_hint: str = ""
                           ) -> dict[str, Sequence]:
    """Read ground truth (``<seq>/gt.txt`` or ``<seq>/gt/gt.txt``) and predictions
    (``<seq>.txt`` or ``<seq>/<pred_name>``; an empty file is a tracker that found nothing).
    Ground-truth rows whose 7th column is 0 (the MOT16+ "ignore" flag) are left out. Frames count
    from 1, or from 0 in both with ``zero_based``; an id twice in a frame is an error.
    ``frame_hint`` ends the message about a frame number below 1 (the caller's advice)."""
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
        gt = _read_tracks(gt_path, zero_based, False, frame_hint)
        keep = gt.scores != 0
        gt_seq = (gt.frames[keep], gt.ids[keep], xywh_to_xyxy(gt.boxes_xywh[keep]))
        del gt
        pr = _read_tracks(pred_path, zero_based, True, frame_hint)
        out[seq] = Sequence(*gt_seq, pr.frames, pr.ids, pr.boxes_xyxy)
    return out


def _read_tracks(path: Path, zero_based: bool, allow_empty: bool, frame_hint: str):
    """A MOT file of tracks: frames from 1 (or 0), each id at most once per frame."""
    table = read_mot(path, first_frame=0 if zero_based else 1, allow_empty=allow_empty,
                     frame_hint="" if zero_based else frame_hint)
    twice = check_unique_ids(table.frames, table.ids)
    if twice is not None:
        a, b = twice
        raise UserError(f"lines {table.lines[a]} and {table.lines[b]}: id {table.ids[a]} twice "
                        f"in frame {table.frames[a] - int(zero_based)}", path)
    return table


# ---------------------------------------------------------------- ROAD++ runs

def road_sequences(anno, run: str | Path, videos: list[str]) -> tuple[dict, dict]:
    """Per video and per agent class: ground-truth agents (``tube_uid``) against a run's tracks.

    Only annotated frames count, both sides in 840x600 pixels. A track's class is the argmax of
    its rows' mean agent probability. Returns ({video: Sequence}, {class: {video: Sequence}}).
    """
    width, height = anno.labels.eval_size
    agents = anno.labels.names("agent")
    overall: dict[str, Sequence] = {}
    per_class: dict[str, dict[str, Sequence]] = {name: {} for name in agents}
    for video in videos:
        va = anno.videos[video]
        tr = load_stage(run, TRACKS, video)
        keep_gt = va.annotated[va.frames - 1]
        repeated = _repeats(va.frames, va.track_ids)
        if repeated.any():  # the evaluators need one box per tube and frame
            warnings.warn(f"{anno.path}: video {video}: {int(repeated.sum())} boxes repeat a "
                          "tube_uid within a frame; the first of each is scored", stacklevel=2)
            keep_gt &= ~repeated
        gt_frames, gt_ids = va.frames[keep_gt].astype(np.int64), va.track_ids[keep_gt]
        gt_boxes = scale_boxes(va.boxes[keep_gt], width, height)
        gt_agent = va.labels["agent"][keep_gt]
        frames = tr["frames"].astype(np.int64)
        inside = (frames >= 1) & (frames <= va.numf)
        inside[inside] = va.annotated[frames[inside] - 1]
        ids = tr["track_ids"].astype(np.int64)[inside]
        source = artifact_path(run, TRACKS, video)
        if _repeats(frames[inside], ids).any():
            raise UserError("a track_id appears twice in one frame", source)
        if not np.isfinite(tr["boxes"][inside]).all():
            raise UserError("non-finite track boxes", source)
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


def _repeats(frames: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(N,) bool: rows whose (frame, id) an earlier row already has."""
    order = np.lexsort((np.arange(len(ids)), ids, frames))
    same = np.zeros(len(ids), dtype=bool)
    f, i = frames[order], ids[order]
    same[order[1:]] = (f[1:] == f[:-1]) & (i[1:] == i[:-1])
    return same


def evaluate_road_tracks(anno, run: str | Path, subset: str | None = None,
                         iou_threshold: float = 0.5) -> dict:
    """``{"sequences", "overall", "classes": {agent: overall of that class}}`` for a run."""
    videos = anno.split(subset)
    if not videos:
        raise UserError(f"no videos of split {subset!r}", anno.path)
    missing = [v for v in videos if not artifact_path(run, TRACKS, v).is_file()]
    if missing:
        raise UserError(f"no track artifacts for {len(missing)} of {len(videos)} videos "
                        f"({', '.join(missing[:5])})", Path(run) / TRACKS)
    overall, per_class = road_sequences(anno, run, videos)
    out = evaluate_sequences(overall, iou_threshold)
    out["classes"] = {name: evaluate_sequences(seqs, iou_threshold)["overall"]
                      for name, seqs in per_class.items()}
    return out


def format_mot_report(result: dict) -> str:
    """Terminal tables: per sequence and overall (ratios in %), then per class when present."""
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

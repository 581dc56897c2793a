"""Tracker accuracy on real MOT15 ground truth, against SORT, ByteTrack and OC-SORT.

Data (not shipped; the MOTChallenge licence is non-commercial): the public detections
(SORT's Faster R-CNN, ``--dets DIR/<seq>/det/det.txt``) and the real ground truth of KITTI-13,
KITTI-17, ETH-Sunnyday and PETS09-S2L1 (``--gt DIR/<seq>/gt/gt.txt``), by default
``shared/data/mot15-det`` and ``shared/data/mot15-gt`` beside the clone.

Scored with roadtrack's ``eval mot`` code (motmetrics' rules: a match needs IoU >= 0.5, ground
truth rows with conf 0 are left out, "overall" from the summed counts). Prints

1. the peers' rows measured with their own published defaults (issue 17; fixed numbers);
2. per sequence and overall MOTA, IDF1, FP, FN, ID switches and fragmentations of the SORT
   reference (tests/reference/sort.py, run here), the presets and the old default;
3. where the ID switches come from (``--switches``);
4. an ablation of the default: each of its changes to ByteTrack turned off alone (``--ablation``);
5. a sensitivity table: one setting moved at a time (``--sensitivity``);
6. leave one sequence out: settings picked on three sequences from a small grid, scored on the
   fourth, against the default (``--loso``).

    PYTHONPATH=. python tools/eval_tracker.py [--all] [--presets bytetrack sort deepsort]
"""
from __future__ import annotations

import argparse
import itertools
import sys
import warnings
from pathlib import Path

import motmetrics as mm
import numpy as np

from roadtrack.boxes import iou_matrix
from roadtrack.eval.mot import Sequence, evaluate_sequences
from roadtrack.io.mot import MotTable, read_mot
from roadtrack.report import table
from roadtrack.tracking.config import TrackerConfig, load_config
from roadtrack.tracking.sequence import track_sequence
from tests.reference.sort import SortReference

ROOT = Path(__file__).resolve().parents[1]
DETS = ROOT.parent / "shared" / "data" / "mot15-det"
GT = ROOT.parent / "shared" / "data" / "mot15-gt"
SEQUENCES = ("KITTI-13", "KITTI-17", "ETH-Sunnyday", "PETS09-S2L1")

#: (tracker, MOTA, IDF1, ID switches, KITTI-13 MOTA) with each peer's published defaults, as
#: measured for issue 17 on the four sequences (overall).
PEERS = [("SORT (max_age 1, min_hits 3, IoU 0.3)", 0.569, 0.482, 150, 0.193),
         ("ByteTrack (track_thresh 0.6, buffer 30, match 0.9)", 0.553, 0.564, 130, 0.047),
         ("OC-SORT (det_thresh 0.6, IoU 0.3, delta_t 3, inertia 0.2)", 0.532, 0.552, 105, 0.175)]

#: The default before issue 17 (ByteTrack's thresholds as scores, detection boxes written).
OLD_DEFAULT = dict(output_box="detection", score_range="absolute", high_score=0.5,
                   new_track_score=0.6, max_iou_distance=0.8, n_init=2, freeze_lost_height=False,
                   std_weight_velocity=1 / 160)

#: The default's changes to ByteTrack as run by its code, each with the value that turns it off.
ABLATION = {"Kalman box written (off: the detection)": dict(output_box="detection"),
            "thresholds in the score range (off: as scores)": dict(score_range="absolute"),
            "3 hits confirm (off: 2, ByteTrack)": dict(n_init=2),
            "lost tracks keep their height (off: height velocity kept)":
                dict(freeze_lost_height=False),
            "velocity noise 1/80 (off: DeepSORT's 1/160)": dict(std_weight_velocity=1 / 160)}

#: One setting moved at a time around the default.
SENSITIVITY = {"high_score": [0.5, 0.7], "new_track_score": [0.6, 0.8], "low_score": [0.0, 0.3],
               "n_init": [2, 4], "max_age": [15, 60], "max_iou_distance": [0.8, 0.7],
               "std_weight_velocity": [1 / 160, 1 / 40]}
# (the filter's means depend only on the ratio of the two noise weights, so moving one is enough)

#: The grid that leave-one-sequence-out picks from.
GRID = {"n_init": [2, 3], "high_score": [0.5, 0.6, 0.7], "max_age": [15, 30, 60],
        "std_weight_velocity": [1 / 160, 1 / 80, 1 / 40]}

COLUMNS = ["MOTA", "IDF1", "FP", "FN", "IDsw", "Frag"]


class RealData:
    """Detections and ground truth (conf 0 rows dropped) of the sequences found."""

    def __init__(self, dets: Path, gt: Path, names=SEQUENCES):
        self.dets: dict[str, MotTable] = {}
        self.gt: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for name in names:
            det_file, gt_file = dets / name / "det" / "det.txt", gt / name / "gt" / "gt.txt"
            if det_file.is_file() and gt_file.is_file():
                self.dets[name] = read_mot(det_file)
                g = read_mot(gt_file)
                keep = g.scores != 0  # MOT15: conf 0 rows are ignored
                self.gt[name] = g.frames[keep], g.ids[keep], g.boxes_xyxy[keep]
        self.names = list(self.dets)
        # the detector's score range over all sequences (what `roadtrack track` uses)
        scores = np.concatenate([d.scores for d in self.dets.values()]) if self.dets else []
        self.score_range = (float(np.min(scores)), max(1.0, float(np.max(scores)))) \
            if len(scores) else None


def run_tracker(data: RealData, config: TrackerConfig) -> dict:
    """{sequence: (frames, ids, boxes xyxy)} of a roadtrack config."""
    out = {}
    for name, d in data.dets.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = track_sequence(d.frames, d.boxes_xyxy, d.scores, config=config,
                               score_range=data.score_range)
        out[name] = r.frames, r.track_ids, r.boxes
    return out


def sort_reference_tracks(frames: np.ndarray, boxes: np.ndarray):
    """(frames, ids, boxes) of the SORT reference on one sequence (it writes the detections)."""
    ref, ids = SortReference(), np.full(len(frames), -1)
    for f in range(1, int(frames.max()) + 1):
        rows = np.flatnonzero(frames == f)
        ids[rows] = ref.update(boxes[rows])
    keep = ids >= 0
    return frames[keep], ids[keep], boxes[keep]


def run_sort_reference(data: RealData) -> dict:
    """{sequence: (frames, ids, boxes)} of the SORT reference."""
    return {name: sort_reference_tracks(d.frames, d.boxes_xyxy) for name, d in data.dets.items()}


def accumulate(gt_frames, gt_ids, gt_xyxy, hyp_frames, hyp_ids, hyp_xyxy) -> mm.MOTAccumulator:
    """motmetrics' accumulator of one sequence (flat per-row arrays, boxes x1 y1 x2 y2; a pair
    matches at IoU >= 0.5; ``motmetrics.distances.iou_matrix`` fails on NumPy 2)."""
    acc = mm.MOTAccumulator(auto_id=False)
    last = int(max(gt_frames.max(), hyp_frames.max() if len(hyp_frames) else 0))
    for f in range(1, last + 1):
        g, h = gt_frames == f, hyp_frames == f
        dist = 1.0 - iou_matrix(gt_xyxy[g], hyp_xyxy[h])
        dist[dist > 0.5] = np.nan
        acc.update(gt_ids[g].tolist(), hyp_ids[h].tolist(), dist, frameid=f)
    return acc


def evaluate(data: RealData, tracks: dict) -> dict:
    """roadtrack's ``eval mot`` result: {"sequences": {name: metrics}, "overall": metrics}."""
    return evaluate_sequences({name: Sequence(*data.gt[name], *tracks[name])
                               for name in data.names})


def metric_row(m: dict) -> list:
    return [f"{m['mota']:.3f}", f"{m['idf1']:.3f}", m["num_false_positives"],
            m["num_misses"], m["num_switches"], m["num_fragmentations"]]


def pooled(data: RealData, result: dict, names) -> tuple[float, float]:
    """Overall MOTA and IDF1 of some sequences from their counts (motmetrics' overall)."""
    objects = errors = predictions = idtp = 0.0
    for name in names:
        m = result["sequences"][name]
        n = len(data.gt[name][0])
        pred = n - m["num_misses"] + m["num_false_positives"]  # matched + false positives
        objects += n
        predictions += pred
        errors += m["num_misses"] + m["num_false_positives"] + m["num_switches"]
        idtp += m["idf1"] * (n + pred) / 2
    return 1 - errors / objects, 2 * idtp / (objects + predictions)


def switch_sources(data: RealData, tracks: dict) -> dict:
    """Count ID switches by what took the object over: a track born within the last 3 frames
    (the old one lost it: ``reborn``), a track then following another object (``stolen``), or
    an older track following nobody (``recovered``: a lost or false track)."""
    counts = dict.fromkeys(["reborn", "stolen", "recovered"], 0)
    for name in data.names:
        gf, gi, gb = data.gt[name]
        hf, hi, hb = tracks[name]
        born = {int(h): int(hf[hi == h].min()) for h in np.unique(hi)}
        acc = accumulate(gf, gi, gb, hf, hi, hb)
        following: dict[int, int] = {}  # track -> the object it last matched
        for (frame, _), ev in acc.mot_events.iterrows():
            if ev.Type not in ("MATCH", "SWITCH"):
                continue
            h, o = int(ev.HId), int(ev.OId)
            if ev.Type == "SWITCH":
                if frame - born[h] <= 2:
                    counts["reborn"] += 1
                elif following.get(h, o) != o:
                    counts["stolen"] += 1
                else:
                    counts["recovered"] += 1
            following[h] = o
    return counts


def loso(data: RealData, default: TrackerConfig) -> list[list]:
    """Per held-out sequence: the grid point best on the other three (MOTA + IDF1 pooled), and
    that point's and the default's scores on the held-out one."""
    keys = list(GRID)
    points = [dict(zip(keys, values, strict=True)) for values in itertools.product(*GRID.values())]
    results = [evaluate(data, run_tracker(data, default.replace(**p))) for p in points]
    base = evaluate(data, run_tracker(data, default))
    rows = []
    for held in data.names:
        rest = [n for n in data.names if n != held]
        best = max(range(len(points)), key=lambda k: sum(pooled(data, results[k], rest)))
        picked = results[best]["sequences"][held]
        d = base["sequences"][held]
        label = ", ".join(f"{k} {_short(v)}" for k, v in points[best].items())
        rows.append([held, label, *(f"{v:.3f}" for v in (picked["mota"], picked["idf1"],
                                                           d["mota"], d["idf1"]))])
    return rows


def _short(v) -> str:
    return f"1/{round(1 / v)}" if isinstance(v, float) and 0 < v < 0.04 else str(v)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dets", type=Path, default=DETS, help="Folder of <seq>/det/det.txt.")
    ap.add_argument("--gt", type=Path, default=GT, help="Folder of <seq>/gt/gt.txt.")
    ap.add_argument("--presets", nargs="+", default=["bytetrack", "sort", "deepsort"],
                    help="Preset names or YAML files; the first is the one analysed.")
    ap.add_argument("--switches", action="store_true", help="Where the ID switches come from.")
    ap.add_argument("--ablation", action="store_true", help="Each change of the default off.")
    ap.add_argument("--sensitivity", action="store_true", help="One setting moved at a time.")
    ap.add_argument("--loso", action="store_true", help="Leave one sequence out.")
    ap.add_argument("--all", action="store_true", help="All of the above.")
    args = ap.parse_args(argv)
    data = RealData(args.dets, args.gt)
    if not data.names:
        sys.exit(f"eval_tracker: no sequence with both {args.dets}/<seq>/det/det.txt and "
                 f"{args.gt}/<seq>/gt/gt.txt")
    print(f"sequences: {', '.join(data.names)}; detector score range "
          f"[{data.score_range[0]:.2f}, {data.score_range[1]:.2f}]\n")
    print("Peers with their published defaults (issue 17, overall):")
    print(table([[n, f"{m:.3f}", f"{i:.3f}", s, f"{k:.3f}"] for n, m, i, s, k in PEERS],
                ["tracker", "MOTA", "IDF1", "IDsw", "KITTI-13 MOTA"]) + "\n")

    main_cfg = load_config(args.presets[0])
    runs = {"SORT reference": run_sort_reference(data)}
    for preset in args.presets:
        cfg = load_config(preset)
        runs[f"roadtrack {cfg.name}"] = run_tracker(data, cfg)
    runs["roadtrack bytetrack before issue 17"] = run_tracker(
        data, load_config("bytetrack", **OLD_DEFAULT))
    results = {name: evaluate(data, tracks) for name, tracks in runs.items()}
    rows = []
    for name, res in results.items():
        for seq, m in res["sequences"].items():
            rows.append([name, seq, *metric_row(m)])
        rows.append([name, "overall", *metric_row(res["overall"])])
    print(table(rows, ["tracker", "sequence", *COLUMNS]) + "\n")

    if args.switches or args.all:
        rows = [[name, *switch_sources(data, runs[name]).values()]
                for name in (f"roadtrack {main_cfg.name}", "roadtrack bytetrack before issue 17",
                             "SORT reference")]
        print("ID switches by what took the object over (reborn: a track born <= 2 frames "
              "before; stolen: a track following another object; recovered: an older track "
              "following none):")
        print(table(rows, ["tracker", "reborn", "stolen", "recovered"]) + "\n")
    if args.ablation or args.all:
        rows = [["default", *metric_row(results[f"roadtrack {main_cfg.name}"]["overall"])]]
        for label, off in ABLATION.items():
            rows.append([f"- {label}", *metric_row(
                evaluate(data, run_tracker(data, main_cfg.replace(**off)))["overall"])])
        rows.append(["all off (the old default)",
                     *metric_row(results["roadtrack bytetrack before issue 17"]["overall"])])
        print(f"Ablation of {main_cfg.name} (overall):")
        print(table(rows, ["setting", *COLUMNS]) + "\n")
    if args.sensitivity or args.all:
        rows = []
        for key, values in SENSITIVITY.items():
            for v in values:
                m = evaluate(data, run_tracker(data, main_cfg.replace(**{key: v})))["overall"]
                rows.append([f"{key} {_short(getattr(main_cfg, key))} -> {_short(v)}",
                             *metric_row(m)])
        print(f"Sensitivity of {main_cfg.name} (overall; one setting moved):")
        print(table(rows, ["setting", *COLUMNS]) + "\n")
    if args.loso or args.all:
        print(f"Leave one sequence out: the best of {np.prod([len(v) for v in GRID.values()])} "
              f"settings ({', '.join(GRID)}) on the other three (MOTA + IDF1), scored on the one "
              f"left out, against {main_cfg.name}:")
        print(table(loso(data, main_cfg), ["held out", "picked on the other three",
                                           "MOTA picked", "IDF1 picked", "MOTA default",
                                           "IDF1 default"]))


if __name__ == "__main__":
    main()

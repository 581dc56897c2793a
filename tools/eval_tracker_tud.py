"""Tracker accuracy on stand-in detections (TUD ground truth shipped with motmetrics).

Stand-ins agreed with the tracker and misled its tuning (issue 17): use ``tools/eval_tracker.py``
on real MOT15 data for decisions. These sets remain for what real data lacks here: the appearance
path with identity embeddings.

Real ground truth: TUD-Campus and TUD-Stadtmitte (MOT15), shipped in ``motmetrics/data``. Their
public detections are not shipped there, so two detection sets stand in:

- ``tracker-boxes``: the boxes of the tracker output that motmetrics ships beside the ground
  truth (``test.txt``) with the ids removed: real, detector-like boxes with real misses;
- ``noisy-gt``: the ground truth boxes with seeded detector noise: 5% jitter, 20% misses, 15% of
  the found boxes at low score (occlusion), ~0.7 false positives per frame at low score.
  ``--embeddings`` adds 128-D identity embeddings (one random direction per person plus noise,
  ``--embedding-noise``; FPs get random ones) to test the appearance path.

``--public-dets DIR`` adds the real MOT15 public detections when a folder holds them
(``DIR/TUD-Campus/det/det.txt``, ``DIR/TUD-Stadtmitte/det/det.txt``).

Scores: MOTA, IDF1, ID switches, with a match at IoU >= 0.5 (distance 1 - IoU computed here,
vectorised; ``motmetrics.distances.iou_matrix`` fails on NumPy 2).

    PYTHONPATH=. python tools/eval_tracker_tud.py [--presets deepsort sort bytetrack] [--embeddings]
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import motmetrics as mm
import numpy as np

from roadtrack.io.mot import read_mot
from roadtrack.report import table
from roadtrack.tracking.config import load_config
from roadtrack.tracking.sequence import track_sequence
from tools.eval_tracker import accumulate, sort_reference_tracks

DATA = Path(mm.__file__).parent / "data"
SEQUENCES = ("TUD-Campus", "TUD-Stadtmitte")


def mot_scores(gt_frames, gt_ids, gt_xyxy, hyp_frames, hyp_ids, hyp_xyxy, name="seq"):
    """motmetrics MOTA/IDF1/IDs for flat per-row arrays (boxes x1 y1 x2 y2)."""
    acc = accumulate(gt_frames, gt_ids, gt_xyxy, hyp_frames, hyp_ids, hyp_xyxy)
    summary = mm.metrics.create().compute(acc, metrics=["mota", "idf1", "num_switches"], name=name)
    row = summary.iloc[0]
    return float(row["mota"]), float(row["idf1"]), int(row["num_switches"])


def tracker_box_detections(seq: str):
    t = read_mot(DATA / seq / "test.txt")
    return t.frames, t.boxes_xyxy, np.ones(len(t)), None


def public_detections(folder: Path, seq: str):
    t = read_mot(folder / seq / "det" / "det.txt")
    return t.frames, t.boxes_xyxy, t.scores, None


def noisy_gt_detections(seq: str, seed: int = 0, embeddings: bool = False,
                        embedding_noise: float = 0.03):
    gt = read_mot(DATA / seq / "gt.txt")
    rng = np.random.default_rng(seed)
    n = len(gt)
    found = rng.random(n) >= 0.20
    xywh = gt.boxes_xywh.copy()
    wh = xywh[:, 2:]
    xywh[:, :2] += rng.normal(0, 0.05, (n, 2)) * wh
    xywh[:, 2:] *= np.exp(rng.normal(0, 0.05, (n, 2)))
    scores = np.clip(rng.normal(0.85, 0.08, n), 0.5, 1.0)
    low = rng.random(n) < 0.15
    scores[low] = rng.uniform(0.1, 0.5, low.sum())
    frames, boxes, ids = gt.frames[found], xywh[found], gt.ids[found]
    scores = scores[found]
    # false positives: boxes of the sequence's sizes at random places, low scores
    nfp = rng.poisson(0.7 * gt.frames.max())
    pick = rng.integers(0, n, nfp)
    fp = gt.boxes_xywh[pick].copy()
    fp[:, 0] = rng.uniform(0, 640 - fp[:, 2])
    fp[:, 1] = rng.uniform(0, 300, nfp)
    frames = np.concatenate([frames, rng.integers(1, gt.frames.max() + 1, nfp)])
    boxes = np.concatenate([boxes, fp])
    scores = np.concatenate([scores, rng.uniform(0.1, 0.7, nfp)])
    feats = None
    if embeddings:
        identity = rng.normal(size=(ids.max() + 1, 128))
        identity /= np.linalg.norm(identity, axis=1, keepdims=True)
        feats = np.concatenate([identity[ids] + rng.normal(0, embedding_noise, (len(ids), 128)),
                                rng.normal(0, 1 / np.sqrt(128), (nfp, 128))]).astype(np.float32)
    xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    return frames, xyxy, scores, feats


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["deepsort", "sort", "bytetrack"],
                    help="Preset names or YAML files.")
    ap.add_argument("--embeddings", action="store_true", help="Identity embeddings (noisy-gt).")
    ap.add_argument("--embedding-noise", type=float, default=0.03,
                    help="Per-dimension noise of the identity embeddings (0.06: weak embeddings).")
    ap.add_argument("--public-dets", type=Path, default=None,
                    help="Folder with TUD-Campus/det/det.txt and TUD-Stadtmitte/det/det.txt "
                         "(MOT15 public detections) to score as a third set.")
    ap.add_argument("--seeds", type=int, default=3, help="Noise seeds for noisy-gt.")
    args = ap.parse_args(argv)
    sets = {"tracker-boxes": lambda s, seed: tracker_box_detections(s),
            "noisy-gt": lambda s, seed: noisy_gt_detections(s, seed, args.embeddings,
                                                          args.embedding_noise)}
    if args.public_dets is not None:
        sets["public"] = lambda s, seed: public_detections(args.public_dets, s)
    rows = []
    for set_name, make in sets.items():
        seeds = range(args.seeds) if set_name == "noisy-gt" else [0]
        results: dict[str, list] = {}
        for seq in SEQUENCES:
            gt = read_mot(DATA / seq / "gt.txt")
            for seed in seeds:
                frames, boxes, scores, feats = make(seq, seed)
                f, i, b = sort_reference_tracks(frames, boxes)
                results.setdefault("SORT reference", []).append(
                    mot_scores(gt.frames, gt.ids, gt.boxes_xyxy, f, i, b))
                for preset in args.presets:
                    cfg = load_config(preset)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        r = track_sequence(frames, boxes, scores, feats, config=cfg)
                    results.setdefault(cfg.name, []).append(mot_scores(
                        gt.frames, gt.ids, gt.boxes_xyxy, r.frames, r.track_ids, r.boxes))
        for name, res in results.items():
            res = np.array(res)
            rows.append([set_name, name, f"{100 * res[:, 0].mean():.1f}",
                         f"{100 * res[:, 1].mean():.1f}", f"{res[:, 2].mean():.1f}"])
    print(table(rows, ["detections", "tracker", "MOTA %", "IDF1 %", "ID sw."]))


if __name__ == "__main__":
    main()

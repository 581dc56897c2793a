"""Camera-motion compensation and the AV action on moving-camera synthetic data.

Writes a synthetic dataset (``roadtrack synth --camera moving``, and the static one of the same
seed for reference), makes detections from its ground truth (boxes jittered by ``--jitter`` of
their size, ``--drop`` of them dropped, scores uniform in [0.9, 1]: every box is a true one),
tracks each val video with the default tracker without CMC, with CMC estimated from the frames
(sparse flow, ECC) and with the true camera motion of the simulation (an upper bound), and
prints MOTA/IDF1/ID switches (motmetrics' rules, IoU 0.5), the estimation cost per frame (decode
included) and the frame-mAP of the AV action classified from each motion.

    PYTHONPATH=. python tools/eval_cmc_synth.py [--videos 24] [--frames 100] [--seed 0]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from roadtrack.eval.av_action import av_action_ap, av_action_truth
from roadtrack.eval.mot import Sequence, evaluate_sequences
from roadtrack.events.av_action import classify, motion_features
from roadtrack.io.annotations import load_annotation
from roadtrack.io.video import FrameFolder
from roadtrack.report import table
from roadtrack.synth.dataset import ANNOTATION_NAME, write_dataset
from roadtrack.synth.ego import ego_motion
from roadtrack.tracking.config import load_config
from roadtrack.tracking.run import Detections, camera_motion
from roadtrack.tracking.sequence import track_sequence


def noisy_detections(video, rng, jitter: float, drop: float) -> Detections:
    """Ground-truth boxes of the annotated frames, jittered and thinned, in pixels."""
    keep = (rng.random(video.num_boxes) >= drop) & video.annotated[video.frames - 1]
    boxes = video.boxes[keep] * np.array([video.width, video.height] * 2)
    wh = boxes[:, 2:] - boxes[:, :2]
    boxes = boxes + rng.normal(0, jitter, boxes.shape) * np.concatenate([wh, wh], axis=1)
    return Detections(video.name, Path(video.name), video.frames[keep].astype(np.int64), boxes,
                      rng.uniform(0.9, 1.0, len(boxes)))


def true_motion(seed: int, index: int, num_frames: int, width: int, height: int) -> np.ndarray:
    """(F, 2, 3) frame-to-frame camera motion of synthetic video ``index`` (its ego path)."""
    _, cameras = ego_motion(np.random.default_rng([seed, index, 2]), num_frames, width, height)
    full = np.concatenate([cameras, np.tile([[[0, 0, 1]]], (len(cameras), 1, 1))], axis=1)
    step = full[1:] @ np.linalg.inv(full[:-1])
    return np.concatenate([np.eye(2, 3)[None], step[:, :2]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jitter", type=float, default=0.04)
    parser.add_argument("--drop", type=float, default=0.1)
    args = parser.parse_args()
    config = load_config()
    rows, av_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for camera in ("static", "moving"):
            root = Path(tmp) / camera
            write_dataset(root, args.videos, args.frames, seed=args.seed, camera=camera)
            anno = load_annotation(root / ANNOTATION_NAME)
            videos = anno.split("val")
            truth_av = av_action_truth(anno.path, videos, anno.labels)
            methods = ["none", "sparse-flow", "ecc"] + (["true"] if camera == "moving" else [])
            for method in methods:
                sequences, scores, seconds, frames = {}, {}, 0.0, 0
                for video in videos:
                    va = anno.videos[video]
                    index = int(video.split("_")[-1])
                    det = noisy_detections(va, np.random.default_rng([args.seed, 7, index]),
                                           args.jitter, args.drop)
                    motion = None
                    if method == "true":
                        motion = true_motion(args.seed, index, va.numf, va.width, va.height)
                    elif method != "none":
                        started = time.perf_counter()
                        motion = camera_motion(FrameFolder(root / "rgb-images" / video), det,
                                               method, va.numf)
                        seconds += time.perf_counter() - started
                        frames += va.numf
                    result = track_sequence(det.frames, det.boxes, det.scores, config=config,
                                            camera_motion=motion)
                    sequences[video] = Sequence(
                        va.frames.astype(np.int64), va.track_ids.astype(np.int64),
                        va.boxes * np.array([va.width, va.height] * 2), result.frames,
                        result.track_ids, det.boxes[result.det_index])
                    if motion is not None:
                        scores[video] = classify(motion_features(motion, va.width, va.height))
                overall = evaluate_sequences(sequences)["overall"]
                cost = f"{1000 * seconds / frames:.2f}" if frames else "-"
                rows.append([camera, method, round(overall["mota"], 3), round(overall["idf1"], 3),
                             overall["num_switches"], overall["num_fragmentations"], cost])
                if scores:
                    ap = av_action_ap(truth_av, scores)
                    av_rows.append([camera, method, round(float(np.mean([r.ap for r in ap])), 1)]
                                   + [round(r.ap, 1) for r in ap])
            print(f"{camera}: {len(videos)} val videos of {args.frames} frames "
                  f"({args.videos} generated, seed {args.seed})", flush=True)
    print(table(rows, ["camera", "cmc", "MOTA", "IDF1", "ID sw", "frag", "ms/frame"]))
    print(table(av_rows, ["camera", "motion", "AV frame-mAP", "Stop", "Mov", "TurRht", "TurLft",
                          "MovRht", "MovLft"]))


if __name__ == "__main__":
    main()

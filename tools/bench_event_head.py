"""Benchmark: the event head's cost, plain (``temporal: conv``) against its options
(``temporal: trajectory``, ``relation: acar``).

On the demo's synthetic data (24 videos x 100 frames; tracks made from the ground truth with
jittered boxes and noisy probabilities, as in the tests) with the run config's ``events`` section
(default: synthetic_tiny's, use_roi off), it times per variant, interleaved, median of repeats:
one training step of ``train-events`` (the time of N + 10 steps less that of 10, over N) and the
event stage's head on every track of a video (``TrainedHead.apply_video``), per video.

    PYTHONPATH=. python tools/bench_event_head.py [--config synthetic_tiny] [--steps 40]
        [--repeats 3] [--prototypes 0 8] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from roadtrack.engine.config import load_run_config
from roadtrack.events.features import EXTRA_FIELDS
from roadtrack.events.series import track_series
from roadtrack.events.stage import TrainedHead
from roadtrack.events.train import HEAD_FILE, fit_event_head
from roadtrack.io.annotations import load_annotation
from roadtrack.io.artifacts import load_stage
from roadtrack.io.runs import TRACKS
from roadtrack.synth.dataset import ANNOTATION_NAME, write_dataset
from tests.gt_runs import make_gt_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="synthetic_tiny")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prototypes", type=int, nargs="*", default=[0, 8])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    events = load_run_config(args.config).events
    variants = {"conv": replace(events, temporal="conv", relation="none"),
                "acar": replace(events, temporal="conv", relation="acar")}
    for r in args.prototypes:
        variants[f"trajectory (prototypes {r})"] = replace(
            events, temporal="trajectory", relation="none",
            head=replace(events.head, prototypes=r))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        write_dataset(data, write_frames=False)
        anno = load_annotation(data / ANNOTATION_NAME)
        run, _ = make_gt_run(Path(tmp) / "run", anno, 0)
        videos = anno.split("val")
        step, forward = {k: [] for k in variants}, {k: [] for k in variants}
        for _ in range(args.repeats):
            for name, cfg in variants.items():
                spent = []
                for steps in (10, 10 + args.steps):
                    fit = replace(cfg, fit=replace(cfg.fit, steps=steps))
                    spent.append(fit_event_head(data, run, Path(tmp) / name, fit,
                                                progress=False)["seconds"])
                step[name].append((spent[1] - spent[0]) / args.steps)
                head = TrainedHead(Path(tmp) / name / HEAD_FILE)
                started = time.perf_counter()
                for video in videos:
                    tracks = load_stage(run, TRACKS, video)
                    head.apply_video(track_series(tracks, EXTRA_FIELDS), int(tracks["width"]),
                                     int(tracks["height"]))
                forward[name].append((time.perf_counter() - started) / len(videos))
        tracks_per_video = np.mean([len(track_series(load_stage(run, TRACKS, v))) for v in videos])
    print(f"{args.config} events, batch {events.fit.batch_size} x window {events.fit.window}, "
          f"hidden {events.head.hidden}, layers {events.head.layers}; {args.threads} thread(s); "
          f"val: {len(videos)} videos, {tracks_per_video:.1f} tracks each")
    base_step, base_fwd = statistics.median(step["conv"]), statistics.median(forward["conv"])
    print(f"{'variant':28} {'train step ms':>14} {'x conv':>7} {'head per video ms':>18} "
          f"{'x conv':>7}")
    for name in variants:
        s, f = statistics.median(step[name]), statistics.median(forward[name])
        print(f"{name:28} {s * 1e3:14.1f} {s / base_step:7.2f} {f * 1e3:18.1f} "
              f"{f / base_fwd:7.2f}")


if __name__ == "__main__":
    main()

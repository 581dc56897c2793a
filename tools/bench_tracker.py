"""Tracker speed on the public MOT15 detections (../shared/data/mot15-det, 5,250 frames).

Prints frames per second of

1. the update step alone, IoU-only: our presets in ``track_sequence`` (the command's loop), the
   online ``Tracker.update`` API and the per-object filterpy Kalman path, against
   a SORT-style reference (one filterpy KalmanFilter per object plus lap, tests/reference/sort.py)
   run in the same process, interleaved, best of ``--repeats``;
2. the update step with 128-D embeddings on a synthetic scene of 20 objects per frame;
3. the whole ``roadtrack track`` command (subprocess: start-up, reading, writing) against the
   reference's whole script.

In-process figures use CPU time (``time.process_time``) and subprocesses their CPU time from
``getrusage``, so other load on a shared machine disturbs the ratios less; wall-clock figures for
the whole process are printed too.

    PYTHONPATH=. python tools/bench_tracker.py [--repeats 3] [--data ../shared/data/mot15-det]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from roadtrack.io.mot import read_mot
from roadtrack.report import table
from roadtrack.tracking.config import load_config
from roadtrack.tracking.sequence import track_sequence
from roadtrack.tracking.tracker import Tracker
from tests.reference.sort import SortReference

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mot15-det"


def ours_fps(sequences, config, features=None) -> float:
    """Frames per second of CPU time in track_sequence (the tracker's whole loop)."""
    frames, start = 0, time.process_time()
    for k, t in enumerate(sequences):
        r = track_sequence(t.frames, t.boxes_xyxy, t.scores,
                           None if features is None else features[k], config=config)
        frames += r.num_frames
    return frames / (time.process_time() - start)


def reference_fps(sequences) -> float:
    """Frames per second of CPU time in SortReference.update."""
    frames, start = 0, time.process_time()
    for t in sequences:
        ref = SortReference()
        boxes = t.boxes_xyxy  # a computed property: once per sequence
        bounds = np.searchsorted(t.frames, np.arange(1, t.frames.max() + 2))
        for k in range(len(bounds) - 1):
            ref.update(boxes[bounds[k]:bounds[k + 1]])
            frames += 1
    return frames / (time.process_time() - start)


def online_fps(sequences, config) -> float:
    """Frames per second of CPU time calling the online API, Tracker.update, frame by frame."""
    frames, start = 0, time.process_time()
    for t in sequences:
        tracker = Tracker(config)
        boxes = t.boxes_xyxy
        bounds = np.searchsorted(t.frames, np.arange(1, t.frames.max() + 2))
        for k in range(len(bounds) - 1):
            a, b = bounds[k], bounds[k + 1]
            tracker.update(boxes[a:b], t.scores[a:b])
            frames += 1
    return frames / (time.process_time() - start)


class _Table:
    """A MotTable-like record for the synthetic scene."""

    def __init__(self, frames, boxes_xyxy, scores):
        self.frames, self.boxes_xyxy, self.scores = frames, boxes_xyxy, scores


def synthetic_scene(num_frames=1000, objects=20, dim=128, seed=0):
    """``objects`` boxes per frame moving at constant speed, jittered, with identity embeddings
    (one random unit direction per object plus noise). Returns a table and features (N, dim)."""
    rng = np.random.default_rng(seed)
    start = rng.uniform([0, 0], [1800, 900], (objects, 2))
    speed = rng.normal(0, 2, (objects, 2))
    size = rng.uniform([30, 60], [80, 200], (objects, 2))
    f = np.repeat(np.arange(1, num_frames + 1), objects)
    obj = np.tile(np.arange(objects), num_frames)
    xy = start[obj] + speed[obj] * f[:, None] + rng.normal(0, 1.5, (len(f), 2))
    boxes = np.concatenate([xy, xy + size[obj]], axis=1)
    identity = rng.normal(size=(objects, dim))
    identity /= np.linalg.norm(identity, axis=1, keepdims=True)
    feats = (identity[obj] + rng.normal(0, 0.03, (len(f), dim))).astype(np.float16)
    return _Table(f, boxes, rng.uniform(0.6, 1.0, len(f))), feats


def command_seconds(args: list[str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of a subprocess: start-up, reading, tracking, writing."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(args, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="Folder of <seq>/det/det.txt.")
    ap.add_argument("--repeats", type=int, default=3, help="Best of this many runs.")
    args = ap.parse_args(argv)
    files = sorted(args.data.glob("*/det/det.txt"))
    if not files:
        sys.exit(f"bench_tracker: no <seq>/det/det.txt under {args.data}")
    seqs = [read_mot(f) for f in files]
    n_frames = sum(int(t.frames.max()) for t in seqs)
    n_dets = sum(len(t) for t in seqs)
    print(f"{len(seqs)} sequences, {n_frames} frames, {n_dets} detections "
          f"({n_dets / n_frames:.1f} per frame); best of {args.repeats}")

    sort_cfg = load_config("sort")
    runs = {
        "SORT reference (filterpy per object + lap)": lambda: reference_fps(seqs),
        "roadtrack sort preset (IoU only)": lambda: ours_fps(seqs, sort_cfg),
        "roadtrack bytetrack preset (default, no embeddings)":
            lambda: ours_fps(seqs, load_config("bytetrack")),
        "roadtrack deepsort preset (no embeddings)":
            lambda: ours_fps(seqs, load_config("deepsort")),
        "roadtrack bytetrack, Tracker.update per frame (online API)":
            lambda: online_fps(seqs, load_config("bytetrack")),
        "roadtrack sort preset, filterpy Kalman per object":
            lambda: ours_fps(seqs, sort_cfg.replace(kalman="filterpy")),
    }
    best = {name: 0.0 for name in runs}
    for _ in range(args.repeats):  # interleaved so load changes hit every run alike
        for name, run in runs.items():
            best[name] = max(best[name], run())
    ref = best["SORT reference (filterpy per object + lap)"]
    rows = [["update only, MOT15", name, round(fps), f"{fps / ref:.2f}x"]
            for name, fps in best.items()]

    scene, feats = synthetic_scene()
    embedding_runs = {
        "roadtrack bytetrack preset (default: EMA gallery)": load_config("bytetrack"),
        "roadtrack deepsort preset (gallery of the last 100)": load_config("deepsort"),
        "roadtrack bytetrack with a gallery of the last 100":
            load_config("bytetrack", gallery="budget", budget=100),
    }
    for name, cfg in embedding_runs.items():
        fps = max(ours_fps([scene], cfg, [feats]) for _ in range(args.repeats))
        rows.append(["update only, 20 objects, 128-D", name, round(fps), ""])

    with tempfile.TemporaryDirectory() as tmp:
        ref_cmd = [sys.executable, "-m", "tests.reference.sort", str(args.data), f"{tmp}/ref"]
        ours_cmd = [sys.executable, "-m", "roadtrack", "track", "--dets", str(args.data),
                    "--out", f"{tmp}/ours", "--no-progress"]
        whole = {"SORT reference script": ref_cmd,
                 "roadtrack track --config sort": ours_cmd + ["--config", "sort"],
                 "roadtrack track (default preset)": ours_cmd}
        cpu = {name: float("inf") for name in whole}
        wall = dict(cpu)
        for _ in range(args.repeats):
            for name, cmd in whole.items():
                c, w = command_seconds(cmd)
                cpu[name], wall[name] = min(cpu[name], c), min(wall[name], w)
        ref_name = "SORT reference script"
        for name in whole:
            rows.append(["whole process, MOT15 (CPU)", name, round(n_frames / cpu[name]),
                         f"{cpu[ref_name] / cpu[name]:.2f}x"])
        for name in whole:
            rows.append(["whole process, MOT15 (wall)", name, round(n_frames / wall[name]),
                         f"{wall[ref_name] / wall[name]:.2f}x"])
    print(table(rows, ["measure", "tracker", "frames/s", "vs reference"]))


if __name__ == "__main__":
    main()

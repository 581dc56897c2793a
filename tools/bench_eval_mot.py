"""Time and peak memory of ``roadtrack eval mot`` against ``roadtrack track`` on one large case.

Generates, in a temporary folder deleted afterwards, a synthetic MOTChallenge sequence: ground
truth (``SEQ/gt/gt.txt``, MOT16 layout) of ``--ids`` objects moving at constant speed over
``--rows`` rows, ``--per-frame`` objects per frame, and detections (``SEQ/det/det.txt``: the
ground-truth boxes jittered, 10% missed, 5% false positives). Then runs, as whole processes of
this tree's code,

1. ``roadtrack track --dets SEQ/det/det.txt --out pred`` (the tracker's output is the
   prediction), and
2. ``roadtrack eval mot --gt GT --pred pred``,

and prints each one's wall time and peak resident memory (``os.wait4``'s rusage of that child)
and the ratio of the two. The default is the issue's case: about 240 MB of ground truth, 4.5 M
rows, 9,000 ids.

    python tools/bench_eval_mot.py                    # the full case (needs ~3 GB free)
    python tools/bench_eval_mot.py --scale 0.1        # a tenth of rows and ids
    python tools/bench_eval_mot.py --keep /tmp/motbench --skip-track
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1920, 1080


def synthetic_gt(rows: int, ids: int, per_frame: int, seed: int = 0):
    """Ground truth of one sequence: frames (N,), ids (N,) 1-based, boxes (N, 4) xywh, sorted by
    frame then id. Object k lives ``length[k]`` frames from ``birth[k]``; the frame count is
    chosen so that about ``per_frame`` objects are visible in each frame."""
    rng = np.random.default_rng(seed)
    mean_len = max(1, rows // ids)
    length = rng.integers(max(1, mean_len // 2), mean_len * 3 // 2 + 1, ids)
    length = np.maximum(1, np.round(length * rows / length.sum()).astype(np.int64))  # sum ~ rows
    num_frames = max(int(length.max()), round(int(length.sum()) / per_frame))
    birth = rng.integers(1, num_frames - length + 2)
    obj = np.repeat(np.arange(ids), length)  # (N,)
    age = np.arange(len(obj)) - np.repeat(np.cumsum(length) - length, length)
    start = rng.uniform([0, 0], [WIDTH - 100, HEIGHT - 200], (ids, 2))
    speed = rng.normal(0, 1.0, (ids, 2))
    size = rng.uniform([30, 60], [90, 220], (ids, 2))
    xy = start[obj] + speed[obj] * age[:, None] + rng.normal(0, 0.5, (len(obj), 2))
    frames = birth[obj] + age
    order = np.lexsort((obj, frames))
    boxes = np.concatenate([xy, size[obj]], axis=1)[order]
    return frames[order], obj[order] + 1, boxes


def synthetic_dets(frames, boxes, seed: int = 1):
    """Detections from ground truth: 10% missed, boxes jittered by 5% of their size, 5% false
    positives; (frames (M,), boxes (M, 4) xywh, scores (M,)) sorted by frame."""
    rng = np.random.default_rng(seed)
    keep = rng.random(len(frames)) >= 0.10
    f, b = frames[keep], boxes[keep]
    b = b + rng.normal(0, 0.05, b.shape) * np.concatenate([b[:, 2:], b[:, 2:]], axis=1)
    b[:, 2:] = np.maximum(b[:, 2:], 4.0)
    n_fp = len(frames) // 20
    fp_f = rng.integers(frames.min(), frames.max() + 1, n_fp)
    fp_b = np.concatenate([rng.uniform([0, 0], [WIDTH - 100, HEIGHT - 200], (n_fp, 2)),
                           rng.uniform([30, 60], [90, 220], (n_fp, 2))], axis=1)
    f, b = np.concatenate([f, fp_f]), np.concatenate([b, fp_b])
    scores = np.concatenate([rng.uniform(0.4, 1.0, keep.sum()), rng.uniform(0.1, 0.7, n_fp)])
    order = np.argsort(f, kind="stable")
    return f[order], b[order], scores[order]


def write_rows(path: Path, columns: list[np.ndarray], fmt: str, chunk: int = 200_000) -> None:
    """MOTChallenge text, ``chunk`` rows at a time (bounded memory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(columns[0])
    with open(path, "w") as fh:
        for a in range(0, n, chunk):
            rows = np.column_stack([c[a:a + chunk] for c in columns])
            np.savetxt(fh, rows, fmt=fmt, delimiter=",")


def run_child(args: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MiB, exit status) of one subprocess of this tree's code."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(err, file=sys.stderr)
    return wall, usage.ru_maxrss / 1024, proc.returncode  # ru_maxrss is in KiB on Linux


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4_500_000, help="Ground-truth rows.")
    ap.add_argument("--ids", type=int, default=9_000, help="Ground-truth objects.")
    ap.add_argument("--per-frame", type=int, default=100, help="Objects visible per frame.")
    ap.add_argument("--scale", type=float, default=1.0, help="Multiplies --rows and --ids.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, default=None,
                    help="Write the data here and keep it (default: a temporary folder).")
    ap.add_argument("--skip-track", action="store_true",
                    help="Reuse DIR/pred from an earlier --keep run instead of tracking.")
    args = ap.parse_args(argv)
    rows, ids = int(args.rows * args.scale), max(1, int(args.ids * args.scale))

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_eval_mot_"))
    try:
        seq = work / "gt" / "SYN-01"
        gt_path, det_path, pred = seq / "gt" / "gt.txt", seq / "det" / "det.txt", work / "pred"
        if not (args.skip_track and gt_path.is_file()):
            start = time.perf_counter()
            frames, obj, boxes = synthetic_gt(rows, ids, args.per_frame, args.seed)
            n = len(frames)
            ones = np.ones(n)
            write_rows(gt_path, [frames, obj, boxes[:, 0], boxes[:, 1], boxes[:, 2],
                                 boxes[:, 3], ones, ones, ones],
                       "%d,%d,%.2f,%.2f,%.2f,%.2f,%d,%d,%.2f")
            f, b, s = synthetic_dets(frames, boxes, args.seed + 1)
            del frames, obj, boxes, ones
            minus = -np.ones(len(f))
            write_rows(det_path, [f, minus, b[:, 0], b[:, 1], b[:, 2], b[:, 3], s, minus,
                                  minus, minus], "%d,%d,%.2f,%.2f,%.2f,%.2f,%.4f,%d,%d,%d")
            del f, b, s, minus
            print(f"data: {n:,} ground-truth rows, {ids:,} ids, {args.per_frame} per frame; "
                  f"gt.txt {gt_path.stat().st_size / 1e6:.0f} MB, det.txt "
                  f"{det_path.stat().st_size / 1e6:.0f} MB; written in "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
        cli = [sys.executable, "-m", "roadtrack"]
        results = []
        if not args.skip_track:
            wall, rss, rc = run_child(cli + ["track", "--dets", str(det_path), "--out", str(pred),
                                             "--no-progress"])
            results.append(("roadtrack track", wall, rss, rc))
            print(f"track: {wall:.1f} s, peak {rss:,.0f} MiB, exit {rc}; predictions "
                  f"{(pred / 'SYN-01.txt').stat().st_size / 1e6:.0f} MB", flush=True)
        metrics = work / "metrics.json"
        wall, rss, rc = run_child(cli + ["eval", "mot", "--gt", str(work / "gt"), "--pred",
                                         str(pred), "--json", str(metrics)])
        results.append(("roadtrack eval mot", wall, rss, rc))
        print(f"eval mot: {wall:.1f} s, peak {rss:,.0f} MiB, exit {rc}", flush=True)
        if rc == 0:
            o = json.loads(metrics.read_text())["overall"]
            print("overall: " + ", ".join(f"{k} {o[k]:.4f}" if isinstance(o[k], float)
                                          else f"{k} {o[k]}" for k in
                                          ("mota", "idf1", "hota", "num_switches",
                                           "num_false_positives", "num_misses")))
        if len(results) == 2:
            (_, t_track, m_track, _), (_, t_eval, m_eval, _) = results
            print(f"eval mot / track: time {t_eval / t_track:.2f}x, "
                  f"peak memory {m_eval / m_track:.2f}x")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

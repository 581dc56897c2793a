"""Cost per frame of camera-motion compensation at 840x600 on one core.

Renders one moving-camera synthetic video at 840x600 (``roadtrack synth --camera moving``),
holds its frames in memory and times ``MotionEstimator`` per frame (conversion to grey,
shrinking and the fit; decoding excluded) for each method at several working widths, OpenCV
on one thread. Then the decode pass that feeds it: the frame folder's JPEGs decoded whole in
colour (what detect reads) against grey at half size (``roadtrack.io.video.grey_frames``).
Medians over the frames, best of ``--repeats``; CPU time, so other load disturbs them less.

    OMP_NUM_THREADS=1 PYTHONPATH=. python tools/bench_cmc.py [--frames 60] [--repeats 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from roadtrack.io.video import FrameFolder, grey_frames
from roadtrack.report import table
from roadtrack.synth.dataset import write_dataset
from roadtrack.tracking.cmc import WORK_WIDTH, MotionEstimator


def per_frame(run, items, repeats: int) -> float:
    """Median CPU milliseconds of ``run(item)`` per item, best of ``repeats`` passes."""
    best = np.inf
    for _ in range(repeats):
        times = []
        for item in items:
            started = time.process_time()
            run(item)
            times.append(time.process_time() - started)
        best = min(best, float(np.median(times)))
    return 1000 * best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        write_dataset(root, num_videos=1, num_frames=args.frames, width=840, height=600, seed=1,
                      val_fraction=0, camera="moving")
        folder = FrameFolder(root / "rgb-images" / "train_00000")
        frames = [frame for _, frame in folder.frames()]
        rows = []
        for method in ("sparse-flow", "ecc"):
            for width in sorted({WORK_WIDTH, 210, 420}):
                estimator = MotionEstimator(method, width)
                estimator(frames[-1])
                ms = per_frame(estimator, frames, args.repeats)
                rows.append([method, f"{width}x{round(600 * width / 840)}",
                             "default" if width == WORK_WIDTH else "", round(ms, 2)])
        print(f"camera motion per frame, 840x600 RGB in memory, {len(frames)} frames, one thread")
        print(table(rows, ["method", "working size", "", "ms/frame"]))
        full = per_frame(lambda n: folder.read(n), list(folder.numbers()), args.repeats)
        half = per_frame(lambda _: next(grey_frames(folder, 2)), range(len(frames)), args.repeats)
        print(table([["colour, whole (detect's read)", round(full, 2)],
                     ["grey, half size (the CMC pass)", round(half, 2)]],
                    ["JPEG decode at 840x600", "ms/frame"]))


if __name__ == "__main__":
    main()

"""Benchmark and parity check of ``roadtrack eval road --protocol official``.

Builds synthetic ROAD++ annotations and predictions (``tests/reference/road.py``), then times, as
whole processes, ``roadtrack eval road`` and the literal, slow transcription of the official
protocol there, and checks that every AP agrees to 1e-6.

    PYTHONPATH=$PWD python tools/bench_eval.py                 # 10, 20 and 40 videos
    PYTHONPATH=$PWD python tools/bench_eval.py --videos 10 --keep /tmp/bench
"""
from __future__ import annotations

import argparse
import json
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.reference.road import (
    make_annotation,
    make_frame_dets,
    make_submission,
    max_difference,
    reference_evaluate,
)

REPO = Path(__file__).resolve().parents[1]


def write_set(folder: Path, num_videos: int, seed: int, top_k: int, layout: str) -> dict:
    data = make_annotation(num_videos, seed)
    paths = {"anno": folder / "road_waymo_trainval_v1.0.json", "pred": folder / "submission.pkl",
             "dets": folder / "frame_dets.pkl"}
    paths["anno"].write_text(json.dumps(data))
    with open(paths["pred"], "wb") as f:
        pickle.dump(make_submission(data, seed + 1), f, protocol=4)
    with open(paths["dets"], "wb") as f:
        pickle.dump(make_frame_dets(data, seed + 2, top_k, layout), f, protocol=4)
    return paths


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of a whole child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=REPO)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", default="10,20,40", help="Comma-separated set sizes.")
    parser.add_argument("--top-k", type=int, default=1, help="Frame detections kept per class.")
    parser.add_argument("--layout", choices=["stacked", "lists"], default="stacked")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="Keep the generated sets in this folder.")
    parser.add_argument("--reference", nargs=4, metavar=("ANNO", "PRED", "DETS", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reference:  # the reference as its own process
        anno, pred, dets, out = args.reference
        Path(out).write_text(json.dumps(reference_evaluate(anno, pred, dets)))
        return 0
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_eval_"))
    print("wall and CPU (user+system) seconds of whole processes; CPU is what a busy machine "
          "does not distort")
    print(f"{'videos':>6} {'frames':>6} {'frame dets':>10} {'tubes':>5} {'ref wall':>8} "
          f"{'ref cpu':>8} {'ours wall':>9} {'ours cpu':>8} {'speed-up':>13} {'max |diff|':>10}")
    for n in (int(v) for v in args.videos.split(",")):
        folder = root / f"set{n}"
        folder.mkdir(parents=True, exist_ok=True)
        paths = write_set(folder, n, args.seed, args.top_k, args.layout)
        data = json.loads(paths["anno"].read_text())
        frames = sum(1 for v in data["db"].values() for fr in v["frames"].values()
                     if fr["annotated"] > 0)
        with open(paths["dets"], "rb") as f:
            dets = pickle.load(f)
        num_dets = sum(len(a) for per in dets.values() for value in per.values() for a in value)
        with open(paths["pred"], "rb") as f:
            tubes = sum(len(x) for per in pickle.load(f).values() for x in per.values())
        ours_json, ref_json = folder / "ours.json", folder / "reference.json"
        ours = timed([sys.executable, "-m", "roadtrack", "eval", "road", "--anno",
                      str(paths["anno"]), "--pred", str(paths["pred"]), "--frame-dets",
                      str(paths["dets"]), "--json", str(ours_json)])
        ref = timed([sys.executable, __file__, "--reference", str(paths["anno"]),
                     str(paths["pred"]), str(paths["dets"]), str(ref_json)])
        diff = max_difference(json.loads(ours_json.read_text()), json.loads(ref_json.read_text()))
        speed = f"{ref[0] / ours[0]:.1f}x/{ref[1] / ours[1]:.1f}x"
        print(f"{n:>6} {frames:>6} {num_dets:>10} {tubes:>5} {ref[0]:>8.2f} {ref[1]:>8.2f} "
              f"{ours[0]:>9.2f} {ours[1]:>8.2f} {speed:>13} {diff:>10.2e}", flush=True)
        if diff > 1e-6:
            print(f"PARITY FAILED for {n} videos (max difference {diff})")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

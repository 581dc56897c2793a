"""Load time and peak memory of the annotation reader on a ROAD++-sized file.

Builds a synthetic annotation in the exact ROAD++ schema with about as many boxes as the real
``road_waymo_trainval_v1.0.json`` (3.3 M boxes, ~1 GB) by replicating synthetic videos under new
identities, then loads it with ``roadtrack.io.annotations.load_annotation`` in a fresh process
and prints seconds and peak resident memory.

    python tools/bench_annotations.py [--boxes 3300000] [--keep FILE]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from roadtrack.labels import roadpp
from roadtrack.synth.dataset import build_annotation
from roadtrack.synth.layout import draw_background
from roadtrack.synth.simulate import render_frame, simulate_video

LOADER = """
import resource, sys, time
from roadtrack.io.annotations import load_annotation
start = time.perf_counter()
anno = load_annotation(sys.argv[1])
seconds = time.perf_counter() - start
boxes = sum(v.num_boxes for v in anno.videos.values())
tubes = sum(len(t) for v in anno.videos.values() for t in v.tubes.values())
usage = resource.getrusage(resource.RUSAGE_SELF)
peak, cpu = usage.ru_maxrss / 2**20, usage.ru_utime + usage.ru_stime
print(f"{len(anno.videos)} {boxes} {tubes} {seconds:.1f} {cpu:.1f} {peak:.2f}")
"""


def template_videos(count: int, frames: int) -> dict:
    """Box records of a few simulated videos (rendered small: only the boxes are kept)."""
    videos = {}
    for i in range(count):
        rng = np.random.default_rng([99, i])
        agents = simulate_video(rng, frames, busy=0.14)
        background = draw_background(420, 300, rng)
        records = [render_frame(background, agents, n, 1.0)[1] for n in range(frames)]
        videos[f"train_{i:05d}"] = ("train" if i % 4 else "val", records)
    return videos


def write_big_annotation(path: Path, target_boxes: int) -> int:
    """Write a ROAD++-schema file with about ``target_boxes`` boxes; returns the box count."""
    template = build_annotation(template_videos(4, 200), roadpp(), 1920, 1280,
                                np.random.default_rng(0))
    db = template.pop("db")
    texts, counts, uids = [], [], []
    for video in db.values():
        boxes = [b for f in video["frames"].values() for b in f.get("annos", {}).values()]
        texts.append(json.dumps(video, separators=(",", ":")))
        counts.append(len(boxes))
        uids.append(sorted({b["tube_uid"] for b in boxes}))
    written, k = 0, 0
    with open(path, "w") as f:
        f.write(json.dumps(template, separators=(",", ":"))[:-1] + ',"db":{')
        while written < target_boxes:
            t = k % len(texts)
            text = texts[t]
            for j, uid in enumerate(uids[t]):  # fresh identities per copy
                text = text.replace(uid, f"{k:06x}{j:04x}")
            f.write(("," if k else "") + f'"train_{k:05d}":' + text)
            written += counts[t]
            k += 1
        f.write("}}")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=3_300_000)
    parser.add_argument("--keep", type=Path, help="write the file here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "road_waymo_trainval_v1.0.json"
        start = time.perf_counter()
        boxes = write_big_annotation(path, args.boxes)
        size_gb = path.stat().st_size / 2**30
        print(f"wrote {path.name}: {size_gb:.2f} GB, {boxes} boxes "
              f"in {time.perf_counter() - start:.0f} s")
        out = subprocess.run([sys.executable, "-c", LOADER, str(path)], check=True,
                             capture_output=True, text=True).stdout.split()
        videos, boxes, tubes, seconds, cpu, peak = out
        print(f"load_annotation: {videos} videos, {boxes} boxes, {tubes} tubes in {seconds} s "
              f"wall ({cpu} s CPU), peak memory {peak} GB (targets: under 60 s and under 8 GB)")


if __name__ == "__main__":
    main()

"""Load time and peak memory of the annotation reader on a ROAD++-sized file, beside json.load.

Builds a synthetic annotation in the exact ROAD++ schema with about as many boxes as the real
``road_waymo_trainval_v1.0.json`` (3.3 M boxes, ~1 GB) by replicating synthetic videos under new
identities (or takes ``--file``), then loads it, each time in a fresh process: with the standard
library's ``json.load`` (what the official evaluation does), with ``load_annotation`` the first
time (no cache yet: it reads the JSON and writes the cache), the second time (from the cache),
without the cache (``--no-cache``), and with ``--stream`` also with the stream reader alone (the
reader before the fast one) and with ``--msgspec`` also with the fast reader without its compiled
scanner (as where the package was built without a C compiler). Prints wall and CPU seconds and
peak resident memory of each, and the first load's share of ``json.load``'s time.

    python tools/bench_annotations.py [--boxes 3300000] [--numbers full|short]
                                      [--keep FILE | --file FILE] [--stream] [--msgspec]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from roadtrack.io.annotation_cache import cache_paths
from roadtrack.io.annotation_fast import scan_entry
from roadtrack.labels import roadpp
from roadtrack.synth.dataset import build_annotation
from roadtrack.synth.layout import draw_background
from roadtrack.synth.simulate import render_frame, simulate_video

LOADER = """
import json, resource, sys, time
from unittest import mock
how, path = sys.argv[1], sys.argv[2]
start = time.perf_counter()
if how == "json.load":
    with open(path) as f:
        doc = json.load(f)
    summary = f"{len(doc['db'])} videos"
else:
    import roadtrack.io.annotations as annotations
    import roadtrack.io.annotation_fast as fast
    with mock.patch.object(annotations, "read_fast", lambda *args: None) if how == "stream" \
            else mock.patch.object(fast, "scan_entry", None) if how == "msgspec" \
            else mock.MagicMock():
        anno = annotations.load_annotation(path, cache=how in ("first", "cached"))
    boxes = sum(v.num_boxes for v in anno.videos.values())
    tubes = sum(len(t) for v in anno.videos.values() for t in v.tubes.values())
    summary = f"{len(anno.videos)} videos, {boxes} boxes, {tubes} tubes"
seconds = time.perf_counter() - start
usage, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                       resource.RUSAGE_CHILDREN))
print(json.dumps({"wall": seconds, "cpu": sum(u.ru_utime + u.ru_stime for u in (usage, children)),
                  "peak": usage.ru_maxrss / 2**20, "children": children.ru_maxrss / 2**20,
                  "summary": summary}))
"""

RUNS = [("json.load", "json.load (no cache; what the official code does)"),
        ("first", "roadtrack, first load (reads the JSON, writes the cache)"),
        ("cached", "roadtrack, second load (from the cache)"),
        ("no-cache", "roadtrack --no-cache (the fast reader, no cache)")]


def template_videos(count: int, frames: int) -> dict:
    """Box records of a few simulated videos (rendered small: only the boxes are kept)."""
    videos = {}
    for i in range(count):
        rng = np.random.default_rng([99, i])
        agents = simulate_video(rng, frames, busy=0.14)
        background = draw_background(420, 300, rng)
        records = [render_frame(background, agents, n, 1.0)[1] for n in range(frames)]
        videos[f"train_{i:05d}"] = ("train" if i % 4 else "val", records, ["AV-Stop"] * frames)
    return videos


def write_big_annotation(path: Path, target_boxes: int, full_digits: bool = True) -> int:
    """Write a ROAD++-schema file with about ``target_boxes`` boxes; returns the box count.
    ``full_digits``: box coordinates at sub-pixel values, written with all 16-17 digits of a
    double (as dividing float pixel coordinates by the frame size writes them), else with the
    6 decimals of the synthetic data."""
    template = build_annotation(template_videos(4, 200), roadpp(), 1920, 1280,
                                np.random.default_rng(0))
    db = template.pop("db")
    jitter = np.random.default_rng(1)
    texts, counts, uids = [], [], []
    for video in db.values():
        boxes = [b for f in video["frames"].values() for b in f.get("annos", {}).values()]
        for b in boxes if full_digits else ():
            b["box"] = (np.asarray(b["box"]) + jitter.uniform(0, 1e-4, 4)).tolist()
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


def measure(how: str, path: Path) -> dict:
    """Wall and CPU seconds and peak memory (GB) of one load in a fresh process."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", LOADER, how, str(path)], check=True,
                         capture_output=True, text=True, env=env).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=3_300_000)
    parser.add_argument("--keep", type=Path, help="write the file here and keep it")
    parser.add_argument("--numbers", choices=["full", "short"], default="full",
                        help="box coordinates written with all digits of a double (as real "
                             "files hold them) or with 6 decimals")
    parser.add_argument("--file", type=Path, help="measure this annotation file (none written)")
    parser.add_argument("--stream", action="store_true",
                        help="also measure the stream reader alone (slow)")
    parser.add_argument("--msgspec", action="store_true",
                        help="also measure the fast reader without its compiled scanner")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        path = args.file or args.keep or Path(tmp) / "road_waymo_trainval_v1.0.json"
        if args.file is None:
            start = time.perf_counter()
            boxes = write_big_annotation(path, args.boxes, args.numbers == "full")
            print(f"wrote {path.name}: {boxes} boxes in {time.perf_counter() - start:.0f} s")
        print(f"{path}: {path.stat().st_size / 2**30:.2f} GB")
        for cache in cache_paths(path):
            cache.unlink(missing_ok=True)
        runs = RUNS + ([("msgspec", "roadtrack --no-cache without the compiled scanner "
                                    "(msgspec structs)")] if args.msgspec else []) \
            + ([("stream", "roadtrack's stream reader alone (ijson; before the fast "
                           "reader)")] if args.stream else [])
        print(f"compiled scanner: {'built' if scan_entry is not None else 'NOT built'}")
        print("| reader | wall s | CPU s | peak memory GB |\n|---|---|---|---|")
        results = {}
        for how, label in runs:
            result = results[how] = measure(how, path)
            helpers = f" + {result['children']:.2f} (each reading process)" \
                if result["children"] else ""
            print(f"| {label} | {result['wall']:.1f} | {result['cpu']:.1f} | "
                  f"{result['peak']:.2f}{helpers} |", flush=True)
        ratio = results["first"]["wall"] / results["json.load"]["wall"]
        print(f"first load / json.load: {ratio:.2f}"
              f" (target <= 0.33); cached load: {results['cached']['wall']:.1f} s (target <= 2)")
        print(f"read: {result['summary']}; cache: "
              f"{sum(c.stat().st_size for c in cache_paths(path) if c.is_file()) / 2**20:.0f} MB")
        for cache in cache_paths(path):
            if args.file is None and args.keep is None:
                cache.unlink(missing_ok=True)


if __name__ == "__main__":
    main()

"""Benchmark: frames per second of ``roadtrack detect`` on the CPU (tiny config).

    PYTHONPATH=. python tools/bench_detect.py [--config synthetic_tiny]
        [--run RUN] [--frames 60] [--videos 2]

Detects every frame of a small synthetic dataset (420x300, made in a temporary folder) with the
run's weights (--run) or freshly initialised ones, and reports frames/s of the whole stage
(decoding, resizing, sliding clips, model, NMS, atomic artifacts) next to a reference measured
in the same process: the bare model's forward pass over the same number of clips already in
memory. The ratio shows the stage's overhead on top of the model.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from roadtrack.engine.checkpoint import save_checkpoint
from roadtrack.engine.config import load_run_config
from roadtrack.engine.detect import detect_videos, load_detector
from roadtrack.labels import roadpp


def synth(out: Path, *options: str) -> None:
    """``roadtrack synth`` in a child process: OpenCV's thread pool in this process would
    deadlock forked DataLoader workers."""
    subprocess.run([sys.executable, "-m", "roadtrack", "synth", "--out", str(out), *options],
                   check=True, capture_output=True)


def fresh_weights(config_path: str, path: Path) -> None:
    from roadtrack.models import build_detector

    cfg = load_run_config(config_path)
    torch.manual_seed(0)
    model = build_detector(cfg.model)
    save_checkpoint(path, {"model": model.state_dict(), "config": cfg.to_dict(),
                           "labels": roadpp().to_dict()})


def reference_fps(detector, clips: int) -> float:
    """Clips per second of the bare model (eval, no_grad) on a ready batch."""
    cfg = detector.config
    w, h = cfg.detect_size
    batch = cfg.detect.batch_size
    x = detector.normalize(torch.randint(0, 255, (batch, detector.model.num_frames, h, w, 3),
                                         dtype=torch.uint8))
    model = detector.model.eval()
    with torch.no_grad():
        model(x)  # warm-up
        start = time.perf_counter()
        done = 0
        while done < clips:
            model(x)
            done += batch
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="synthetic_tiny",
                        help="A run config file or a packaged config's name.")
    parser.add_argument("--run", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--videos", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        synth(data, "--num-videos", str(args.videos), "--frames", str(args.frames), "--seed", "2")
        if args.run is not None:
            detector = load_detector(run=args.run)
        else:
            fresh_weights(args.config, tmp / "fresh.pt")
            detector = load_detector(weights=tmp / "fresh.pt",
                                     config=load_run_config(args.config), config_path=args.config)
        summary = detect_videos(detector, data, tmp / "out", progress=False, device="cpu")
        reference = reference_fps(detector, min(summary.frames, 48))
    cfg = detector.config
    w, h = cfg.detect_size
    print(f"config {Path(args.config).name}: clips of {detector.model.num_frames} frames at "
          f"{w}x{h}, batch {cfg.detect.batch_size}, {torch.get_num_threads()} CPU threads")
    print(summary.table())
    print(f"roadtrack detect  {summary.fps:7.2f} frames/s")
    print(f"bare model        {reference:7.2f} clips/s")
    print(f"stage / bare model: {summary.fps / reference:.2f}")


if __name__ == "__main__":
    main()

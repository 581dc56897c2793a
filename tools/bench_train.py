"""Benchmark: training steps per second of ``roadtrack train`` on the CPU (tiny config).

    PYTHONPATH=. python tools/bench_train.py [--config synthetic_tiny]
        [--steps 40] [--data DIR]

Trains for --steps steps on a small synthetic dataset (made in a temporary folder unless --data
is given) and reports the engine's steady steps/s (the first logged window, warm-up, excluded)
as the config runs it (``train.procs`` processes of ``train.batch_size`` clips) and in one
process taking the whole batch, next to a reference measured in the same process: the bare
model's training step (forward, backward, AdamW) on whole batches already in memory. The
ratios show what data loading, augmentation and logging cost on top of the model, and what the
processes gain.
"""
from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from roadtrack.engine import distributed as D
from roadtrack.engine.config import load_run_config
from roadtrack.engine.train import Trainer, launch_train


def synth(out: Path, *options: str) -> None:
    """``roadtrack synth`` in a child process: OpenCV's thread pool in this process would
    deadlock forked DataLoader workers."""
    subprocess.run([sys.executable, "-m", "roadtrack", "synth", "--out", str(out), *options],
                   check=True, capture_output=True)


def engine_rate(cfg, data: Path, run: Path, steps: int, procs: int, batch: int) -> float:
    """Steps per second between the first and the last log row of a short training run in
    ``procs`` processes taking ``batch`` clips per step between them."""
    cfg = cfg.with_values("train", procs=procs, batch_size=batch // procs, max_steps=steps,
                          log_every=max(1, steps // 4), val_map=False, checkpoint_every=steps,
                          time_budget_minutes=0.0)
    cfg = cfg.with_values("data", val_split="none")  # no validation inside the measurement
    launch_train(cfg, data, run, progress=False)
    with open(run / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "train"]
    first, last = rows[0], rows[-1]
    return (int(last["step"]) - int(first["step"])) / (float(last["elapsed_s"])
                                                      - float(first["elapsed_s"]))


def reference_rate(cfg, data: Path, run: Path, steps: int) -> float:
    """Steps per second of the bare model on batches read beforehand."""
    trainer = Trainer(cfg, data, run, False, *_builder(), D.setup(), False, None)
    batches = []
    trainer.sampler.set_epoch(0)
    for clips, targets, _ in trainer.loader:
        batches.append(trainer._to_device(clips, targets))
        if len(batches) == 2:
            break
    model, opt = trainer.model.train(), trainer.optimizer
    times = []
    for i in range(steps):
        clips, targets = batches[i % len(batches)]
        start = time.perf_counter()
        loss = model(clips, targets)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    steady = times[max(1, steps // 4):]
    return len(steady) / sum(steady)


def _builder():
    from roadtrack.models import build_detector, normalize_clip
    return build_detector, normalize_clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="synthetic_tiny",
                        help="A run config file or a packaged config's name.")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = args.data
        if data is None:
            data = tmp / "data"
            synth(data, "--num-videos", "2", "--frames", "40", "--seed", "1", "--val-fraction", "0")
        cfg = load_run_config(args.config)
        procs, batch = cfg.train.procs, cfg.train.procs * cfg.train.batch_size
        threads = torch.get_num_threads()
        engine = engine_rate(cfg, data, tmp / "run", args.steps, procs, batch)
        single = engine_rate(cfg, data, tmp / "one", args.steps, 1, batch) if procs > 1 else engine
        cfg = cfg.with_values("data", val_split="none").with_values("train", batch_size=batch)
        reference = reference_rate(cfg, data, tmp / "ref", args.steps)
    w, h = cfg.data.input_size
    print(f"config {Path(args.config).name}: {batch} clips of {cfg.model.num_frames} frames "
          f"at {w}x{h} per step, {threads} CPU threads here, one per training process")
    rows = [(f"roadtrack train, {procs} processes", engine), ("roadtrack train, 1 process", single),
            ("bare model step, 1 process", reference)]
    for name, rate in rows if procs > 1 else rows[1:]:
        print(f"{name:32s} {rate:6.3f} steps/s  ({rate * batch:6.2f} clips/s)")
    print(f"engine / bare model: {single / reference:.2f}; "
          f"{procs} processes / 1: {engine / single:.2f}")


if __name__ == "__main__":
    main()

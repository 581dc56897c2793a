"""Benchmark: detector forward and backward time per clip on the CPU, for both configs.

    PYTHONPATH=. python tools/bench_model.py [--repeats 3] [--threads N] [--tiny CONFIG ...]

The tiny config runs at its training size (320x224, batch 4); ``--tiny`` names other configs
of that size to time in the same process (e.g. ``synthetic_tiny_deformable3d``), each with its
ratio to the first (``--no-full`` skips the full config). The full config (SlowFast-R50,
32 frames, STMixer defaults) is far too slow for a CPU at its real size, so it runs one clip at
a small input (128x128 by default; its time says nothing about the GPU). Where a CUDA device is
present the full config also runs at bf16 on it and clips per second are printed.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from roadtrack.engine.config import load_run_config
from roadtrack.models import build_detector


def fake_targets(batch: int, labels_shape: dict, device) -> list[dict]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(batch):
        n = 4
        xy = torch.rand(n, 2, generator=gen) * 0.7
        wh = torch.rand(n, 2, generator=gen) * 0.2 + 0.05
        target = {"boxes": torch.cat([xy, xy + wh], dim=1)}
        for name, k in labels_shape.items():
            target[name] = (torch.rand(n, k, generator=gen) < 0.2).float()
        out.append({key: value.to(device) for key, value in target.items()})
    return out


def time_train_step(model, clips, targets, repeats: int, sync) -> tuple[float, float]:
    """Median forward and backward seconds of one training step."""
    model.train()
    fwd, bwd = [], []
    for i in range(repeats + 1):
        sync()
        start = time.perf_counter()
        losses = model(clips, targets)
        sync()
        mid = time.perf_counter()
        losses["loss"].backward()
        sync()
        end = time.perf_counter()
        model.zero_grad(set_to_none=True)
        if i:  # the first step warms up
            fwd.append(mid - start)
            bwd.append(end - mid)
    return statistics.median(fwd), statistics.median(bwd)


def time_inference(model, clips, repeats: int, sync) -> float:
    """Median seconds of one no-grad forward in eval mode."""
    model.eval()
    times = []
    with torch.no_grad():
        for i in range(repeats + 1):
            sync()
            start = time.perf_counter()
            model(clips)
            sync()
            if i:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(name: str, batch: int, width: int, height: int, repeats: int, device="cpu",
          dtype=None) -> tuple[float, float, float]:
    """Prints and returns (train forward, backward, eval forward) seconds per clip."""
    cfg = load_run_config(name).model
    torch.manual_seed(0)
    model = build_detector(cfg).to(device)
    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    clips = torch.randn(batch, 3, model.num_frames, height, width, device=device)
    targets = fake_targets(batch, model.labels_shape, device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    with torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None):
        fwd, bwd = time_train_step(model, clips, targets, repeats, sync)
        infer = time_inference(model, clips, repeats, sync)
    kind = "" if dtype is None else f" {str(dtype).replace('torch.', '')}"
    print(f"{name:36s} {device}{kind}  {n_params:6.1f} M params  clip {model.num_frames}x"
          f"{width}x{height}  batch {batch}:  forward {fwd / batch * 1e3:8.1f} ms/clip  "
          f"backward {bwd / batch * 1e3:8.1f} ms/clip  ({batch / (fwd + bwd):.2f} clips/s train)"
          f"  eval forward {infer / batch * 1e3:8.1f} ms/clip")
    return fwd / batch, bwd / batch, infer / batch


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--full-size", default="128x128",
                        help="WxH of the full config's CPU input (multiple of 32)")
    parser.add_argument("--tiny", nargs="+", default=["synthetic_tiny"],
                        help="configs to time at the tiny size (ratios to the first)")
    parser.add_argument("--no-full", action="store_true", help="skip the full config")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}")
    times = [bench(name, 4, 320, 224, args.repeats) for name in args.tiny]
    for name, (fwd, bwd, infer) in zip(args.tiny[1:], times[1:], strict=True):
        fwd0, bwd0, infer0 = times[0]
        print(f"{name} / {args.tiny[0]}: train step {(fwd + bwd) / (fwd0 + bwd0):.2f}x, "
              f"eval forward {infer / infer0:.2f}x")
    if args.no_full:
        return
    w, h = (int(v) for v in args.full_size.split("x"))
    bench("roadpp_stmixer_slowfast_r50", 1, w, h, max(1, args.repeats - 1))
    if torch.cuda.is_available():
        bench("roadpp_stmixer_slowfast_r50", 8, 448, 320, args.repeats, device="cuda",
              dtype=torch.bfloat16)
    else:
        print("no CUDA device: bf16 clips/s of the full config not measured")


if __name__ == "__main__":
    main()

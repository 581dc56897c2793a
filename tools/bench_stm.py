"""Benchmark: roadtrack's sample4d against a literal transcription of STMixer's SAMPLE4D.

STMixer's default shapes: 2 clips, 100 queries, 4 heads x 32 points, 256 channels, T = 8, levels
at strides 4/8/16/32 of a 256x256 input. Both run in this process, interleaved, and the median of
several repeats is compared (other work on the machine slows both alike).

    PYTHONPATH=. python tools/bench_stm.py [--repeats 7] [--threads N] [--grad]

Runs one torch thread unless told otherwise (--threads 0: torch's default). Prints the ratio for
one call on plain feature lists and the per-call ratio when the feature
layout is made once and reused by 6 stages (as the decoder does).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from roadtrack.models.stm import layout_features, sample4d
from tests.reference.stm import sample4d_ref

STRIDES = [4, 8, 16, 32]


def make_inputs(batch=2, queries=100, heads=4, points=32, channels=256, frames=8, size=256,
                device="cpu"):
    gen = torch.Generator().manual_seed(0)
    values = [torch.randn(batch, channels, frames, size // s, size // s, generator=gen).to(device)
              for s in STRIDES]
    points_xyz = torch.rand(batch, queries, 1, heads * points, 3, generator=gen)
    points_xyz[..., :2] = points_xyz[..., :2] * 1.2 * size - 0.1 * size  # a few outside
    points_xyz[..., 2] = points_xyz[..., 2] * 6.0 + 1.0  # log2 box sizes 1..7
    return values, points_xyz.to(device)


def timed(fn, sync) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: with other work on a small machine, "
                             "multi-thread timings swing several-fold; 0: torch's default)")
    parser.add_argument("--stages", type=int, default=6)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--grad", action="store_true",
                        help="also time forward + backward with gradients")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    values, pts = make_inputs(device=device)
    n_points, heads = 32, 4

    with torch.no_grad():
        ref = sample4d_ref(pts, values, STRIDES, n_points=n_points)[0]
        fast = sample4d(pts, values, STRIDES, n_points=n_points)
        err = (ref - fast).abs().max().item()

        def ref_call():
            sample4d_ref(pts, values, STRIDES, n_points=n_points)

        def fast_call():
            sample4d(pts, values, STRIDES, n_points=n_points)

        def ref_stages():
            for _ in range(args.stages):
                sample4d_ref(pts, values, STRIDES, n_points=n_points)

        def fast_stages():
            layout = layout_features(values, heads)
            for _ in range(args.stages):
                sample4d(pts, layout, STRIDES, n_points=n_points)

        for fn in (ref_call, fast_call):  # warm-up
            fn()
        t = {name: [] for name in ("ref", "fast", "ref6", "fast6")}
        for _ in range(args.repeats):
            t["ref"].append(timed(ref_call, sync))
            t["fast"].append(timed(fast_call, sync))
            t["ref6"].append(timed(ref_stages, sync) / args.stages)
            t["fast6"].append(timed(fast_stages, sync) / args.stages)
    med = {k: statistics.median(v) for k, v in t.items()}

    print(f"device {device}, torch threads {torch.get_num_threads()}, repeats {args.repeats}, "
          f"max |fast - seed| = {err:.2e}")
    print("shapes: B 2, queries 100, heads 4 x points 32, C 256, T 8, strides 4/8/16/32 on 256x256")
    print(f"one call, plain feature lists : seed {med['ref'] * 1e3:8.1f} ms   "
          f"fast {med['fast'] * 1e3:8.1f} ms   ratio {med['ref'] / med['fast']:.2f}x")
    print(f"per call, layout reused x{args.stages}   : seed {med['ref6'] * 1e3:8.1f} ms   "
          f"fast {med['fast6'] * 1e3:8.1f} ms   ratio {med['ref6'] / med['fast6']:.2f}x")

    if args.grad:
        values_g = [v.clone().requires_grad_() for v in values]
        pts_g = pts.clone().requires_grad_()

        def fwd_bwd(fn):
            def run():
                out = fn(pts_g, values_g, STRIDES, n_points=n_points)
                out = out[0] if isinstance(out, tuple) else out
                out.square().mean().backward()
            return run

        tr, tf = [], []
        for _ in range(max(3, args.repeats // 2)):
            tr.append(timed(fwd_bwd(sample4d_ref), sync))
            tf.append(timed(fwd_bwd(sample4d), sync))
        r, f = statistics.median(tr), statistics.median(tf)
        print(f"forward+backward, plain lists : seed {r * 1e3:8.1f} ms   fast {f * 1e3:8.1f} ms   "
              f"ratio {r / f:.2f}x")


if __name__ == "__main__":
    main()

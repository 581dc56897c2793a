"""Benchmark: detector forward and backward time per clip on the CPU, for both configs.

    PYTHONPATH=. python tools/bench_model.py [--repeats 3] [--threads N]

The tiny config runs at its training size (320x224, batch 4). The full config (SlowFast-R50,
32 frames, STMixer defaults) is far too slow for a CPU at its real size, so it runs one clip at
a small input (128x128 by default; its time says nothing about the GPU). Where a CUDA device is
present the full config also runs at bf16 on it and clips per second are printed.

    PYTHONPATH=. python tools/bench_model.py --mixing adaptive,deformable [--config NAME]

instead times the tiny config (or NAME) at its training size once per ``decoder.mixing`` kind,
interleaved in one process: detection forward (eval, no gradients) per clip and a training step
(forward + backward), medians, and each kind's ratio to the first.

    PYTHONPATH=. python tools/bench_model.py --configs synthetic_tiny,synthetic_tiny_deformable3d

does the same for whole configs (e.g. with and without ``model.neck``) at 320x224, batch 4.
"""
from __future__ import annotations

import argparse
import dataclasses
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


def bench(name: str, batch: int, width: int, height: int, repeats: int, device="cpu",
          dtype=None) -> None:
    cfg = load_run_config(name).model
    torch.manual_seed(0)
    model = build_detector(cfg).to(device)
    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    clips = torch.randn(batch, 3, model.num_frames, height, width, device=device)
    targets = fake_targets(batch, model.labels_shape, device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    with torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None):
        fwd, bwd = time_train_step(model, clips, targets, repeats, sync)
    kind = "" if dtype is None else f" {str(dtype).replace('torch.', '')}"
    print(f"{name:36s} {device}{kind}  {n_params:6.1f} M params  clip {model.num_frames}x"
          f"{width}x{height}  batch {batch}:  forward {fwd / batch * 1e3:8.1f} ms/clip  "
          f"backward {bwd / batch * 1e3:8.1f} ms/clip  ({batch / (fwd + bwd):.2f} clips/s train)")


def compare_mixing(name: str, kinds: list[str], batch: int, width: int, height: int,
                   repeats: int) -> None:
    """Median detect-forward and train-step times of one config per decoder.mixing kind."""
    cfg = load_run_config(name).model
    compare({f"{name} mixing {kind}": dataclasses.replace(
        cfg, decoder=dataclasses.replace(cfg.decoder, mixing=kind)) for kind in kinds},
        batch, width, height, repeats)


def compare(configs: dict, batch: int, width: int, height: int, repeats: int) -> None:
    """Median detect-forward and train-step times of each model config (same clip length),
    interleaved, with ratios to the first."""
    models = {}
    for kind, cfg in configs.items():
        torch.manual_seed(0)
        models[kind] = build_detector(cfg)
    kinds = list(models)
    clips = torch.randn(batch, 3, models[kinds[0]].num_frames, height, width)
    targets = fake_targets(batch, models[kinds[0]].labels_shape, "cpu")
    times: dict[str, dict[str, list[float]]] = {k: {"detect": [], "step": []} for k in kinds}
    for i in range(repeats + 1):  # interleaved: other work on the machine slows all alike
        for kind, model in models.items():
            model.eval()
            start = time.perf_counter()
            with torch.no_grad():
                model(clips)
            mid = time.perf_counter()
            model.train()
            model(clips, targets)["loss"].backward()
            model.zero_grad(set_to_none=True)
            if i:  # the first round warms up
                times[kind]["detect"].append(mid - start)
                times[kind]["step"].append(time.perf_counter() - mid)
    first = {key: statistics.median(times[kinds[0]][key]) for key in ("detect", "step")}
    for kind, model in models.items():
        detect, step = (statistics.median(times[kind][key]) for key in ("detect", "step"))
        n_params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"{kind:30s} {n_params:5.2f} M params  batch {batch} at "
              f"{width}x{height}:  detect forward {detect / batch * 1e3:7.1f} ms/clip "
              f"({detect / first['detect']:.2f}x)  train step {step * 1e3:7.1f} ms "
              f"({step / first['step']:.2f}x)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--full-size", default="128x128",
                        help="WxH of the full config's CPU input (multiple of 32)")
    parser.add_argument("--mixing", default="",
                        help="comma-separated decoder.mixing kinds to compare on --config")
    parser.add_argument("--config", default="synthetic_tiny",
                        help="config of --mixing (default synthetic_tiny, 320x224, batch 4)")
    parser.add_argument("--configs", default="",
                        help="comma-separated configs to compare at 320x224, batch 4")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}")
    if args.mixing:
        compare_mixing(args.config, args.mixing.split(","), 4, 320, 224, args.repeats)
        return
    if args.configs:
        compare({name: load_run_config(name).model for name in args.configs.split(",")},
                4, 320, 224, args.repeats)
        return
    bench("synthetic_tiny", 4, 320, 224, args.repeats)
    w, h = (int(v) for v in args.full_size.split("x"))
    bench("roadpp_stmixer_slowfast_r50", 1, w, h, max(1, args.repeats - 1))
    if torch.cuda.is_available():
        bench("roadpp_stmixer_slowfast_r50", 8, 448, 320, args.repeats, device="cuda",
              dtype=torch.bfloat16)
    else:
        print("no CUDA device: bf16 clips/s of the full config not measured")


if __name__ == "__main__":
    main()

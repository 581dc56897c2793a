"""Measurement: does a pretrained backbone start help the tiny detector? (CPU, synthetic data)

    OMP_NUM_THREADS=1 PYTHONPATH=. python tools/bench_pretrained.py [--steps 300]
        [--pretrain-steps 600] [--seeds 0] [--work DIR]

Makes two synthetic datasets of different seeds (``roadtrack synth``, 24 videos each), trains
the tiny config on the first (the "pretraining": its whole detector, of which the backbone body
is kept), then trains on the second for the same number of steps twice: from scratch, and with
``model.backbone.pretrained`` set to the first run's checkpoint (frozen stem + res2, as
``freeze_at: auto`` does). Both runs use the same seed, data order and schedule; the figure is
the trainer's final validation agent frame-mAP@0.5 on the second dataset's val videos. One
process, one thread per run; steps rather than minutes, so a busy machine does not tip it.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from roadtrack.configs import run_config
from roadtrack.engine.config import load_run_config
from roadtrack.engine.train import launch_train


def synth(out: Path, seed: int) -> None:
    """``roadtrack synth`` in a child process (OpenCV's threads and forked loaders)."""
    if not out.exists():
        subprocess.run([sys.executable, "-m", "roadtrack", "synth", "--out", str(out),
                        "--seed", str(seed)], check=True, capture_output=True)


def train(cfg, data: Path, run: Path, steps: int, pretrained: str = "", seed: int = 0) -> dict:
    backbone = cfg.model.backbone.__class__(**{**cfg.model.backbone.__dict__,
                                               "pretrained": pretrained})
    cfg = cfg.replace(model=cfg.model.__class__(**{**cfg.model.__dict__, "backbone": backbone}))
    cfg = cfg.with_values("train", procs=1, batch_size=4, max_steps=steps, decay_span="steps",
                          time_budget_minutes=0.0, checkpoint_every=steps, log_every=50,
                          seed=seed)
    summary = launch_train(cfg, data, run, progress=False)
    return {"steps": summary.steps, "minutes": summary.elapsed_s / 60, **summary.val}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="fine-tuning steps (both runs)")
    parser.add_argument("--pretrain-steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds")
    parser.add_argument("--work", type=Path, default=None, help="keep datasets and runs here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_pretrained_"))
    cfg = load_run_config(run_config("synthetic_tiny"))
    source, target = work / "synth_a", work / "synth_b"
    synth(source, 1)
    synth(target, 2)
    first = work / "pretrain"
    if not (first / "checkpoints" / "last.pt").exists():
        print("pretraining:", train(cfg, source, first, args.pretrain_steps), flush=True)
    weights = str(first / "checkpoints" / "last.pt")
    rows = []
    for seed in args.seeds:
        for start, pretrained in (("scratch", ""), ("pretrained", weights)):
            result = train(cfg, target, work / f"{start}_{seed}", args.steps, pretrained, seed)
            rows.append((start, seed, result))
            print(start, seed, result, flush=True)
    print(f"\nagent frame-mAP@0.5 on the second dataset's val videos after {args.steps} steps "
          f"(pretraining: {args.pretrain_steps} steps on another seed's data)")
    for start, seed, result in rows:
        print(f"  {start:10s} seed {seed}: agent frame-mAP {result.get('frame_map_agent', 0):5.1f}"
              f"  agentness {result.get('frame_map_agentness', 0):5.1f}"
              f"  val loss {result.get('val_loss', float('nan')):.3f}"
              f"  ({result['minutes']:.1f} min)")


if __name__ == "__main__":
    main()

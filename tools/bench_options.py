"""Measurement: what each optional module of the seeds buys on the demo's data and budget (CPU).

    OMP_NUM_THREADS=1 PYTHONPATH=. python tools/bench_options.py --work DIR [--seeds 0 1 2]
        [--options default msdeform deformable3d acar trajectory] [--budget-steps 720]
        [--frame-only] [--equal-steps] [--table-only]

(docs/detector.md's table: ``--seeds 0 1 2``, then ``--seeds 0 --options acar trajectory
--equal-steps``.)

Each option is a packaged config (``synthetic_tiny_<option>.yaml``, ``base: synthetic_tiny``).
On the demo's synthetic data (``roadtrack synth``: 24 videos, 17 train / 7 val), per training
seed: the detector options (and the default) train the tiny detector, run detect and track on
the train and val videos, fit the event head on the train tracks and score val as the demo does;
the event-stage options reuse that seed's default detector and tracks (copied) and refit only
the event head with their ``events`` section.

The budget is the demo's: as many steps as fit in its 4 minutes. So that a busy machine does not
tip the comparison, it is counted in steps, not minutes: the default trains ``--budget-steps``
(what it fits in 4 minutes on this machine when quiet), and each detector option the steps that
fit in the same time at its own speed, measured in this process against the default (train
steps of 2 clips on one thread, interleaved). Forward time per clip is measured the same way.
Every finished run is kept in DIR and skipped by a rerun; the table is printed at the end.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from bench_model import fake_targets

from roadtrack.configs import run_config
from roadtrack.demo import _scores
from roadtrack.engine.config import RunConfig, load_run_config
from roadtrack.engine.detect import load_detector
from roadtrack.engine.train import launch_train
from roadtrack.eval.road import evaluate_road, to_json
from roadtrack.events.submit import submit_run
from roadtrack.events.train import fit_event_head
from roadtrack.io.annotations import load_annotation
from roadtrack.models import build_detector
from roadtrack.pipeline import run_pipeline
from roadtrack.synth.dataset import ANNOTATION_NAME

DETECTOR_OPTIONS = ("default", "msdeform", "deformable3d")
EVENT_OPTIONS = ("acar", "trajectory")
BUDGET_MINUTES = 4.0  # the demo's (synthetic_tiny's train.time_budget_minutes)


def option_config(option: str) -> RunConfig:
    name = "synthetic_tiny" if option == "default" else f"synthetic_tiny_{option}"
    source = run_config(name)
    if source is None:
        raise SystemExit(f"no packaged config {name}")
    return load_run_config(source)


def step_seconds(configs: dict[str, RunConfig], rounds: int = 5, steps: int = 4
                 ) -> dict[str, dict[str, float]]:
    """Median seconds of one training step (2 clips, as each of the demo's processes takes) and
    of one clip's forward pass (batches of 8, no gradients), per option, on one thread; the
    options take turns so a load spike hits them alike."""
    torch.set_num_threads(1)
    width, height = next(iter(configs.values())).data.input_size
    models, times = {}, {}
    for option, cfg in configs.items():
        torch.manual_seed(0)
        models[option] = build_detector(cfg.model)
        times[option] = {"train": [], "forward": []}
    frames = next(iter(configs.values())).model.num_frames
    clips = torch.rand(8, 3, frames, height, width)  # (B, C, T, H, W)
    for _ in range(rounds):
        for option, model in models.items():
            targets = fake_targets(2, dict(model.labels_shape), "cpu")
            model.train()
            start = time.perf_counter()
            for _ in range(steps):
                model(clips[:2], targets)["loss"].backward()
            times[option]["train"].append((time.perf_counter() - start) / steps)
            model.zero_grad(set_to_none=True)
            model.eval()
            with torch.no_grad():
                start = time.perf_counter()
                model.decode(clips)
                times[option]["forward"].append((time.perf_counter() - start) / len(clips))
    return {option: {kind: statistics.median(values) for kind, values in kinds.items()}
            for option, kinds in times.items()}


def event_step_seconds(configs: dict[str, RunConfig], data: Path, train_run: Path,
                       rounds: int = 3, short: int = 10, long: int = 50) -> dict[str, float]:
    """Seconds per event-head training step of each option, on ``train_run``'s tracks: fits of
    ``short`` and ``long`` steps, the difference per step (loading the tracks cancels out);
    the options take turns."""
    times: dict[str, list[float]] = {option: [] for option in configs}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for option, cfg in configs.items():
                seconds = []
                for steps in (short, long):
                    fit = dataclasses.replace(cfg.events.fit, steps=steps)
                    events = dataclasses.replace(cfg.events, fit=fit)
                    seconds.append(fit_event_head(data, train_run, Path(tmp), events,
                                                  progress=False)["seconds"])
                times[option].append((seconds[1] - seconds[0]) / (long - short))
    return {option: max(statistics.median(values), 1e-6) for option, values in times.items()}


def synth(data: Path) -> None:
    """The demo's dataset (``roadtrack synth`` defaults), in a child process."""
    if not (data / ANNOTATION_NAME).is_file():
        subprocess.run([sys.executable, "-m", "roadtrack", "synth", "--out", str(data)],
                       check=True, capture_output=True)


def train_detector(cfg: RunConfig, data: Path, run: Path, steps: int, seed: int) -> int:
    done = run / "steps.txt"
    if not done.is_file():
        cfg = cfg.with_values("train", max_steps=steps, decay_span="steps", seed=seed,
                              time_budget_minutes=0.0, checkpoint_every=steps)
        summary = launch_train(cfg, data, run, progress=False)
        done.write_text(f"{summary.steps}\n")
    return int(done.read_text())


def score_events(cfg: RunConfig, data: Path, work: Path, detector_run: Path, seed: int,
                 tracks_from: Path | None = None) -> dict:
    """Fit the event head on the train tracks, run the events stage on val, score it.
    ``tracks_from``: reuse another folder's detect and track output (copied)."""
    result_file = work / "result.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    anno = load_annotation(data / ANNOTATION_NAME)
    detector = load_detector(run=detector_run)
    cfg = cfg.with_values("events", fit=dataclasses.replace(cfg.events.fit, seed=seed))
    train_run, val_run = work / "train-run", work / "run"
    if tracks_from is not None:
        for name in ("train-run", "run"):
            if not (work / name).exists():
                shutil.copytree(tracks_from / name, work / name)
    else:
        run_pipeline(detector, data, train_run, cfg, names=anno.split("train"), progress=False,
                     strict=True)
    started = time.perf_counter()
    fit_event_head(data, train_run, work / "event-head", cfg.events, progress=False)
    head_seconds = time.perf_counter() - started
    run_pipeline(detector, data, val_run, cfg, work / "event-head", names=anno.split("val"),
                 progress=False, strict=True,
                 from_stage="events" if tracks_from is not None else None)
    submission, _ = submit_run(val_run, work / "submission.pkl", anno.split("val"))
    report = _scores(anno, val_run, submission)
    frame = report["frame_map"]
    result = {"agent_frame_map": frame["agent"]["mAP"], "action_frame_map": frame["action"]["mAP"],
              "triplet_video_map": report["video_map"]["triplet"]["0.2"]["mAP"],
              "event_head_fit_s": head_seconds}
    result_file.write_text(json.dumps(result, indent=1))
    return result


def score_frames(cfg: RunConfig, data: Path, work: Path, detector_run: Path) -> dict:
    """The detector's frame-mAP on val alone (no event head, no triplets)."""
    result_file = work / "result.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    anno = load_annotation(data / ANNOTATION_NAME)
    run_pipeline(load_detector(run=detector_run), data, work / "run", cfg,
                 names=anno.split("val"), progress=False, strict=True)
    frame = to_json(evaluate_road(anno, run=work / "run", subset="val"))["frame_map"]
    result = {"agent_frame_map": frame["agent"]["mAP"], "action_frame_map": frame["action"]["mAP"]}
    result_file.write_text(json.dumps(result, indent=1))
    return result


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def cached(path: Path, keys: list[str], measure) -> dict:
    """``path``'s JSON when it holds every key, else ``measure()`` written there."""
    found = json.loads(path.read_text()) if path.is_file() else {}
    if not set(keys) <= set(found):  # all options measured in one process, or none
        found = measure()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(found, indent=1))
    return found


def with_head_steps(cfg: RunConfig, steps: int) -> RunConfig:
    return cfg.with_values("events", fit=dataclasses.replace(cfg.events.fit, steps=steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="data and runs are kept here")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--options", nargs="+", default=[*DETECTOR_OPTIONS, *EVENT_OPTIONS])
    parser.add_argument("--budget-steps", type=int, default=720,
                        help="steps the default fits in the demo's 4 minutes (721 in the last "
                             "demo here, docs/results.md)")
    parser.add_argument("--frame-only", action="store_true",
                        help="detector options: frame-mAP only (no event head: no triplets)")
    parser.add_argument("--equal-steps", action="store_true",
                        help="event options: the default head's steps, not its time")
    parser.add_argument("--table-only", action="store_true",
                        help="print the table of the runs that finished; run nothing")
    args = parser.parse_args()
    options = ["default", *[o for o in args.options if o != "default"]]
    configs = {option: option_config(option) for option in options}
    detector_options = [o for o in options if o not in EVENT_OPTIONS]
    event_options = ["default", *[o for o in options if o in EVENT_OPTIONS]]

    speed = cached(args.work / "speed.json", detector_options,
                   lambda: step_seconds({o: configs[o] for o in detector_options}))
    budget = {o: round(args.budget_steps * speed["default"]["train"] / speed[o]["train"])
              for o in detector_options}
    data = args.work / "data"
    synth(data)

    results: dict[str, list[dict]] = {option: [] for option in detector_options}
    head_speed: dict[str, float] = {}
    for seed in args.seeds:
        for option in detector_options:
            folder = args.work / f"{option}-seed{seed}"
            if args.table_only and not (folder / "result.json").is_file():
                continue
            steps = train_detector(configs[option], data, folder / "detector", budget[option],
                                   seed)
            if option != "default" and args.frame_only:
                result = score_frames(configs[option], data, folder, folder / "detector")
            else:
                result = score_events(configs[option], data, folder, folder / "detector", seed)
            results[option].append({**result, "steps": steps,
                                     "head_steps": configs[option].events.fit.steps})
            print(option, seed, results[option][-1], flush=True)
        default = args.work / f"default-seed{seed}"
        if len(event_options) > 1 and not head_speed \
                and (default / "result.json").is_file():
            head_speed = cached(args.work / "event_speed.json", event_options, partial(
                event_step_seconds, {o: configs[o] for o in event_options}, data,
                default / "train-run"))
        for option in event_options[1:]:
            name = f"{option} (equal steps)" if args.equal_steps else option
            folder = args.work / f"{option}{'-equal-steps' if args.equal_steps else ''}-seed{seed}"
            if args.table_only and not (folder / "result.json").is_file():
                continue
            # the demo's event-head budget in time: its steps at the default head's speed
            head_steps = configs[option].events.fit.steps if args.equal_steps else max(1, round(
                configs[option].events.fit.steps * head_speed["default"] / head_speed[option]))
            result = score_events(with_head_steps(configs[option], head_steps), data, folder,
                                  default / "detector", seed, tracks_from=default)
            steps = int((default / "detector" / "steps.txt").read_text())
            results.setdefault(name, []).append({**result, "steps": steps,
                                                 "head_steps": head_steps})
            print(name, seed, results[name][-1], flush=True)

    print(f"\nseeds {args.seeds} (n: runs per option); mean ± standard deviation over seeds; "
          "budget: the demo's "
          f"{BUDGET_MINUTES:g} minutes as {args.budget_steps} steps of the default detector, and "
          "the event head's time of its default")
    print("| option | n | agent frame-mAP@0.5 | action frame-mAP@0.5 | triplet video-mAP@0.2 "
          "| detector steps | train step (ms, 2 clips) | forward (ms/clip) "
          "| event-head steps | event-head step (ms) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for option, rows in results.items():
        if not rows:
            continue
        base = option.split()[0]
        timing = speed.get(base, speed["default"])
        head_ms = head_speed.get(base, head_speed.get("default", float("nan"))) * 1000
        triplets = [r["triplet_video_map"] for r in rows if "triplet_video_map" in r]
        shown = spread(triplets) + (f" (n={len(triplets)})" if len(triplets) < len(rows) else "")
        print(f"| {option} | {len(rows)} | {spread([r['agent_frame_map'] for r in rows])} "
              f"| {spread([r['action_frame_map'] for r in rows])} | {shown} "
              f"| {rows[0]['steps']} | {timing['train'] * 1000:.0f} "
              f"| {timing['forward'] * 1000:.0f} | {rows[0]['head_steps']} | {head_ms:.0f} |")


if __name__ == "__main__":
    main()

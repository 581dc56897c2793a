"""``roadtrack demo``: the whole job on built-in synthetic data, from nothing, in minutes.

synthesise a dataset -> train the tiny detector -> run detect and track on the training videos
-> train the event head on them -> run the pipeline on the val videos -> write the submission
-> score it (video-mAP, frame-mAP, MOT metrics) -> draw one video -> print a short table.

Every step keeps its output in ``DIR``; a rerun skips the steps that finished (a detector whose
training was interrupted resumes from its last checkpoint).
"""
from __future__ import annotations

import time
from pathlib import Path

from .engine.config import RunConfig, load_run_config
from .engine.detect import load_detector
from .engine.train import launch_train
from .eval.mot import evaluate_road_tracks
from .eval.road import evaluate_road, to_json
from .events.submit import submit_run
from .events.train import HEAD_FILE, fit_event_head
from .io.annotations import load_annotation
from .io.atomic import write_json_atomic
from .io.runs import TrainingRun
from .io.video import FrameFolder
from .pipeline import run_pipeline
from .report import table
from .synth.dataset import ANNOTATION_NAME, write_dataset
from .viz import render_run_video

DEMO_VIDEOS = 24  # 17 train, 7 val: the val videos hold 66 of the 86 triplet classes (16: 51)
DEMO_FRAMES = 100
DONE = ".done"


class _Clock:
    """Seconds per demo step, for the closing table."""

    def __init__(self):
        self.steps: list[tuple[str, float]] = []

    def step(self, name: str, started: float) -> None:
        self.steps.append((name, time.perf_counter() - started))


def _train_detector(cfg: RunConfig, config_path: Path, data: Path, run: Path,
                    progress: bool) -> None:
    if (run / DONE).is_file():
        return
    resume = TrainingRun(run).last.is_file()
    launch_train(cfg, data, run, resume=resume, progress=progress, config_path=config_path)
    (run / DONE).write_text("trained\n")


def _scores(anno, run: Path, submission: Path) -> dict:
    """``report.json``: eval road (submission and the run's detections) and eval mot."""
    video = to_json(evaluate_road(anno, pred=submission, subset="val"))
    frame = to_json(evaluate_road(anno, run=run, subset="val"))
    return {"video_map": video["video_map"], "frame_map": frame["frame_map"],
            "challenge": video.get("challenge"),
            "mot": evaluate_road_tracks(anno, run, subset="val")}


def summary_table(report: dict) -> str:
    def vmap(t, iou="0.2"):
        return report["video_map"][t][iou]["mAP"]

    rows = [["agent video-mAP@0.2", round(vmap("agent"), 1)],
            ["triplet video-mAP@0.2", round(vmap("triplet"), 1)],
            ["agent frame-mAP@0.5", round(report["frame_map"]["agent"]["mAP"], 1)],
            ["triplet frame-mAP@0.5", round(report["frame_map"]["triplet"]["mAP"], 1)],
            ["MOTA", round(report["mot"]["overall"]["mota"], 3)],
            ["IDF1", round(report["mot"]["overall"]["idf1"], 3)]]
    challenge = report.get("challenge") or {}
    for label_type in ("agent", "triplet"):
        if challenge.get(label_type) is not None:
            rows.append([f"{label_type} challenge score (0.1/0.2/0.5)",
                         round(challenge[label_type], 1)])
    return table(rows, ["val split", "value"])


def run_demo(out: str | Path, config: str | Path, progress: bool = True) -> str:
    """Run every step into ``out``; returns the closing tables."""
    out, config = Path(out), Path(config)
    run_config = load_run_config(config)
    clock = _Clock()
    data = out / "data"

    started = time.perf_counter()
    if not (data / ANNOTATION_NAME).is_file():
        write_dataset(data, num_videos=DEMO_VIDEOS, num_frames=DEMO_FRAMES, progress=progress)
    anno = load_annotation(data / ANNOTATION_NAME)
    clock.step("synthesise data", started)

    started = time.perf_counter()
    _train_detector(run_config, config, data, out / "detector", progress)
    clock.step("train detector", started)

    started = time.perf_counter()
    detector = load_detector(run=out / "detector")
    run_pipeline(detector, data, out / "train-run", run_config, names=anno.split("train"),
                 progress=progress, config_path=config, strict=True)
    head_dir = out / "event-head"
    if not (head_dir / HEAD_FILE).is_file():
        fit_event_head(data, out / "train-run", head_dir,
                       run_config.events, progress=progress)
    clock.step("train event head", started)

    started = time.perf_counter()
    val = anno.split("val")
    run = out / "run"
    run_pipeline(detector, data, run, run_config, head_dir, names=val, progress=progress,
                 config_path=config, strict=True)
    clock.step("pipeline on val", started)

    started = time.perf_counter()
    submission, _ = submit_run(run, out / "submission.pkl", val)
    report = _scores(anno, run, submission)
    write_json_atomic(out / "eval" / "report.json", report, indent=1)
    render_run_video(run, FrameFolder(data / "rgb-images" / val[0]), out / "viz" / f"{val[0]}.mp4")
    clock.step("submit, score, draw", started)

    steps = table([[name, round(seconds, 1)] for name, seconds in clock.steps],
                  ["step", "seconds"])
    return "\n\n".join([summary_table(report), steps,
                        f"outputs in {out}: submission.pkl, eval/report.json, viz/{val[0]}.mp4"])

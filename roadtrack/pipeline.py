"""``roadtrack run``: detect, then track, then events for every video of a folder.

Each stage writes one artifact per video into the run folder (``detections/``, ``tracks/``,
``events/``) and skips videos whose artifact already exists, so a killed run resumes where it
stopped and gives the same files as an uninterrupted one. ``from_stage`` reruns a stage and the
ones after it for every video (with other settings, say) and keeps what comes before. A video
that fails at a stage (cannot be opened, breaks mid-way, a broken artifact) is left out of the
later stages and listed with the reports (``roadtrack.batch``); a rerun retries exactly those.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .batch import Failure, record_failures
from .engine.config import RunConfig
from .engine.detect import detect_sources
from .errors import OutputInUse, UserError
from .events.stage import TrainedHead, run_events
from .events.train import HEAD_FILE
from .io.runs import STAGE_FOLDERS, PipelineRun
from .io.video import discover_videos
from .labels import LabelSpace
from .report import table
from .tracking.run import camera_motion, read_detection_artifact, track_detections, write_tracks

STAGES = tuple(STAGE_FOLDERS)


@dataclass
class StageReport:
    stage: str
    done: int
    skipped: int
    frames: int
    seconds: float
    failed: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _stale(run: PipelineRun, stage: str, videos: list[str]) -> None:
    """Remove ``stage``'s artifacts of ``videos`` so that the stage runs again."""
    for video in videos:
        run.artifact(stage, video).unlink(missing_ok=True)


def _check_same_detector(run: PipelineRun, detector) -> None:
    """A run folder's detections must come from one detector: refuse another config's run."""
    recorded = (run.read().get("detect") or {})
    weights = recorded.get("weights")
    if weights and Path(weights) != Path(detector.weights).resolve():
        raise OutputInUse(f"run folder was made with other weights ({weights})", run.folder)
    settings = recorded.get("settings")
    if settings and settings != asdict(detector.config.detect):
        raise OutputInUse("run folder was made with other detect settings", run.folder)


def run_pipeline(detector, videos: str | Path, out: str | Path, run_config: RunConfig,
                 event_head: str | Path | None = None, from_stage: str | None = None,
                 names: list[str] | None = None, progress: bool = True,
                 device: str = "auto", config_path: str | Path | None = None,
                 strict: bool = False) -> tuple[list[StageReport], list[Failure]]:
    """Run the three stages over ``videos`` into ``out``: a report per stage, and the videos that
    failed (``strict``: the first failure raises instead).

    ``detector`` is a loaded detector (``roadtrack.engine.detect.load_detector``); of
    ``run_config`` the ``track`` and ``events`` sections are used here.
    """
    out = Path(out)
    run = PipelineRun(out)
    if from_stage is not None and from_stage not in STAGES:
        raise UserError(f"no stage {from_stage!r} to start from (stages: {', '.join(STAGES)})")
    unopened: list | None = None if strict else []
    sources = discover_videos(videos, names, unopened)
    failures = [Failure.of(err, name, "detect", err.path) for name, err in unopened or []]
    video_names = [s.name for s in sources] + [f.video for f in failures]
    tracker, events_cfg = run_config.track, run_config.events
    head = TrainedHead(Path(event_head) / HEAD_FILE if Path(event_head).is_dir()
                       else event_head) if event_head else None
    labels = LabelSpace.from_dict(detector.labels)
    if head is not None and head.labels != labels:
        raise UserError("event head was trained for another label space", head.path)
    if from_stage != "detect" and run.has_record():
        _check_same_detector(run, detector)
    if from_stage is not None:
        for stage in STAGES[STAGES.index(from_stage):]:
            _stale(run, stage, video_names)
    reports = []

    started = time.perf_counter()
    summary = detect_sources(detector, sources, out, videos, failures, progress=progress,
                             device=device, strict=strict)
    failures = summary.failures
    reports.append(StageReport("detect", summary.videos, summary.skipped, summary.frames,
                               time.perf_counter() - started, len(failures)))
    for stage in ("track", "events"):
        started, done, skipped, frames, failed = time.perf_counter(), 0, 0, 0, 0
        upstream = {f.video for f in failures}  # failed at an earlier stage: nothing to go on
        for source in sources:
            if source.name in upstream:
                continue
            if run.artifact(stage, source.name).is_file():
                skipped += 1
                continue
            try:
                if stage == "track":
                    det = read_detection_artifact(out, source.name)
                    # CMC decodes the video again, shrunk; folding it into detect's decode
                    # would save this pass
                    motion = None if tracker.cmc == "none" else \
                        camera_motion(source, det, tracker.cmc, source.info.num_frames)
                    write_tracks(det, track_detections(det, tracker, camera_motion=motion),
                                 run.mot, motion)
                else:
                    run_events(out, source.name, labels, events_cfg, head)
            except UserError as err:
                if strict:
                    raise
                failures.append(Failure.of(err, source.name, stage, source.info.path))
                failed += 1
                continue
            done += 1
            frames += len(source.numbers())
        reports.append(StageReport(stage, done, skipped, frames, time.perf_counter() - started,
                                   failed))
    _record(run, videos, tracker, events_cfg, event_head)
    record_failures(out, failures, video_names)
    return reports, failures


def _record(run: PipelineRun, videos, tracker, events_cfg, event_head) -> None:
    """Note the track and event settings in ``run.yaml`` (the detect stage notes its own)."""
    run.update(pipeline={"videos": str(Path(videos).resolve()), "track": tracker.to_dict(),
                         "events": asdict(events_cfg),
                         "event_head": str(Path(event_head).resolve()) if event_head else None})


def report_table(reports: list[StageReport]) -> str:
    rows = [[r.stage, r.done, r.skipped, r.failed, r.frames, round(r.seconds, 1), round(r.fps, 1)]
            for r in reports]
    return table(rows, ["stage", "videos", "skipped", "failed", "frames", "seconds",
                        "frames/s"])

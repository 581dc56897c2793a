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

import yaml

from .batch import Failure, record_failures
from .engine.config import RunConfig
from .errors import NotRecorded, OutputInUse, UserError
from .io.artifacts import artifact_path
from .io.atomic import write_text_atomic

RUN_FILE = "run.yaml"
STAGES = ("detect", "track", "events")
STAGE_DIRS = {"detect": "detections", "track": "tracks", "events": "events"}


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


def read_run_file(run: str | Path) -> dict:
    path = Path(run) / RUN_FILE
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        raise UserError("run.yaml is not valid YAML", path) from None
    if not isinstance(data, dict):
        raise UserError("run.yaml is not a mapping", path)
    return data


def recorded_videos_dir(run: str | Path) -> Path:
    """The videos folder a run folder was made from (its ``run.yaml``)."""
    data = read_run_file(run)
    for section in ("pipeline", "detect"):
        videos = (data.get(section) or {}).get("videos")
        if videos:
            return Path(videos)
    raise NotRecorded("run.yaml does not say where the videos are", run)


def _stale(run: Path, stage: str, videos: list[str]) -> None:
    """Remove ``stage``'s artifacts of ``videos`` so that the stage runs again."""
    for video in videos:
        artifact_path(run, STAGE_DIRS[stage], video).unlink(missing_ok=True)


def _check_same_detector(run: Path, detector) -> None:
    """A run folder's detections must come from one detector: refuse another config's run."""
    recorded = (read_run_file(run).get("detect") or {})
    weights = recorded.get("weights")
    if weights and Path(weights) != Path(detector.weights).resolve():
        raise OutputInUse(f"run folder was made with other weights ({weights})", run)
    settings = recorded.get("settings")
    if settings and settings != asdict(detector.config.detect):
        raise OutputInUse("run folder was made with other detect settings", run)


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
    from .engine.detect import detect_sources
    from .events.stage import TrainedHead, run_events
    from .events.train import HEAD_FILE
    from .io.video import discover_videos
    from .labels import LabelSpace
    from .tracking.run import read_detection_artifact, track_detections, write_tracks

    out = Path(out)
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
    if from_stage != "detect" and (out / RUN_FILE).is_file():
        _check_same_detector(out, detector)
    if from_stage is not None:
        for stage in STAGES[STAGES.index(from_stage):]:
            _stale(out, stage, video_names)
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
            if artifact_path(out, STAGE_DIRS[stage], source.name).is_file():
                skipped += 1
                continue
            try:
                if stage == "track":
                    det = read_detection_artifact(out, source.name)
                    write_tracks(det, track_detections(det, tracker), out / "mot")
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
    _record(out, videos, tracker, events_cfg, event_head)
    record_failures(out, failures, video_names)
    return reports, failures


def _record(out: Path, videos, tracker, events_cfg, event_head) -> None:
    """Note the track and event settings in ``run.yaml`` (the detect stage notes its own)."""
    content = read_run_file(out)
    content["pipeline"] = {"videos": str(Path(videos).resolve()), "track": tracker.to_dict(),
                           "events": asdict(events_cfg),
                           "event_head": str(Path(event_head).resolve()) if event_head else None}
    write_text_atomic(out / RUN_FILE, yaml.safe_dump(content, sort_keys=False))


def report_table(reports: list[StageReport]) -> str:
    from .report import table

    rows = [[r.stage, r.done, r.skipped, r.failed, r.frames, round(r.seconds, 1), round(r.fps, 1)]
            for r in reports]
    return table(rows, ["stage", "videos", "skipped", "failed", "frames", "seconds",
                        "frames/s"])

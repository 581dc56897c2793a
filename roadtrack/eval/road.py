"""``roadtrack eval road``: video-mAP and frame-mAP of a submission or a run (ROADPP.md §5)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..io.annotations import Annotation, load_annotation
from ..io.artifacts import finished_videos
from ..io.runs import DETECTIONS
from ..io.safe_pickle import read_pickle
from ..io.submission import FAILS, MISSCORED, SUSPICIOUS, check_submission, summarise
from ..labels import LabelSpace
from ..report import table
from .ap import ClassResult
from .av_action import av_action_ap, av_action_scores, av_action_truth
from .frame_map import FRAME_LEVELS, build_frame_truth, frame_map
from .inputs import frame_dets_from_pickle, frame_dets_from_run, submission_from_run
from .video_map import PROTOCOLS, truth_tubes, video_ap

CHALLENGE_TYPES = ("agent", "triplet")
CHALLENGE_THRESHOLDS = (0.1, 0.2, 0.5)


@dataclass
class RoadResult:
    labels: LabelSpace
    videos: list[str]
    protocol: str
    subset: str | None
    thresholds: list[float]
    video: dict[str, dict[float, list[ClassResult]]]  # type -> threshold -> per class
    frame: dict[str, list[ClassResult]]  # level -> per class
    warnings: list[str] = field(default_factory=list)  # one line each, naming the file


def mean_ap(results: list[ClassResult]) -> float:
    """Plain mean over all classes of the level (classes without ground truth count as 0)."""
    return float(np.mean([r.ap for r in results])) if results else 0.0


def evaluate_road(anno: str | Path | Annotation, pred: str | Path | None = None,
                  run: str | Path | None = None, frame_dets: str | Path | None = None,
                  subset: str | None = None, thresholds=(0.1, 0.2, 0.5),
                  protocol: str = "official", frame_threshold: float = 0.5,
                  frame_top_k: int = 10, frame_min_score: float = 0.01) -> RoadResult:
    """Score a submission pickle (``pred``, video-mAP) and/or frame detections (``frame_dets``,
    frame-mAP), or a run folder, against an annotation file.

    A run gives video-mAP when it has event artifacts and frame-mAP when it has detection
    artifacts (each then needed for every evaluated video); of a run's detections, per frame and
    class the ``frame_top_k`` best reaching ``frame_min_score`` are scored.

    A submission is scored as the official scorer scores it (boxes as given, a tube whose label
    is no class ignored, ...), what ``validate`` lists becoming ``warnings``; one the official
    scorer fails on is refused.
    """
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown protocol {protocol!r} (choose {' or '.join(PROTOCOLS)})")
    if run is not None and (pred is not None or frame_dets is not None):
        raise UserError("a run folder brings its own tubes and detections: score it without a "
                        "submission or frame detections")
    if pred is None and run is None and frame_dets is None:
        raise UserError("nothing to score: no submission, frame detections or run folder")
    if run is not None and not Path(run).is_dir():
        raise UserError("no such run folder", run)
    anno = anno if isinstance(anno, Annotation) \
        else load_annotation(anno, splits=None if subset is None else [subset])
    videos = anno.split(subset)
    if not videos:
        raise UserError(f"no videos of split {subset!r} (splits: {', '.join(anno.splits())})",
                        anno.path)
    labels = anno.labels
    thresholds = sorted({float(t) for t in thresholds})
    warnings: list[str] = []
    tubes = {}
    if pred is not None:
        submission, notes = read_pickle(pred)
        warnings += notes
        tubes = scored_tubes(submission, anno, videos, protocol, pred, warnings)
    elif run is not None:
        submission = submission_from_run(run, videos)
        if submission is None and not finished_videos(run, DETECTIONS):
            raise UserError("run has neither detections/ nor events/ artifacts", run)
        if submission is not None:
            tubes = scored_tubes(submission, anno, videos, protocol, run, warnings)
    video_results = {}
    for label_type, dets in tubes.items():
        video_results[label_type] = video_ap(dets, truth_tubes(anno, videos, label_type),
                                             labels.num_classes(label_type), len(videos),
                                             thresholds, protocol)
    frame_results = {}
    if frame_dets is not None or (run is not None and finished_videos(run, DETECTIONS)):
        truth = build_frame_truth(anno, videos)
        if frame_dets is not None:
            raw, notes = read_pickle(frame_dets)
            warnings += notes
            dets = frame_dets_from_pickle(raw, truth, labels, frame_dets)
        else:
            assert run is not None  # without frame_dets, the condition above needs a run
            dets = frame_dets_from_run(run, videos, truth, labels, frame_top_k, frame_min_score)
        frame_results = frame_map(truth, dets, frame_threshold)
    av_scores = av_action_scores(run, videos, labels) if run is not None else None
    av_truth = av_action_truth(anno.path, videos, labels) if av_scores is not None else None
    if av_scores is not None and av_truth is not None:  # events carry the AV's own action
        frame_results["av_action"] = av_action_ap(av_truth, av_scores)
    return RoadResult(labels, videos, protocol, subset, thresholds, video_results, frame_results,
                      warnings)


def scored_tubes(submission, anno: Annotation, videos: list[str], protocol: str, path,
                 warnings: list[str]) -> dict:
    """The tubes the official scorer compares, per label type; refuses (one line) a submission
    it fails on, and adds to ``warnings`` what ``validate`` would list."""
    check = check_submission(submission, videos, anno.labels,
                             require_contiguous=protocol == "official",
                             numf={v: anno.videos[v].numf for v in videos})
    fails = check.of(FAILS)
    if fails:
        count = f"{len(fails)} problems, first" if len(fails) > 1 else "1 problem"
        raise UserError(f"the official scorer fails on this submission ({count}: "
                        f"{fails[0].line()}); `roadtrack validate` lists them all", path)
    warnings += [f"{path}: {line}" for line in summarise(check.of(MISSCORED, SUSPICIOUS))]
    return check.tubes


def _key(threshold: float) -> str:
    return f"{threshold:g}"


def challenge_scores(result: RoadResult) -> dict[str, float | None]:
    """Mean video-mAP over ST-IoU 0.1, 0.2, 0.5 for agents (Track 1) and triplets (Track 2)."""
    out: dict[str, float | None] = {}
    for label_type in CHALLENGE_TYPES:
        per = result.video.get(label_type, {})
        if all(t in per for t in CHALLENGE_THRESHOLDS):
            out[label_type] = float(np.mean([mean_ap(per[t]) for t in CHALLENGE_THRESHOLDS]))
        else:
            out[label_type] = None
    return out


def to_json(result: RoadResult) -> dict:
    """The documented JSON: video_map, frame_map, challenge, and what was evaluated."""
    return {
        "protocol": result.protocol,
        "subset": result.subset,
        "num_videos": len(result.videos),
        "video_map": {t: {_key(th): {"mAP": mean_ap(r), "ap": [c.ap for c in r]}
                          for th, r in per.items()} for t, per in result.video.items()},
        "frame_map": {lv: {"mAP": mean_ap(r), "ap": [c.ap for c in r]}
                      for lv, r in result.frame.items()},
        "challenge": challenge_scores(result),
    }


def format_report(result: RoadResult) -> str:
    """Per-class tables (frame AP and video AP at each threshold), then the summary."""
    parts = []
    for level in (*FRAME_LEVELS, "av_action"):
        in_video = level in result.video
        if level not in result.frame and not in_video:
            continue
        names = ["agent_ness"] if level == "agent_ness" else list(result.labels.names(level))
        header = ["class", ("gt frames" if level == "av_action" else "gt boxes")
                  if level in result.frame else "gt tubes"]
        columns = []
        if level in result.frame:
            header.append("frame@0.5")
            columns.append(result.frame[level])
        for th in result.thresholds if in_video else []:
            header.append(f"video@{_key(th)}")
            columns.append(result.video[level][th])
        rows: list[list] = []  # class name, positives, APs
        for c, name in enumerate(names):
            positives = columns[0][c].num_positives
            rows.append([name, positives] + [col[c].ap for col in columns])
        rows.append(["mAP", sum(r[1] for r in rows)] + [mean_ap(col) for col in columns])
        parts.append(f"{level} ({len(names)} classes)\n" + table(rows, header))
    summary = []
    for level in (*FRAME_LEVELS, "av_action")[:len(FRAME_LEVELS) + ("av_action" in result.frame)]:
        row = [level, mean_ap(result.frame[level]) if level in result.frame else "-"]
        row += [mean_ap(result.video[level][th]) if level in result.video else "-"
                for th in result.thresholds]
        summary.append(row)
    parts.append("summary (mAP, protocol " + result.protocol + f", {len(result.videos)} videos)\n"
                 + table(summary, ["level", "frame@0.5"]
                         + [f"video@{_key(t)}" for t in result.thresholds]))
    scores = challenge_scores(result)
    parts.append("challenge score (mean video-mAP at 0.1/0.2/0.5): " + ", ".join(
        f"{t} {'-' if s is None else f'{s:.2f}'}" for t, s in scores.items()))
    return "\n\n".join(parts)


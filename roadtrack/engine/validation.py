"""Validation frame-mAP during training, scored by the project's evaluator (roadtrack.eval).

The key-frame detections of the val clips are written as ordinary detection artifacts into
``RUN/val/detections/`` (so ``roadtrack eval road --run RUN/val`` reproduces the figure) and
scored at IoU 0.5 like ``roadtrack eval road``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..eval.frame_map import build_frame_truth, frame_map
from ..eval.inputs import frame_dets_from_run
from ..eval.road import mean_ap
from ..io.annotations import Annotation
from ..io.artifacts import save_stage
from ..io.runs import DETECTIONS


def write_detections(folder: Path, annotation: Annotation, videos: list[str],
                     found: list[tuple[str, int, dict]]) -> None:
    """One artifact per video from (video, key frame, detections of that frame) triples."""
    by_video: dict[str, list[tuple[int, dict]]] = {v: [] for v in videos}
    for video, frame, det in found:
        by_video[video].append((frame, det))
    template = found[0][2] if found else None
    for video, parts in by_video.items():
        parts.sort(key=lambda p: p[0])
        info = annotation.videos[video]
        if parts:
            fields = {k: np.concatenate([d[k] for _, d in parts]) for k in parts[0][1]}
            frames = np.concatenate([np.full(len(d["scores"]), f, np.int32) for f, d in parts])
        else:  # no clip of this video: empty arrays of the right widths
            fields = {k: v[:0] for k, v in (template or {}).items()}
            frames = np.zeros(0, np.int32)
        save_stage(folder, DETECTIONS, video, frames=frames, **fields, width=info.width,
                   height=info.height, fps=10.0)


def score_frame_map(folder: Path, annotation: Annotation, videos: list[str]) -> dict[str, float]:
    """Agentness and agent frame-mAP@0.5 (percent) of the artifacts in ``folder``."""
    truth = build_frame_truth(annotation, videos)
    dets = frame_dets_from_run(folder, videos, truth, annotation.labels)
    results = frame_map(truth, {k: v for k, v in dets.items() if k in ("agent_ness", "agent")})
    return {"frame_map_agentness": mean_ap(results.get("agent_ness", [])),
            "frame_map_agent": mean_ap(results.get("agent", []))}

"""Frame-mAP of the AV's own action: one label per annotated frame, one score per frame and class.

The ground truth is each annotated frame's ``av_action_ids`` (mapped by name into
``av_action_labels``); a prediction is an events document's ``av_action`` part (per frame 1..F
the scores of the classes, ``roadtrack.events.av_action``). Per class, the scored annotated frames
of all videos are ranked by score and each is a true positive when the frame carries the class;
AP as for boxes (``roadtrack.eval.ap``), mAP the plain mean over the used classes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.artifacts import artifact_path, load_events
from ..io.av_actions import read_av_actions
from ..io.runs import EVENTS
from ..labels import LabelSpace
from .ap import ClassResult, average_precision, rank


def av_action_truth(path: str | Path, videos: list[str], labels: LabelSpace
                    ) -> dict[str, np.ndarray] | None:
    """video -> (numf, C) bool multi-hot AV actions; rows of frames not annotated are all False.
    None when the file names no AV actions (read apart from the boxes: the annotation reader keeps
    no AV actions)."""
    found = read_av_actions(path, videos)
    if found is None:
        return None
    all_names, per_video = found
    used = list(labels.names("av_action"))
    index = [used.index(n) if n in used else -1 for n in all_names]
    out = {}
    for video, (numf, frames) in per_video.items():
        hot = np.zeros((numf, len(used)), dtype=bool)
        for n, ids in frames.items():
            for i in ids:
                if 1 <= n <= numf and 0 <= i < len(index) and index[i] >= 0:
                    hot[n - 1, index[i]] = True
        out[video] = hot
    return out


def av_action_scores(run: str | Path, videos: list[str], labels: LabelSpace
                     ) -> dict[str, np.ndarray] | None:
    """video -> (F, C) scores from the run's events documents; None when none carries any."""
    used = list(labels.names("av_action"))
    out = {}
    for video in videos:
        if not artifact_path(run, EVENTS, video).is_file():
            continue
        part = load_events(run, video).get("av_action")
        if part is None:
            continue
        scores = np.asarray(part["scores"], dtype=np.float64).reshape(-1, len(part["classes"]))
        out[video] = np.stack([scores[:, part["classes"].index(n)] if n in part["classes"]
                               else np.zeros(len(scores)) for n in used], axis=1)
    return out or None


def av_action_ap(truth: dict[str, np.ndarray], scores: dict[str, np.ndarray]
                 ) -> list[ClassResult]:
    """Per class AP over the annotated frames of ``truth``'s videos (frames without a score, or
    of videos without scores, are missed detections)."""
    rows_truth, rows_score = [], []
    num_classes = next(iter(truth.values())).shape[1] if truth else 0
    positives = np.zeros(num_classes, dtype=np.int64)
    for video, hot in truth.items():
        annotated: np.ndarray = np.any(hot, axis=1)  # (numf,) frames with a label
        positives += hot.sum(axis=0)
        pred = scores.get(video)
        if pred is None:
            continue
        n = min(len(pred), len(hot))
        keep = annotated[:n]
        rows_truth.append(hot[:n][keep])
        rows_score.append(pred[:n][keep])
    hot = np.concatenate(rows_truth) if rows_truth else np.zeros((0, num_classes), bool)
    score = np.concatenate(rows_score) if rows_score else np.zeros((0, num_classes))
    results = []
    for c in range(num_classes):
        order = rank(score[:, c])
        results.append(average_precision(hot[order, c], int(positives[c])))
    return results

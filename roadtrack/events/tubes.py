"""Turn tracks into tubes per label type.

The agent tube spans the whole track (one per likely agent class). Action, location, duplex and
triplet tubes cover the stretches where their label is the most likely one: per-frame scores are
smoothed over time, each frame takes its best class, runs shorter than ``min_length`` are absorbed
by their neighbours, and each run becomes a tube. With ``label_top_k`` k > 1 the runs of the
second to k-th best classes become tubes too, scored lower: a rare label the head ranks second
still reaches the ranking (video-mAP ranks each class's tubes on their own). With ``bridge_gaps``
(the default) a label that holds in several runs of one track makes one tube from its first to its
last frame, as the ground truth does: its tubes are one per agent and label, gaps included, and
the official scorer gives 0 to a tube whose shared span with a ground-truth tube ends in its gaps.
Duplex and triplet scores exist only for valid ROAD++ combinations: the product of the track's
agent probability and the frame's action (and location) probabilities.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import at_least
from ..labels import LABEL_TYPES, LabelSpace
from .series import TrackSeries, absorb_short_runs, runs, smooth


@dataclass(frozen=True)
class TubeConfig:
    smooth_window: int = 5  # frames of the moving average over per-frame probabilities
    min_length: int = 4  # runs shorter than this join their neighbours
    agent_top_k: int = 2  # agent tubes per track, for the most likely classes
    min_agent_prob: float = 0.05  # ...that are at least this likely
    min_track_length: int = 3  # shorter tracks make no tubes
    min_score: float = 0.02  # frames whose best class scores less belong to no tube
    label_top_k: int = 1  # action/loc/duplex/triplet tubes from the k best classes per frame
    bridge_gaps: bool = True  # one tube per track and label, from its first to its last run

    def __post_init__(self):
        at_least(self, 1, "smooth_window", "min_length", "agent_top_k", "label_top_k",
                 "min_track_length")
        at_least(self, 0, "min_agent_prob", "min_score")


def tube_dict(series: TrackSeries, start: int, stop: int, label_id: int, label: str,
              frame_scores: np.ndarray) -> dict:
    """A tube over rows start..stop-1 of a track, scored by its mean per-frame score."""
    return {"label_id": int(label_id), "label": label, "track_id": series.track_id,
            "score": float(frame_scores[start:stop].mean()),
            "frames": series.frames[start:stop].tolist(),
            "boxes": np.round(series.boxes[start:stop], 2).tolist(),
            "scores": np.round(frame_scores[start:stop], 5).tolist()}


def class_scores(series: TrackSeries, labels: LabelSpace, window: int) -> dict[str, np.ndarray]:
    """Per-frame scores (n, C) of each label type: agentness x class probability, smoothed."""
    agentness = smooth(series.scores[:, None], window)
    probs = {t: smooth(series.probs[t], window) for t in ("action", "loc")}
    agent_mean = series.probs["agent"].mean(axis=0)  # a track keeps one agent class
    agent = np.broadcast_to(agent_mean, series.probs["agent"].shape)
    duplex_children, triplet_children = labels.duplex_children(), labels.triplet_children()
    return {
        "agent": agentness * agent,
        "action": agentness * probs["action"],
        "loc": agentness * probs["loc"],
        "duplex": agentness * agent[:, duplex_children[:, 0]]
        * probs["action"][:, duplex_children[:, 1]],
        "triplet": agentness * agent[:, triplet_children[:, 0]]
        * probs["action"][:, triplet_children[:, 1]] * probs["loc"][:, triplet_children[:, 2]],
    }


def label_spans(label_of: np.ndarray, min_length: int, bridge_gaps: bool) \
        -> list[tuple[int, int, int]]:
    """(start, stop, label) of the tubes of per-frame labels (-1: none): one per run once short
    runs are absorbed, or with ``bridge_gaps`` one per label from its first run's start to its
    last run's stop."""
    found = [(a, b, int(k)) for a, b, k in runs(absorb_short_runs(label_of, min_length)) if k >= 0]
    if not bridge_gaps:
        return found
    spans: dict[int, tuple[int, int]] = {}
    for start, stop, label in found:
        first, last = spans.get(label, (start, stop))
        spans[label] = (min(first, start), max(last, stop))
    return sorted((start, stop, label) for label, (start, stop) in spans.items())


def track_tubes(series: TrackSeries, labels: LabelSpace, config: TubeConfig) \
        -> dict[str, list[dict]]:
    """Tubes of one track per label type."""
    out = {t: [] for t in LABEL_TYPES}
    if len(series) < config.min_track_length:
        return out
    scores = class_scores(series, labels, config.smooth_window)
    agent_mean = series.probs["agent"].mean(axis=0)
    for k, label_id in enumerate(np.argsort(-agent_mean)[: config.agent_top_k]):
        if k and agent_mean[label_id] < config.min_agent_prob:
            break
        out["agent"].append(tube_dict(series, 0, len(series), label_id, labels.agent[label_id],
                                      scores["agent"][:, label_id]))
    for label_type in ("action", "loc", "duplex", "triplet"):
        frame_scores = scores[label_type]
        if frame_scores.shape[1] == 0:
            continue
        names = labels.names(label_type)
        ranked = np.argsort(-frame_scores, axis=1, kind="stable")  # (n, C) best class first
        ranked_scores = np.take_along_axis(frame_scores, ranked, axis=1)  # (n, C) descending
        for rank in range(min(config.label_top_k, frame_scores.shape[1])):
            label_of = np.where(ranked_scores[:, rank] < config.min_score, -1, ranked[:, rank])
            for start, stop, label_id in label_spans(label_of, config.min_length,
                                                     config.bridge_gaps):
                out[label_type].append(tube_dict(series, start, stop, label_id,
                                                 names[label_id], frame_scores[:, label_id]))
    return out


def video_events(series_list: list[TrackSeries], labels: LabelSpace, config: TubeConfig,
                 video: str, width: int, height: int, fps: float) -> dict:
    """The events document of one video (``events/<video>.json``)."""
    tubes = {t: [] for t in LABEL_TYPES}
    tracks = []
    for series in series_list:
        per_type = track_tubes(series, labels, config)
        for label_type, items in per_type.items():
            tubes[label_type].extend(items)
        if per_type["agent"]:
            top = per_type["agent"][0]
            tracks.append({"track_id": series.track_id, "agent_id": top["label_id"],
                           "agent": top["label"], "agent_score": top["score"],
                           "first": int(series.frames[0]), "last": int(series.frames[-1])})
    return {"video": video, "width": int(width), "height": int(height), "fps": float(fps),
            "tracks": tracks, "tubes": tubes}

"""The event stage: tracks artifact in, events document out (``events/<video>.json``)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..config import section_from_dict
from ..errors import UserError
from ..io.artifacts import CAMERA_MOTION, load_stage, save_events
from ..io.checkpoints import load_model_state, read_torch_file
from ..io.runs import TRACKS
from ..labels import BOX_TYPES, LabelSpace
from .actors import frame_actors, normalise_actors
from .av_action import av_actions
from .config import EventsConfig, HeadConfig
from .features import EXTRA_FIELDS, series_features
from .head import EventHead
from .relation import make_relation
from .series import TrackSeries, track_series
from .tubes import video_events


def _numpy_arrays() -> tuple:
    """What the pickle of a float numpy array names: heads written before this version saved
    mean and std as arrays. Admitted to torch's weights-only unpickler, these rebuild arrays and
    nothing else."""
    reconstruct = np.zeros(1).__reduce__()[0]  # numpy.(_)core.multiarray._reconstruct
    return (reconstruct, np.ndarray, np.dtype, type(np.dtype("f8")), type(np.dtype("f4")))


def load_head_file(path: Path) -> dict:
    """The event head checkpoint's dict, checked; anything amiss is one UserError line."""
    ckpt = read_torch_file(path, "event head checkpoint", allow=_numpy_arrays())
    keys = ("state", "in_dim", "sizes", "mean", "std", "labels", "config")
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in keys) \
            or not isinstance(ckpt["config"], dict):
        raise UserError(f"not an event head checkpoint (needs keys {', '.join(keys)})", path)
    head = section_from_dict(HeadConfig, ckpt["config"].get("head"), "config.head.", path)
    relation = section_from_dict(EventsConfig, {  # heads before the relation option: none
        k: ckpt["config"][k] for k in ("relation", "acar") if k in ckpt["config"]}, "config.",
        path)
    try:
        mean, std = (np.asarray(ckpt[k], dtype=np.float64) for k in ("mean", "std"))
        sizes = [n for n in ckpt["sizes"] if isinstance(n, int) and n >= 0]
        labels = LabelSpace.from_dict(ckpt["labels"])
    except (TypeError, ValueError, AttributeError, UserError):
        raise UserError("not an event head checkpoint (unreadable sizes, mean, std or "
                        "labels)", path) from None
    in_dim = ckpt["in_dim"]
    if len(sizes) != 3 or not isinstance(ckpt["state"], dict) or not isinstance(in_dim, int) \
            or mean.shape != (in_dim,) or std.shape != (in_dim,):
        raise UserError("not an event head checkpoint (its sizes, mean and std disagree)", path)
    return {**ckpt, "head": head, "relation": relation, "sizes": sizes, "mean": mean, "std": std,
            "labels": labels}


class TrainedHead:
    """A fitted event head with the feature normalisation it was trained with."""

    def __init__(self, path: str | Path):
        path = Path(path)
        ckpt = load_head_file(path)
        cfg = ckpt["head"]
        self.relation: EventsConfig = ckpt["relation"]
        self.head = EventHead(ckpt["in_dim"], *ckpt["sizes"], hidden=cfg.hidden,
                              layers=cfg.layers, kernel=cfg.kernel, dropout=0.0,
                              relation=make_relation(self.relation, ckpt["in_dim"]))
        load_model_state(self.head, ckpt["state"], path)
        self.head.eval()
        self.path = path
        self.labels = ckpt["labels"]
        self.use_roi = cfg.use_roi
        self.mean, self.std = ckpt["mean"], ckpt["std"]

    def apply(self, series_list: list[TrackSeries], width: int, height: int) \
            -> list[TrackSeries]:
        """The tracks of one video with their class probabilities replaced by the head's."""
        feats = [series_features(s, width, height, self.use_roi) for s in series_list]
        for f in feats:
            if f.shape[1] != len(self.mean):
                raise UserError(f"event head expects {len(self.mean)} features per frame, the "
                                f"run gives {f.shape[1]} (tracks from another detect version?)",
                                self.path)
        actors = [{}] * len(feats) if self.head.relation is None else frame_actors(
            series_list, feats, width, height, self.relation.acar.actors)
        return [self._apply(s, f, a) for s, f, a in zip(series_list, feats, actors, strict=True)]

    def _apply(self, series: TrackSeries, feats: np.ndarray, actors: dict) -> TrackSeries:
        x = torch.from_numpy(((feats - self.mean) / self.std).astype(np.float32))[None]
        extra = {k: torch.from_numpy(v)[None]  # (1, n, ...)
                 for k, v in (normalise_actors(actors, self.mean, self.std) if actors
                              else {}).items()}
        with torch.no_grad():
            logits = self.head(x, **extra)
        probs = {t: torch.sigmoid(logits[t][0]).numpy().astype(np.float64) for t in BOX_TYPES}
        return replace(series, probs=probs)


def run_events(run: str | Path, video: str, labels: LabelSpace, config: EventsConfig,
               head: TrainedHead | None = None) -> dict:
    """Build and save ``events/<video>.json`` from ``tracks/<video>.npz``."""
    tracks = load_stage(run, TRACKS, video)
    width, height = int(tracks["width"]), int(tracks["height"])
    series_list = track_series(tracks, EXTRA_FIELDS) if len(tracks["frames"]) else []
    if head is not None:
        if head.labels != labels:
            raise UserError("event head was trained for another label space", head.path)
        series_list = head.apply(series_list, width, height)
    events = video_events(series_list, labels, config.tubes, video, width, height,
                          float(tracks["fps"]))
    if CAMERA_MOTION in tracks:
        events["av_action"] = av_actions(tracks[CAMERA_MOTION], width, height)
    save_events(run, video, events)
    return events

"""The event stage: tracks artifact in, events document out (``events/<video>.json``)."""
from __future__ import annotations

import pickle
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..io.artifacts import load_stage, save_events
from ..labels import LabelSpace
from .series import TrackSeries, track_series
from .config import EventsConfig
from .features import TRACK_FIELDS
from .train import PROB_TYPES
from .tubes import video_events


class TrainedHead:
    """A fitted event head with the feature normalisation it was trained with."""

    def __init__(self, path: str | Path):
        import torch

        from .head import EventHead

        path = Path(path)
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
            cfg = ckpt["config"]["head"]
            self.head = EventHead(ckpt["in_dim"], *ckpt["sizes"], hidden=cfg["hidden"],
                                  layers=cfg["layers"], kernel=cfg["kernel"], dropout=0.0)
            self.head.load_state_dict(ckpt["state"])
        except FileNotFoundError:
            raise UserError("no such event head checkpoint", path) from None
        except (OSError, RuntimeError, KeyError, TypeError, EOFError, zipfile.BadZipFile,
                ValueError, pickle.UnpicklingError) as err:
            raise UserError(f"corrupt event head checkpoint ({type(err).__name__})", path) from None
        self.head.eval()
        self.path = path
        self.labels = LabelSpace.from_dict(ckpt["labels"])
        self.use_roi = bool(cfg.get("use_roi", True))
        self.mean, self.std = ckpt["mean"], ckpt["std"]

    def apply(self, series: TrackSeries, width: int, height: int) -> TrackSeries:
        """The series with its class probabilities replaced by the head's."""
        import torch

        from .features import series_features

        feats = series_features(series, width, height, self.use_roi)
        if feats.shape[1] != len(self.mean):
            raise UserError(f"event head expects {len(self.mean)} features per frame, the run "
                            f"gives {feats.shape[1]} (tracks from another detect version?)",
                            self.path)
        x = torch.from_numpy(((feats - self.mean) / self.std).astype(np.float32))[None]
        with torch.no_grad():
            logits = self.head(x)
        probs = {t: torch.sigmoid(logits[t][0]).numpy().astype(np.float64) for t in PROB_TYPES}
        return replace(series, probs=probs)


def run_events(run: str | Path, video: str, labels: LabelSpace, config: EventsConfig,
               head: TrainedHead | None = None) -> dict:
    """Build and save ``events/<video>.json`` from ``tracks/<video>.npz``."""
    tracks = load_stage(run, "tracks", video)
    width, height = int(tracks["width"]), int(tracks["height"])
    series_list = track_series(tracks, TRACK_FIELDS) if len(tracks["frames"]) else []
    if head is not None:
        if head.labels != labels:
            raise UserError("event head was trained for another label space", head.path)
        series_list = [head.apply(s, width, height) for s in series_list]
    events = video_events(series_list, labels, config.tubes, video, width, height,
                          float(tracks["fps"]))
    save_events(run, video, events)
    return events

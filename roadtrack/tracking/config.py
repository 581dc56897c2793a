"""Tracker settings: one dataclass, loaded from YAML presets in ``roadtrack/configs/tracker/``."""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from pathlib import Path

from .. import configs
from ..config import BadValue, above, at_least, one_of, read_yaml, section_from_dict, show, within
from ..errors import UserError

DEFAULT_PRESET = "bytetrack"


@dataclass(frozen=True)
class TrackerConfig:
    """All tracker knobs; the defaults are the ``bytetrack`` preset's.

    Distances are costs: 1 - IoU, cosine distance (0..2).
    """

    name: str = "bytetrack"
    # track life
    n_init: int = 3  # hits before a track is confirmed (a tentative track dies at its 1st miss)
    max_age: int = 30  # misses before a confirmed track is deleted
    backfill: bool = True  # also output a track's tentative rows once it is confirmed
    output_box: str = "kalman"  # a track reports its Kalman-filtered box, or the 'detection'
    per_class: bool = False  # a track keeps its birth class and only takes detections of it
    # detections
    min_score: float = 0.1  # detections below are ignored entirely
    high_score: float = 0.6  # detections at or above go to the first rounds
    low_score: float | None = 0.1  # [low, high) go to a second IoU round (ByteTrack); None: off
    new_track_score: float = 0.7  # unmatched detections start tracks only at or above this
    # 'input': the four score thresholds above are positions in the detector's score range,
    # [lowest score given, max(1, highest)], when the whole input is known (track_sequence);
    # 'absolute': they are scores
    score_range: str = "input"
    # association
    appearance: bool = True  # use embeddings when the detections carry them
    max_cosine_distance: float = 0.2
    gallery: str = "ema"  # 'ema' (moving average) or 'budget' (last N embeddings)
    budget: int = 100
    ema_alpha: float = 0.9
    gating: bool = True  # chi-square 95% Mahalanobis gate on appearance matches
    gate_threshold: float = 9.4877
    max_iou_distance: float = 0.9  # IoU round: match only when 1 - IoU <= this
    iou_max_misses: int = 30  # with embeddings, tracks missed longer match on appearance only
    fuse_score: bool = False  # first IoU round on IoU x detection score (ByteTrack on MOT17)
    low_max_iou_distance: float = 0.5  # second (low-score) round
    # motion model
    freeze_lost_height: bool = True  # a track not matched last frame predicts a fixed height
    kalman: str = "batched"  # 'batched' numpy over all tracks, or 'filterpy' per object
    std_weight_position: float = 1 / 20
    std_weight_velocity: float = 1 / 80
    # camera-motion compensation, where frames are given (roadtrack.tracking.cmc)
    cmc: str = "sparse-flow"  # 'none', 'sparse-flow' (corners + optical flow) or 'ecc'

    def __post_init__(self):
        at_least(self, 1, "n_init", "max_age", "budget")
        at_least(self, 0, "iou_max_misses", "max_cosine_distance")
        one_of(self, "gallery", "budget", "ema")
        one_of(self, "kalman", "batched", "filterpy")
        one_of(self, "cmc", "none", "sparse-flow", "ecc")
        one_of(self, "output_box", "detection", "kalman")
        one_of(self, "score_range", "absolute", "input")
        within(self, 0, 1, "ema_alpha", high_open=True)
        within(self, 0, 1, "max_iou_distance", "low_max_iou_distance")
        above(self, 0, "gate_threshold", "std_weight_position", "std_weight_velocity")
        if self.low_score is not None and self.low_score > self.high_score:
            raise BadValue("low_score", f"must not exceed high_score ({self.high_score}), got "
                                        f"{self.low_score}")

    def replace(self, **changes) -> TrackerConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def preset_names() -> list[str]:
    return configs.tracker_preset_names()


def load_config(source: str | Path | None = None, **overrides) -> TrackerConfig:
    """A preset name (``deepsort``, ``sort``, ``bytetrack``) or a YAML file -> TrackerConfig,
    with ``overrides`` (keyword arguments, e.g. from command-line flags) applied.

    Unknown keys, wrong types and out-of-range values raise UserError naming the file.
    """
    return _override(_preset(source), overrides, "", None)


def tracker_from_section(section: dict | None, path: str | Path | None = None) -> TrackerConfig:
    """The ``track`` section of a run config: ``preset`` (a name or YAML file, default
    bytetrack) and keys that override it. Problems of the preset file are blamed on it, those
    of the overrides (and of their combination with the preset) on ``path``, the run config."""
    if section is not None and not isinstance(section, dict):
        raise UserError(f"track: must be a mapping, got {show(section)}", path)
    section = dict(section or {})
    source = section.pop("preset", None)
    if source is not None and not isinstance(source, str):
        raise UserError(f"track.preset: must be a preset name or a YAML file, got {show(source)}",
                        path)
    try:
        preset = _preset(source)
    except _NoPreset as err:
        raise UserError(f"track.preset: {err}", path) from None
    return _override(preset, section, "track.", path)


class _NoPreset(UserError):
    pass


def _preset(source: str | Path | None) -> TrackerConfig:
    """The preset or YAML file ``source`` (None: the default preset) as a TrackerConfig."""
    source = DEFAULT_PRESET if source is None else str(source)
    path = Path(source)
    if not _is_file(path):
        packaged = configs.tracker_preset(source)
        if packaged is None:
            raise _NoPreset(f"no tracker preset {show(source)} (presets: "
                            f"{', '.join(preset_names()) or 'none found'}; or give a YAML file)")
        path = Path(str(packaged))  # installs give real files (see roadtrack.configs)
    data = read_yaml(path, "tracker config")
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise UserError("tracker config must be a mapping of keys to values", path)
    known = {f.name for f in dataclasses.fields(TrackerConfig)}
    unknown = [key for key in data if key not in known]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), known, n=1)
        names = [k if isinstance(k, str) and k.isprintable() and len(k) < 40 else show(k)
                 for k in unknown]
        raise UserError(f"unknown tracker config keys: {', '.join(names)}"
                        + (f" (did you mean '{close[0]}'?)" if close else ""), path)
    return section_from_dict(TrackerConfig, {"name": Path(path.name).stem, **data}, "", path)


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False for names the system refuses (too long, a NUL)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _override(config: TrackerConfig, overrides: dict, prefix: str, path) -> TrackerConfig:
    """``config`` with ``overrides`` applied; their problems are blamed on ``path``."""
    if not overrides:
        return config
    if not isinstance(overrides, dict):
        raise UserError(f"{prefix.rstrip('.')}: must be a mapping of keys to values", path)
    return section_from_dict(TrackerConfig, {**config.to_dict(), **overrides}, prefix, path)

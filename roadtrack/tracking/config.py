"""Tracker settings: one dataclass, loaded from YAML presets in ``configs/tracker/``."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

PRESET_DIR = Path(__file__).resolve().parents[2] / "configs" / "tracker"
DEFAULT_PRESET = "bytetrack"


@dataclass
class TrackerConfig:
    """All tracker knobs; the defaults are the ``bytetrack`` preset's.

    Distances are costs: 1 - IoU, cosine distance (0..2).
    """

    name: str = "bytetrack"
    # track life
    n_init: int = 2  # hits before a track is confirmed (a tentative track dies at its 1st miss)
    max_age: int = 30  # misses before a confirmed track is deleted
    backfill: bool = True  # also output a track's tentative rows once it is confirmed
    per_class: bool = False  # a track keeps its birth class and only takes detections of it
    # detections
    min_score: float = 0.1  # detections below are ignored entirely
    high_score: float = 0.5  # detections at or above go to the first rounds
    low_score: float | None = 0.1  # [low, high) go to a second IoU round (ByteTrack); None: off
    new_track_score: float = 0.6  # unmatched detections start tracks only at or above this
    # association
    appearance: bool = True  # use embeddings when the detections carry them
    max_cosine_distance: float = 0.2
    gallery: str = "ema"  # 'ema' (moving average) or 'budget' (last N embeddings)
    budget: int = 100
    ema_alpha: float = 0.9
    gating: bool = True  # chi-square 95% Mahalanobis gate on appearance matches
    gate_threshold: float = 9.4877
    max_iou_distance: float = 0.8  # IoU round: match only when 1 - IoU <= this
    iou_max_misses: int = 30  # with embeddings, tracks missed longer match on appearance only
    fuse_score: bool = False  # first IoU round on IoU x detection score (ByteTrack on MOT17)
    low_max_iou_distance: float = 0.5  # second (low-score) round
    # motion model
    kalman: str = "batched"  # 'batched' numpy over all tracks, or 'filterpy' per object
    std_weight_position: float = 1 / 20
    std_weight_velocity: float = 1 / 160

    def __post_init__(self):
        problems = []
        if self.n_init < 1:
            problems.append("n_init must be >= 1")
        if self.max_age < 1:
            problems.append("max_age must be >= 1")
        if self.gallery not in ("budget", "ema"):
            problems.append("gallery must be 'budget' or 'ema'")
        if self.kalman not in ("batched", "filterpy"):
            problems.append("kalman must be 'batched' or 'filterpy'")
        if self.budget < 1:
            problems.append("budget must be >= 1")
        if not 0 <= self.ema_alpha < 1:
            problems.append("ema_alpha must be in [0, 1)")
        if self.low_score is not None and self.low_score > self.high_score:
            problems.append("low_score must not exceed high_score")
        if problems:
            raise ValueError("; ".join(problems))

    def replace(self, **changes) -> TrackerConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_config(source: str | Path | None = None, **overrides) -> TrackerConfig:
    """A preset name (``deepsort``, ``sort``, ``bytetrack``) or a YAML file -> TrackerConfig.

    Unknown keys, wrong types and out-of-range values raise UserError naming the file.
    """
    import yaml

    if source is None and not (PRESET_DIR / f"{DEFAULT_PRESET}.yaml").is_file():
        return TrackerConfig(**overrides)  # installed without configs/: the built-in defaults
    source = DEFAULT_PRESET if source is None else source
    path = Path(source)
    if not path.suffix and not path.exists():
        path = PRESET_DIR / f"{source}.yaml"
        if not path.is_file():
            raise UserError(f"no tracker preset {source!r} (presets: "
                            f"{', '.join(preset_names()) or 'none found'}; or give a YAML file)")
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise UserError(f"cannot read tracker config: {err.strerror or err}", path) from None
    except yaml.YAMLError as err:
        raise UserError(f"not valid YAML ({str(err).splitlines()[0]})", path) from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise UserError("tracker config must be a mapping of keys to values", path)
    data = {**data, **overrides}
    data.setdefault("name", path.stem)
    known = {f.name for f in dataclasses.fields(TrackerConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"unknown tracker config keys: {', '.join(unknown)}", path)
    defaults = TrackerConfig()
    for key, value in data.items():
        expected = getattr(defaults, key)
        if not _type_ok(value, expected, key):
            raise UserError(f"{key}: expected {type(expected).__name__}, got {value!r}", path)
    try:
        return TrackerConfig(**data)
    except ValueError as err:
        raise UserError(str(err), path) from None


def _type_ok(value, default, key: str) -> bool:
    if key == "low_score":
        return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))

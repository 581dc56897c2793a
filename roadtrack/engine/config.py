"""The run config: one typed object assembled from the sections every package owns.

    model:  roadtrack.models.config.ModelConfig       the detector
    data:   DataConfig                                 training clips and augmentation
    train:  TrainConfig                                optimisation, schedule, checkpoints
    detect: DetectConfig                               sliding-clip inference
    track:  roadtrack.tracking.config.TrackerConfig    a preset and keys overriding it
    events: roadtrack.events.config.EventsConfig       the event head, its fitting, tubes

A file states only what differs from the defaults, or from another config it names as its
``base`` (a file beside it or a packaged config's name; its mappings are merged key by key, the
file's own values win). :func:`load_run_config` checks every key of
every section before any command writes anything: an unknown key (a typo such as ``train.lrr``),
a value of the wrong type or out of range is one :class:`~roadtrack.errors.UserError` naming the
key and the file. The result is frozen and passed around as is; :meth:`RunConfig.to_dict` gives
the mapping that run records and checkpoints store, and :func:`run_config_from_dict` reads it
back.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..config import (
    SEED_MAX,
    BadValue,
    above,
    at_least,
    one_of,
    read_yaml,
    section_from_dict,
    within,
)
from ..configs import resolve_config_source, run_config
from ..errors import UserError
from ..events.config import EventsConfig
from ..models.config import ModelConfig
from ..tracking.config import TrackerConfig, tracker_from_section


@dataclass(frozen=True)
class DataConfig:
    """Where training clips come from and how they are augmented (roadtrack.engine)."""

    root: str = ""  # dataset root; ``roadtrack train --data`` overrides it
    annotation: str = ""  # file name in the root; "" finds road(_waymo)_trainval_v1.0.json
    train_split: str = "train"
    val_split: str = "val"
    videos: list[str] = field(default_factory=list)  # restrict to these videos (all when empty)
    input_size: list[int] = field(default_factory=lambda: [640, 448])  # network input W, H (x32)
    frame_step: int = 1  # frames between the T frames of a clip
    key_stride: int = 1  # use every k-th annotated frame as a training key frame
    crop_prob: float = 0.5
    crop_min_scale: float = 0.6  # least share of the width and height a crop keeps
    keep_threshold: float = 0.3  # a cropped box must keep more than this share of its area
    flip_prob: float = 0.5
    box_jitter: float = 0.0  # box sides move by up to this share of the box's size
    workers: int = 2  # DataLoader worker processes

    def __post_init__(self):
        check_size(self, "input_size")
        at_least(self, 1, "frame_step", "key_stride")
        at_least(self, 0, "workers", "box_jitter")
        within(self, 0, 1, "crop_prob", "keep_threshold", "flip_prob")
        within(self, 0, 1, "crop_min_scale", low_open=True)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedule, checkpoints and logging (roadtrack.engine.train)."""

    seed: int = 0
    batch_size: int = 8  # clips per process and step
    procs: int = 1  # local processes (DDP) that `roadtrack train` starts when not under torchrun
    max_steps: int = 10000  # optimiser steps; the schedule spans them
    epochs: int = 0  # when > 0: max_steps = epochs x steps per epoch
    lr: float = 1e-4
    backbone_lr_mult: float = 1.0  # the backbone's learning rate is lr x this
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 500
    decay: str = "cosine"  # cosine | linear | none, from the end of warm-up to max_steps
    decay_span: str = "steps"  # steps | budget: the decay also ends with the time budget
    min_lr_ratio: float = 0.01  # the decay ends at lr x min_lr_ratio
    clip_grad_norm: float = 1.0  # 0 switches clipping off
    amp: str = "auto"  # auto (bf16, else fp16, on GPU; off on CPU) | bf16 | fp16 | off
    time_budget_minutes: float = 0.0  # stop with a checkpoint after this much training; 0: none
    log_every: int = 10
    val_every: int = 0  # steps between validations; 0: only at the end
    checkpoint_every: int = 500  # steps between writes of checkpoints/last.pt
    val_map: bool = True  # validation frame-mAP with the evaluator (the loss always)
    deterministic: bool = True  # off: cuDNN picks the fastest kernels (cudnn.benchmark)
    channels_last: bool = False  # backbone weights and clips in channels_last_3d (GPU speed)
    compile: bool = False  # torch.compile the training forward (GPU only)

    def __post_init__(self):
        within(self, 0, SEED_MAX, "seed")
        at_least(self, 1, "batch_size", "procs", "max_steps", "log_every")
        at_least(self, 0, "epochs", "warmup_steps", "val_every", "checkpoint_every",
                 "weight_decay", "clip_grad_norm", "time_budget_minutes", "backbone_lr_mult")
        above(self, 0, "lr")
        within(self, 0, 1, "min_lr_ratio")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise BadValue("betas", f"must be two numbers in [0, 1), got {self.betas}")
        one_of(self, "decay", "cosine", "linear", "none")
        one_of(self, "decay_span", "steps", "budget")
        one_of(self, "amp", "auto", "bf16", "fp16", "off")


@dataclass(frozen=True)
class DetectConfig:
    """Sliding-clip inference and its post-processing (roadtrack.engine.detect)."""

    batch_size: int = 8  # clips per forward pass
    input_size: list[int] = field(default_factory=list)  # W, H; empty: data.input_size
    score_threshold: float = 0.05  # agentness below this is dropped
    nms_iou: float = 0.5  # per-class NMS (class = top agent label); 1.0 switches it off
    max_per_frame: int = 50
    half: str = "auto"  # auto (on GPU) | on | off
    checkpoint: str = "best"  # which checkpoint of a training run: best | last
    reduced_decode: bool = False  # JPEGs at least 2x the input decoded at 1/2, 1/4 or 1/8
    # scale: faster, but smoother edges than the training clips' resize (docs/speed.md)
    decode_threads: int = 4  # threads decoding a frame folder's images (a video file: one)
    channels_last: bool = False  # model and clips in channels_last_3d (GPU only)
    compile: bool = False  # torch.compile the model (GPU only)

    def __post_init__(self):
        if self.input_size:
            check_size(self, "input_size")
        at_least(self, 1, "batch_size", "max_per_frame", "decode_threads")
        within(self, 0, 1, "score_threshold")
        within(self, 0, 1, "nms_iou", low_open=True)
        one_of(self, "half", "auto", "on", "off")
        one_of(self, "checkpoint", "best", "last")


def is_size(size) -> bool:
    """Whether ``size`` is [W, H], positive multiples of 32 (a network input size)."""
    return isinstance(size, (list, tuple)) and len(size) == 2 and all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 and s % 32 == 0 for s in size)


def check_size(section, name: str) -> None:
    if not is_size(getattr(section, name)):
        raise BadValue(name, f"must be [W, H], positive multiples of 32, got "
                             f"{getattr(section, name)}")


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    track: TrackerConfig = field(default_factory=TrackerConfig)
    events: EventsConfig = field(default_factory=EventsConfig)

    @property
    def detect_size(self) -> tuple[int, int]:
        """(W, H) of the network input at detection: detect.input_size, else data.input_size."""
        width, height = self.detect.input_size or self.data.input_size
        return width, height

    def to_dict(self) -> dict:
        """Every section as plain data (the tracker's resolved, its preset applied)."""
        return dataclasses.asdict(self)

    def replace(self, **sections) -> RunConfig:
        """A copy with whole sections replaced (``cfg.replace(detect=other.detect)``)."""
        return dataclasses.replace(self, **sections)

    def with_values(self, section: str, **values) -> RunConfig:
        """A copy with keys of one section changed and checked again
        (``cfg.with_values("train", max_steps=10)``)."""
        try:
            return self.replace(**{section: dataclasses.replace(getattr(self, section), **values)})
        except BadValue as err:
            raise UserError(f"{section}.{err.key}: {err.problem}") from None


def run_config_from_dict(data: dict | None, path: str | Path | None = None) -> RunConfig:
    """A parsed config mapping as a checked RunConfig; problems raise UserError naming the key
    and ``path``.

    ``track`` holds a tracker ``preset`` (a name or YAML file, default bytetrack) and keys that
    override it; problems of the preset file are blamed on that file."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise UserError("the config: must be a mapping of sections to keys", path)
    others = {key: value for key, value in data.items() if key != "track"}
    config = section_from_dict(RunConfig, others, "", path)
    return config.replace(track=tracker_from_section(data.get("track"), path))


def load_run_config(source: str | Path) -> RunConfig:
    """Read and check a YAML run config: a file, or the name of a packaged one
    (``synthetic_tiny``, see :mod:`roadtrack.configs`), its ``base`` configs merged under it."""
    path = resolve_config_source(source)
    return run_config_from_dict(_merged_mapping(path, ()), path)


BASE_KEY = "base"
MAX_BASES = 8  # configs in one chain of bases


def _merged_mapping(path, chain: tuple[str, ...]) -> dict:
    """The config mapping at ``path`` over its base's (recursively). Each base is checked on its
    own first, so its problems name the base file."""
    data = read_yaml(path)
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise UserError("the config: must be a mapping of sections to keys", path)
    if BASE_KEY not in data:
        return data
    name = data.pop(BASE_KEY)
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{BASE_KEY}: must name a config file or a packaged config", path)
    base = _base_source(name, path)
    chain = (*chain, str(path))
    if str(base) in chain:
        raise UserError(f"{BASE_KEY}: {name} leads back to this config", path)
    if len(chain) >= MAX_BASES:
        raise UserError(f"{BASE_KEY}: more than {MAX_BASES} configs in a chain of bases", path)
    parent = _merged_mapping(base, chain)
    run_config_from_dict(parent, base)
    return _merge(parent, data)


def _base_source(name: str, child):
    """A base named in ``child``: the file beside it, else the packaged config of that name
    (``.yaml`` optional), else the path beside it (whose reader says it cannot read it)."""
    beside = Path(child).parent / name if isinstance(child, Path) else None
    if beside is not None and beside.is_file():
        return beside
    packaged = run_config(name.removesuffix(".yaml"))
    if packaged is not None:
        return packaged
    return beside or Path(name)


def _merge(base: dict, over: dict) -> dict:
    """``over`` on ``base``: mappings merged key by key, anything else replaced; an empty
    section (``events:``) keeps the base's."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        elif value is not None or key not in merged:
            merged[key] = value
    return merged

"""Run configuration: a YAML file with sections ``model``, ``data``, ``train`` and ``detect``.

Every section is a dataclass with defaults, so a file states only what differs. Loading checks
every key against the dataclasses: an unknown key (a typo such as ``train.lrr``) or a value of
the wrong kind is a :class:`~roadtrack.errors.UserError` naming the key and the file.
``load_config`` returns plain dicts (defaults filled in) that ``build_detector`` and the training
code take.

The ``model`` section belongs to the detector (issue #5); ``data``, ``train`` and ``detect`` are
filled in by the training and detection stages: add fields to their dataclasses below.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError
from .events.config import EventsConfig

# ---------------------------------------------------------------------------------------------
# model section
# ---------------------------------------------------------------------------------------------


@dataclass
class BackboneConfig:
    """Video backbone giving 4 levels (strides 4, 8, 16, 32) sharing one temporal length."""

    name: str = "slowfast"  # "slowfast" or "mc3_18" (torchvision, random init)
    depths: list = field(default_factory=lambda: [3, 4, 6, 3])  # Bottleneck blocks per stage
    width: int = 64  # slow pathway stem channels (Bottleneck planes of res2)
    alpha: int = 4  # fast frames per slow frame
    beta: float = 0.125  # fast channels / slow channels
    fuse_kernel: int = 5  # temporal kernel of the fast -> slow lateral convolutions
    norm: str = "bn"  # "bn" (BatchNorm3d) or "gn" (GroupNorm, for small batches)


@dataclass
class DecoderConfig:
    """STMixer decoder: stages of query attention, adaptive sampling and mixing."""

    num_queries: int = 100
    num_stages: int = 6
    dim: int = 256  # query and feature width D
    num_heads: int = 8  # self-attention heads
    ffn_dim: int = 2048
    spatial_points: int = 32  # sample points per group
    groups: int = 4  # sampling / mixing groups (D / groups channels each)
    out_multiplier: int = 4  # AdaptiveMixing out_points = in_points * out_multiplier
    mapping_stride: float = 3.0
    tau: float = 2.0
    dropout: float = 0.0


@dataclass
class ClassesConfig:
    """Number of classes of each multi-label head (ROAD++ used classes by default)."""

    agent: int = 10
    action: int = 22
    loc: int = 16


@dataclass
class LossConfig:
    """Matching costs and loss weights (per stage; every stage is supervised)."""

    agentness: str = "focal"  # "focal" or "ce" (binary cross-entropy, no-object weight below)
    no_object_weight: float = 0.1  # weight of "nothing" queries in the "ce" agentness loss
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    cost_agentness: float = 2.0
    cost_l1: float = 2.0
    cost_giou: float = 2.0
    weight_agentness: float = 2.0
    weight_l1: float = 2.0
    weight_giou: float = 2.0
    weight_agent: float = 8.0
    weight_action: float = 8.0
    weight_loc: float = 8.0


@dataclass
class ModelConfig:
    num_frames: int = 32  # T of an input clip (key frame T // 2)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    classes: ClassesConfig = field(default_factory=ClassesConfig)
    loss: LossConfig = field(default_factory=LossConfig)


# ---------------------------------------------------------------------------------------------
# sections owned by the training / detection stages (issue #6 extends them)
# ---------------------------------------------------------------------------------------------


@dataclass
class DataConfig:
    """Where training clips come from and how they are augmented (roadtrack.engine)."""

    root: str = ""  # dataset root; ``roadtrack train --data`` overrides it
    annotation: str = ""  # file name in the root; "" finds road(_waymo)_trainval_v1.0.json
    train_split: str = "train"
    val_split: str = "val"
    videos: list = field(default_factory=list)  # restrict to these videos (all when empty)
    input_size: list = field(default_factory=lambda: [640, 448])  # network input W, H (x32)
    frame_step: int = 1  # frames between the T frames of a clip
    key_stride: int = 1  # use every k-th annotated frame as a training key frame
    crop_prob: float = 0.5
    crop_min_scale: float = 0.6  # least share of the width and height a crop keeps
    keep_threshold: float = 0.3  # a cropped box must keep more than this share of its area
    flip_prob: float = 0.5
    box_jitter: float = 0.0  # box sides move by up to this share of the box's size
    workers: int = 2  # DataLoader worker processes


@dataclass
class TrainConfig:
    """Optimisation, schedule, checkpoints and logging (roadtrack.engine.train)."""

    seed: int = 0
    batch_size: int = 8  # clips per process and step
    procs: int = 1  # local processes (DDP) that `roadtrack train` starts when not under torchrun
    max_steps: int = 10000  # optimiser steps; the schedule spans them
    epochs: int = 0  # when > 0: max_steps = epochs x steps per epoch
    lr: float = 1e-4
    weight_decay: float = 1e-4
    betas: list = field(default_factory=lambda: [0.9, 0.999])
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
    deterministic: bool = True


@dataclass
class DetectConfig:
    """Sliding-clip inference and its post-processing (roadtrack.engine.detect)."""

    batch_size: int = 8  # clips per forward pass
    input_size: list = field(default_factory=list)  # W, H; empty: data.input_size
    score_threshold: float = 0.05  # agentness below this is dropped
    nms_iou: float = 0.5  # per-class NMS (class = top agent label); 1.0 switches it off
    max_per_frame: int = 50
    half: str = "auto"  # auto (on GPU) | on | off
    checkpoint: str = "best"  # which checkpoint of --run: best | last


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    track: dict = field(default_factory=dict)  # tracker preset and overrides, checked by it
    events: EventsConfig = field(default_factory=EventsConfig)


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------


def _check_value(default: Any, value: Any, key: str, path) -> Any:
    """``value`` if it has the kind of ``default`` (ints pass as floats), else a UserError."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list):
        ok = isinstance(value, (list, tuple))
        value = list(value) if ok else value
    else:
        ok = True
    if not ok:
        raise UserError(
            f"config key '{key}' must be {type(default).__name__}, got {value!r}", path)
    return value


def section_from_dict(cls, data: dict | None, prefix: str = "", path=None):
    """Build dataclass ``cls`` from ``data`` (missing keys keep defaults; nested sections too)."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise UserError(f"config section '{prefix.rstrip('.') or '<top>'}' must be a mapping", path)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise UserError(f"unknown config key '{prefix}{key}'", path)
    defaults = cls()
    values = {}
    for name, value in data.items():
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default):
            values[name] = section_from_dict(type(default), value, f"{prefix}{name}.", path)
        else:
            values[name] = _check_value(default, value, f"{prefix}{name}", path)
    return cls(**values)


def config_from_dict(data: dict | None, path=None) -> dict:
    """Validate a whole config mapping and return it as plain dicts with defaults filled in."""
    return dataclasses.asdict(section_from_dict(Config, data, "", path))


def model_config(data: dict | None) -> ModelConfig:
    """The ``model`` section as a dataclass (defaults filled in, keys checked)."""
    return section_from_dict(ModelConfig, data, "model.")


def load_config(path: str | Path) -> dict:
    """Read a YAML config; returns ``{"model": {...}, "data": ..., "train": ..., "detect": ...}``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UserError(f"cannot read config: {err.strerror or err}", path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UserError(f"not valid YAML: {str(err).splitlines()[0]}", path) from None
    return config_from_dict(data, path)

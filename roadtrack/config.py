"""Run configuration: a YAML file with sections ``model``, ``data``, ``train`` and ``detect``.

Every section is a dataclass with defaults, so a file states only what differs; its annotations
give each key's type and its ``__post_init__`` the ranges (see :mod:`roadtrack.sections`).
Loading checks every key of every section, ``track`` and ``events`` included, before any command
writes anything: an unknown key (a typo such as ``train.lrr``), a value of the wrong type or out
of range is a :class:`~roadtrack.errors.UserError` naming the key and the file.
``load_config`` returns plain dicts (defaults filled in) that ``build_detector`` and the training
code take.

The ``model`` section belongs to the detector (issue #5); ``data``, ``train`` and ``detect`` are
filled in by the training and detection stages: add fields to their dataclasses below.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .configs import resolve_config_source
from .events.config import EventsConfig
from .sections import (
    SEED_MAX,
    BadValue,
    above,
    at_least,
    one_of,
    read_yaml,
    section_from_dict,
    within,
)

# ---------------------------------------------------------------------------------------------
# model section
# ---------------------------------------------------------------------------------------------


@dataclass
class BackboneConfig:
    """Video backbone giving 4 levels (strides 4, 8, 16, 32) sharing one temporal length."""

    name: str = "slowfast"  # "slowfast" or "mc3_18" (torchvision, random init)
    depths: list[int] = field(default_factory=lambda: [3, 4, 6, 3])  # Bottleneck blocks/stage
    width: int = 64  # slow pathway stem channels (Bottleneck planes of res2)
    alpha: int = 4  # fast frames per slow frame
    beta: float = 0.125  # fast channels / slow channels
    fuse_kernel: int = 5  # temporal kernel of the fast -> slow lateral convolutions
    norm: str = "bn"  # "bn" (BatchNorm3d) or "gn" (GroupNorm, for small batches)

    def __post_init__(self):
        one_of(self, "name", "slowfast", "mc3_18")
        one_of(self, "norm", "bn", "gn")
        at_least(self, 1, "width", "alpha", "fuse_kernel")
        within(self, 0, 1, "beta", low_open=True)
        if len(self.depths) != 4 or not all(d >= 1 for d in self.depths):
            raise BadValue("depths", f"must list 4 stage depths >= 1, got {self.depths}")
        if self.fuse_kernel % 2 == 0:
            raise BadValue("fuse_kernel", f"must be odd, got {self.fuse_kernel}")


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

    def __post_init__(self):
        at_least(self, 1, "num_queries", "num_stages", "dim", "num_heads", "ffn_dim",
                 "spatial_points", "groups", "out_multiplier")
        above(self, 0, "tau")
        within(self, 0, 1, "dropout", high_open=True)
        if self.dim % 8 or self.dim % self.groups or self.dim % self.num_heads:
            raise BadValue("dim", f"must be a multiple of 8 (the box position code), of "
                                  f"decoder.groups ({self.groups}) and of decoder.num_heads "
                                  f"({self.num_heads}), got {self.dim}")


@dataclass
class ClassesConfig:
    """Number of classes of each multi-label head (ROAD++ used classes by default)."""

    agent: int = 10
    action: int = 22
    loc: int = 16

    def __post_init__(self):
        at_least(self, 1, "agent", "action", "loc")


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

    def __post_init__(self):
        one_of(self, "agentness", "focal", "ce")
        within(self, 0, 1, "focal_alpha")
        at_least(self, 0, *(f.name for f in dataclasses.fields(self)
                            if f.name not in ("agentness", "focal_alpha")))


@dataclass
class ModelConfig:
    num_frames: int = 32  # T of an input clip (key frame T // 2)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    classes: ClassesConfig = field(default_factory=ClassesConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self):
        at_least(self, 1, "num_frames")
        alpha = self.backbone.alpha
        if self.backbone.name == "slowfast" and self.num_frames % alpha:
            raise BadValue("num_frames", f"must be a multiple of model.backbone.alpha ({alpha}), "
                                         f"got {self.num_frames}")


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
    deterministic: bool = True

    def __post_init__(self):
        within(self, 0, SEED_MAX, "seed")
        at_least(self, 1, "batch_size", "procs", "max_steps", "log_every")
        at_least(self, 0, "epochs", "warmup_steps", "val_every", "checkpoint_every",
                 "weight_decay", "clip_grad_norm", "time_budget_minutes")
        above(self, 0, "lr")
        within(self, 0, 1, "min_lr_ratio")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise BadValue("betas", f"must be two numbers in [0, 1), got {self.betas}")
        one_of(self, "decay", "cosine", "linear", "none")
        one_of(self, "decay_span", "steps", "budget")
        one_of(self, "amp", "auto", "bf16", "fp16", "off")


@dataclass
class DetectConfig:
    """Sliding-clip inference and its post-processing (roadtrack.engine.detect)."""

    batch_size: int = 8  # clips per forward pass
    input_size: list[int] = field(default_factory=list)  # W, H; empty: data.input_size
    score_threshold: float = 0.05  # agentness below this is dropped
    nms_iou: float = 0.5  # per-class NMS (class = top agent label); 1.0 switches it off
    max_per_frame: int = 50
    half: str = "auto"  # auto (on GPU) | on | off
    checkpoint: str = "best"  # which checkpoint of --run: best | last

    def __post_init__(self):
        if self.input_size:
            check_size(self, "input_size")
        at_least(self, 1, "batch_size", "max_per_frame")
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


def config_from_dict(data: dict | None, path=None) -> dict:
    """Validate a whole config mapping and return it as plain dicts with defaults filled in.

    The ``track`` section stays as written (a preset and overrides) once the tracker has checked
    it against its preset: problems in the overrides are blamed on ``path``."""
    from .tracking.config import tracker_from_section

    full = dataclasses.asdict(section_from_dict(Config, data, "", path))
    tracker_from_section(full["track"], path)
    return full


def model_config(data: dict | None) -> ModelConfig:
    """The ``model`` section as a dataclass (defaults filled in, keys checked)."""
    return section_from_dict(ModelConfig, data, "model.")


def load_config(path: str | Path) -> dict:
    """Read and check a YAML config (a file, or a packaged config's name such as
    ``synthetic_tiny``); returns ``{"model": {...}, "data": ..., "train": ..., "detect": ...,
    "track": ..., "events": ...}``."""
    path = resolve_config_source(path)
    return config_from_dict(read_yaml(path), path)

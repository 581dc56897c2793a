"""The ``data``, ``train`` and ``detect`` sections of a config: dataclasses holding the defaults.

A config file states only what differs; :func:`resolve_section` fills the rest and rejects keys
that do not exist, naming them as ``section.key``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError


@dataclass
class DataConfig:
    """Where the clips come from and how they are augmented."""

    annotation: str = ""  # file name in the data folder; "" finds road(_waymo)_trainval_v1.0.json
    train_split: str = "train"
    val_split: str = "val"
    videos: list[str] = field(default_factory=list)  # restrict to these videos (all when empty)
    input_size: list[int] = field(default_factory=lambda: [640, 448])  # W, H (multiples of 32)
    frame_step: int = 1  # frames between the T frames of a clip
    key_stride: int = 1  # use every k-th annotated frame as a training key frame
    crop_prob: float = 0.5
    crop_min_scale: float = 0.6  # least share of the width and height a crop keeps
    keep_threshold: float = 0.3  # a cropped box must keep more than this share of its area
    flip_prob: float = 0.5
    box_jitter: float = 0.0  # sides move by up to this share of the box's size
    batch_size: int = 8  # clips per process and step
    workers: int = 2  # DataLoader worker processes


@dataclass
class TrainConfig:
    """Optimisation, schedule, checkpoints and logging."""

    seed: int = 0
    max_steps: int = 10000  # optimiser steps; the schedule spans them
    epochs: int = 0  # when > 0, max_steps = epochs x steps per epoch
    lr: float = 1e-4
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 500
    decay: str = "cosine"  # cosine | linear | none, from the end of warm-up to max_steps
    min_lr_ratio: float = 0.01  # the decay ends at lr x min_lr_ratio
    clip_grad_norm: float = 1.0  # 0 switches clipping off
    amp: str = "auto"  # auto (bf16, else fp16, on GPU; off on CPU) | bf16 | fp16 | off
    time_budget_minutes: float = 0.0  # stop (and checkpoint) after this much training; 0: none
    log_every: int = 10
    val_every: int = 0  # steps between validations; 0: only at the end
    checkpoint_every: int = 500  # steps between writes of checkpoints/last.pt
    val_map: bool = True  # validation frame-mAP (needs the evaluator); loss always
    deterministic: bool = True


@dataclass
class DetectConfig:
    """Sliding-clip inference and post-processing."""

    batch_size: int = 8  # clips per forward pass
    input_size: list[int] = field(default_factory=list)  # W, H; empty: data.input_size
    score_threshold: float = 0.05  # agentness below this is dropped
    nms_iou: float = 0.5  # per-class NMS (class = top agent label); 1.0 switches it off
    max_per_frame: int = 50
    half: str = "auto"  # auto (on GPU) | on | off
    checkpoint: str = "best"  # which checkpoint of --run: best | last


SECTIONS = {"data": DataConfig, "train": TrainConfig, "detect": DetectConfig}


def resolve_section(name: str, raw: dict | None, path: str | Path | None = None):
    """The dataclass of section ``name`` with the keys of ``raw`` set; unknown keys raise."""
    cls = SECTIONS[name]
    raw = raw or {}
    if not isinstance(raw, dict):
        raise UserError(f"config section '{name}' is not a mapping", path)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise UserError(f"unknown config key '{name}.{unknown[0]}' (known: {', '.join(known)})",
                        path)
    values = {}
    for key, value in raw.items():
        default = known[key].default_factory() if known[key].default_factory \
            is not dataclasses.MISSING else known[key].default
        values[key] = _coerce(value, default, f"{name}.{key}", path)
    return cls(**values)


def _coerce(value, default, where: str, path):
    """``value`` in the type of ``default``; a mismatch raises UserError naming the key."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, (int, float)):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(default, int) and not float(value).is_integer():
                raise UserError(f"config key '{where}' must be an integer, got {value!r}", path)
            return type(default)(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, list):
        if isinstance(value, (list, tuple)):
            return list(value)
    raise UserError(f"config key '{where}' has the wrong type: {value!r}", path)


def check_input_size(size: list[int], where: str, path=None) -> tuple[int, int]:
    """(W, H) from a config list; both must be positive multiples of 32."""
    if len(size) != 2 or any(int(s) <= 0 or int(s) % 32 for s in size):
        raise UserError(f"config key '{where}' must be [W, H], multiples of 32, got {size}", path)
    return int(size[0]), int(size[1])


def to_dict(section) -> dict:
    return dataclasses.asdict(section)


@dataclass
class RunConfig:
    """A whole resolved config: the model section as the model builder reads it, and ours."""

    model: dict
    data: DataConfig
    train: TrainConfig
    detect: DetectConfig

    def to_dict(self) -> dict:
        return {"model": self.model, "data": to_dict(self.data), "train": to_dict(self.train),
                "detect": to_dict(self.detect)}


def resolve_config(raw: dict, path: str | Path | None = None) -> RunConfig:
    """A :class:`RunConfig` from a parsed config (sections as dicts or already dataclasses)."""
    if not isinstance(raw, dict):
        raise UserError("config is not a mapping", path)
    unknown = sorted(set(raw) - {"model", *SECTIONS})
    if unknown:
        raise UserError(f"unknown config key '{unknown[0]}'", path)
    sections = {}
    for name in SECTIONS:
        value = raw.get(name)
        sections[name] = resolve_section(name, value if not dataclasses.is_dataclass(value)
                                         else dataclasses.asdict(value), path)
    model = raw.get("model") or {}
    if dataclasses.is_dataclass(model):
        model = dataclasses.asdict(model)
    return RunConfig(model=dict(model), **sections)

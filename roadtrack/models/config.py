"""The detector's settings: the ``model`` section of a run config.

    model:
      num_frames: 32                                  T of an input clip (key frame T // 2)
      backbone: {name, depths, width, alpha, ...}     the video backbone
      neck:     {name, depth, levels, downsample, ...} optional encoder on the pyramid
      decoder:  {num_queries, num_stages, dim, ...}   the STMixer decoder
      classes:  {agent, action, loc}                  classes of each multi-label head
      loss:     {agentness, costs and weights}        matching and losses

Every section is a frozen dataclass whose ``__post_init__`` checks its ranges (see
:mod:`roadtrack.config`). No torch here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..config import BadValue, above, at_least, one_of, within
from ..labels import BOX_TYPES

BACKBONES = ("slowfast", "mc3_18", "r2plus1d_18", "swin3d_t")
# frames per feature frame of each backbone other than SlowFast (whose alpha says it)
TEMPORAL_STRIDE = {"mc3_18": 1, "r2plus1d_18": 8, "swin3d_t": 2}


@dataclass(frozen=True)
class BackboneConfig:
    """Video backbone giving 4 levels (strides 4, 8, 16, 32) sharing one temporal length."""

    name: str = "slowfast"  # slowfast, or torchvision's mc3_18, r2plus1d_18, swin3d_t
    depths: list[int] = field(default_factory=lambda: [3, 4, 6, 3])  # Bottleneck blocks/stage
    width: int = 64  # slow pathway stem channels (Bottleneck planes of res2)
    alpha: int = 4  # fast frames per slow frame
    beta: float = 0.125  # fast channels / slow channels
    fuse_kernel: int = 5  # temporal kernel of the fast -> slow lateral convolutions
    lateral: str = "conv"  # "conv", or "conv_norm_relu" (published SlowFast)
    # "bn", "frozen_bn" (fixed statistics and affine), "gn" (GroupNorm, small batches) or
    # "auto": frozen_bn with pretrained weights, bn without
    norm: str = "auto"
    # weights to start from: a checkpoint file (PySlowFast .pyth / Caffe2 .pkl, pytorchvideo,
    # roadtrack) or, for torchvision backbones, a weights name such as KINETICS400_V1
    pretrained: str = ""
    # freeze the stem and the first N stages (-1: nothing); null: 1 with pretrained weights,
    # -1 without (torchvision's detection models train all but the stem and res2 too)
    freeze_at: int | None = None

    def __post_init__(self):
        one_of(self, "name", *BACKBONES)
        one_of(self, "norm", "auto", "bn", "frozen_bn", "gn")
        one_of(self, "lateral", "conv", "conv_norm_relu")
        at_least(self, 1, "width", "alpha", "fuse_kernel")
        within(self, 0, 1, "beta", low_open=True)
        if self.freeze_at is not None:
            within(self, -1, 4, "freeze_at")
        if len(self.depths) != 4 or not all(d >= 1 for d in self.depths):
            raise BadValue("depths", f"must list 4 stage depths >= 1, got {self.depths}")
        if self.fuse_kernel % 2 == 0:
            raise BadValue("fuse_kernel", f"must be odd, got {self.fuse_kernel}")
        if self.norm == "gn" and self.name != "slowfast":
            raise BadValue("norm", f"gn is for slowfast; {self.name} keeps torchvision's norms "
                                   "(bn, frozen_bn or auto)")

    def norm_kind(self) -> str:
        """The norm the backbone is built with ("auto" resolved)."""
        if self.norm != "auto":
            return self.norm
        return "frozen_bn" if self.pretrained else "bn"

    def frozen_stages(self) -> int:
        """Stages frozen after the stem (-1: nothing, not even the stem)."""
        if self.freeze_at is not None:
            return self.freeze_at
        return 1 if self.pretrained else -1

    def temporal_stride(self) -> int:
        """Input frames per feature frame."""
        return self.alpha if self.name == "slowfast" else TEMPORAL_STRIDE[self.name]


@dataclass(frozen=True)
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
    # how a stage combines its sampled values: "adaptive" (STMixer's AdaptiveMixing) or
    # "deformable" (Deformable-DETR's multi-scale deformable attention, models/stm/deformable.py)
    mixing: str = "adaptive"

    def __post_init__(self):
        one_of(self, "mixing", "adaptive", "deformable")
        at_least(self, 1, "num_queries", "num_stages", "dim", "num_heads", "ffn_dim",
                 "spatial_points", "groups", "out_multiplier")
        above(self, 0, "tau")
        within(self, 0, 1, "dropout", high_open=True)
        if self.dim % 8 or self.dim % self.groups or self.dim % self.num_heads:
            raise BadValue("dim", f"must be a multiple of 8 (the box position code), of "
                                  f"decoder.groups ({self.groups}) and of decoder.num_heads "
                                  f"({self.num_heads}), got {self.dim}")


@dataclass(frozen=True)
class NeckConfig:
    """Optional encoder on the backbone's pyramid before the decoder: ``none``, or
    ``deformable3d`` (seed 001's 3-D deformable attention, residual and pre-norm, ``depth``
    layers on each level of ``levels``)."""

    name: str = "none"  # none or deformable3d
    depth: int = 1  # layers per level
    # 0: stride 4 ... 3: stride 32; every query attends over all its level's keys, and the
    # position-bias MLP runs over every (query, key) pair: finer levels cost far more
    levels: list[int] = field(default_factory=lambda: [2, 3])
    downsample: list[int] = field(default_factory=lambda: [2, 4, 4])  # t, h, w of the key grid
    # the offset network's depthwise kernel (t, h, w): downsample + 2 * padding, padding >= 1
    offset_kernel: list[int] = field(default_factory=lambda: [4, 6, 6])
    heads: int = 8
    dim_head: int = 32
    offset_groups: int = 8  # offset fields (heads / offset_groups heads share one)
    dropout: float = 0.0  # on the attention weights

    def __post_init__(self):
        one_of(self, "name", "none", "deformable3d")
        at_least(self, 1, "depth", "heads", "dim_head", "offset_groups")
        within(self, 0, 1, "dropout", high_open=True)
        if not self.levels or len(set(self.levels)) != len(self.levels) \
                or not all(0 <= level <= 3 for level in self.levels):
            raise BadValue("levels", f"must list distinct pyramid levels 0-3, got {self.levels}")
        if len(self.downsample) != 3 or not all(s >= 1 for s in self.downsample):
            raise BadValue("downsample", f"must be 3 factors (t, h, w) >= 1, got "
                                         f"{self.downsample}")
        if len(self.offset_kernel) != 3 or not all(
                k > s and (k - s) % 2 == 0
                for k, s in zip(self.offset_kernel, self.downsample, strict=True)):
            raise BadValue("offset_kernel", f"must be 3 sizes (t, h, w), each downsample plus a "
                                            f"positive even number, got {self.offset_kernel} "
                                            f"for downsample {self.downsample}")
        if self.heads % self.offset_groups:
            raise BadValue("heads", f"must be a multiple of offset_groups "
                                    f"({self.offset_groups}), got {self.heads}")


@dataclass(frozen=True)
class ClassesConfig:
    """Number of classes of each multi-label head (ROAD++ used classes by default)."""

    agent: int = 10
    action: int = 22
    loc: int = 16

    def __post_init__(self):
        at_least(self, 1, *BOX_TYPES)


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class ModelConfig:
    num_frames: int = 32  # T of an input clip (key frame T // 2)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    neck: NeckConfig = field(default_factory=NeckConfig)
    classes: ClassesConfig = field(default_factory=ClassesConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def architecture(self) -> dict:
        """The section as the trained weights depend on it: ``norm`` and ``freeze_at`` resolved
        ("auto" and null mean what they build), and the pretrained file left out (the weights
        of a run come from its checkpoint), the neck's settings too when there is none. Runs
        are resumed where this is the same."""
        backbone = dataclasses.replace(self.backbone, norm=self.backbone.norm_kind(),
                                       freeze_at=self.backbone.frozen_stages(), pretrained="")
        neck = self.neck if self.neck.name != "none" else NeckConfig()
        return dataclasses.asdict(dataclasses.replace(self, backbone=backbone, neck=neck))

    def __post_init__(self):
        at_least(self, 1, "num_frames")
        stride = self.backbone.temporal_stride()
        if self.num_frames % stride:
            what = "model.backbone.alpha" if self.backbone.name == "slowfast" \
                else f"the temporal stride of {self.backbone.name}"
            raise BadValue("num_frames", f"must be a multiple of {what} ({stride}), "
                                         f"got {self.num_frames}")
        if self.neck.name != "none" and self.decoder.dim % self.neck.offset_groups:
            raise BadValue("neck.offset_groups", f"must divide decoder.dim ({self.decoder.dim}), "
                                                 f"got {self.neck.offset_groups}")

"""Video backbones giving 4 levels at strides 4, 8, 16, 32 that share one temporal length,
projected to the decoder width."""
from __future__ import annotations

import torch
from torch import nn

from .frozen_bn import freeze, replace_batchnorm
from .slowfast import Bottleneck, SlowFast


class ProjectedBackbone(nn.Module):
    """A backbone plus one 1x1x1 Conv3d per level to ``dim`` channels (no top-down path).

    forward(x (B, 3, T, H, W)) -> list of (B, dim, T', H / s, W / s); ``strides`` and
    ``frames(T) -> T'`` describe the levels.
    """

    def __init__(self, body: nn.Module, dim: int):
        super().__init__()
        self.body = body
        self.strides = list(body.strides)
        self.proj = nn.ModuleList([nn.Conv3d(c, dim, 1) for c in body.channels])
        for conv in self.proj:
            nn.init.xavier_uniform_(conv.weight.flatten(1))
            nn.init.zeros_(conv.bias)

    def frames(self, num_frames: int) -> int:
        return num_frames // self.body.alpha

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [proj(level) for proj, level in zip(self.proj, self.body(x), strict=True)]


def build_body(cfg) -> nn.Module:
    """The backbone of ``cfg`` (:class:`roadtrack.models.config.BackboneConfig`), random
    weights, with its norm and frozen stages."""
    norm, frozen = cfg.norm_kind(), cfg.frozen_stages()
    if cfg.name == "slowfast":
        return SlowFast(cfg.depths, cfg.width, cfg.alpha, cfg.beta, cfg.fuse_kernel, norm,
                        cfg.lateral, frozen)
    # lazy: torchvision's video models
    from .torchvision_video import Swin3DBackbone, VideoResNetBackbone

    if cfg.name == "swin3d_t":
        body: nn.Module = Swin3DBackbone(cfg.name)
        # features: stage 1, merging, stage 2, ...: the stem (patch embedding) and N stages
        frozen_parts = [body.patch_embed, *body.features[:max(0, 2 * frozen - 1)]] \
            if frozen >= 0 else []
    elif cfg.name in ("mc3_18", "r2plus1d_18"):
        body = VideoResNetBackbone(cfg.name)
        frozen_parts = [body.stem, *body.stages[:frozen]] if frozen >= 0 else []
    else:
        raise ValueError(f"unknown backbone {cfg.name!r}")
    if norm == "frozen_bn":
        replace_batchnorm(body)
    freeze(*frozen_parts)
    return body


def build_backbone(cfg, dim: int) -> ProjectedBackbone:
    """``cfg``: :class:`roadtrack.models.config.BackboneConfig`."""
    return ProjectedBackbone(build_body(cfg), dim)


__all__ = ["Bottleneck", "ProjectedBackbone", "SlowFast", "build_backbone", "build_body"]

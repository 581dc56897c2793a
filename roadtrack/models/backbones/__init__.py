"""Video backbones giving 4 levels at strides 4, 8, 16, 32 that share one temporal length,
projected to the decoder width."""
from __future__ import annotations

import torch
from torch import nn

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


def build_backbone(cfg, dim: int) -> ProjectedBackbone:
    """``cfg``: :class:`roadtrack.models.config.BackboneConfig`."""
    if cfg.name == "slowfast":
        body = SlowFast(cfg.depths, cfg.width, cfg.alpha, cfg.beta, cfg.fuse_kernel, cfg.norm)
    elif cfg.name == "mc3_18":
        from .torchvision_video import MC3Backbone  # lazy: torchvision's video models

        body = MC3Backbone()
    else:
        raise ValueError(f"unknown backbone {cfg.name!r} (slowfast or mc3_18)")
    return ProjectedBackbone(body, dim)


__all__ = ["Bottleneck", "ProjectedBackbone", "SlowFast", "build_backbone"]
